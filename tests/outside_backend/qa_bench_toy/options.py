"""The toy backend's own settings (``[toy]``, ``--set toy.price_scale=2``), declared here and
registered only through the ``qa_bench.backend_options`` entry point."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ToyOptions:
    """How the toy rack prices its work."""

    price_scale: float = field(default=1.0, metadata={
        "above": 0.0, "help": "multiplies the toy's own cost per pod (a slower rack)"})
