"""Showing judged results: the markdown report, the trend and its change points, run-to-run
compare, and merging run folders into one report."""
