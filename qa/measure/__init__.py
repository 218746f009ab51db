"""Measuring the machine and the run: hardware fingerprints, contention, efficiency (MFU) and
convergence (time-to-target)."""
