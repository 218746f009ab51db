"""The partition behind the bounded grids of pre- and postprocessing (``qa.task.chunks``): each
index once, in order, no piece larger than asked. An overlapping partition would give the same
labels and answers, only quadratically slower, so it is pinned here rather than by outputs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.task.chunks import chunks


def test_pieces_of_ten_by_three() -> None:
    assert list(chunks(10, 3)) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]


@pytest.mark.parametrize(("n", "size", "pieces"), [(0, 4, []), (1, 1, [slice(0, 1)]),
                                                    (4, 4, [slice(0, 4)]),
                                                    (5, 4, [slice(0, 4), slice(4, 5)]),
                                                    (3, 1024, [slice(0, 3)])])
def test_edges(n: int, size: int, pieces: list[slice]) -> None:
    assert list(chunks(n, size)) == pieces


@given(st.integers(0, 5000), st.integers(1, 600))
def test_every_index_once_in_order_in_pieces_of_at_most_size(n: int, size: int) -> None:
    pieces = list(chunks(n, size))
    assert len(pieces) == math.ceil(n / size)  # the work is linear in n
    covered = [i for piece in pieces for i in range(n)[piece]]
    assert covered == list(range(n))
    assert all(0 < piece.stop - piece.start <= size for piece in pieces)


@pytest.mark.parametrize("size", [0, -3])
def test_a_size_under_one_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next(chunks(10, size))
