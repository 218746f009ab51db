"""The two thin front ends over the same API: the ``qa-bench`` CLI and the pytest plugin, with
their run options declared once (``options``)."""
