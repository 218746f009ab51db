"""``poptorch._impl``: two helpers optimum-graphcore's seq2seq trainer imports (not emulated)."""

from __future__ import annotations

from typing import Any


def rewrapModelIfNecessary(model: Any) -> Any:  # noqa: N802 - poptorch's name
    """Seq2seq generation only: not on the question-answering path."""
    raise NotImplementedError("poptorch._impl.rewrapModelIfNecessary is not emulated")


def unwrapModelIfNecessary(model: Any) -> Any:  # noqa: N802
    """Seq2seq generation only: not on the question-answering path."""
    raise NotImplementedError("poptorch._impl.unwrapModelIfNecessary is not emulated")
