"""Running the matrix: profiles, sharding, manifests, availability, the pipeline of one entry and
the runner of many (``runner``), shared by both front ends."""
