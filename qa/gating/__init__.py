"""Judging results: metric specs, baselines (and their guarded writes), verdicts, comparability and
the exit code (``outcome``). Reads results; never runs the pipeline."""
