"""Bounded pieces of a long axis, for the vectorized steps that would otherwise build one huge
temporary array (preprocessing's labelling grid, postprocessing's candidate grid).

Each piece must be visited exactly once: the callers' results would not change if pieces
overlapped (every row is recomputed to the same value), but the work would grow with the square
of the axis, a slowdown that no output check can see. So the partition itself is the contract,
and ``tests/task/test_chunks.py`` pins it.
"""

from __future__ import annotations

from collections.abc import Iterator


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices ``[0, size)``, ``[size, 2 size)``, ... covering ``range(n)`` once, in order; the
    last one holds the rest. ``size`` must be at least 1."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    for lo in range(0, n, size):
        yield slice(lo, min(lo + size, n))
