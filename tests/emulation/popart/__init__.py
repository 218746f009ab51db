"""An emulation of the popart enums optimum-graphcore reads (their values only feed options)."""

from __future__ import annotations

import enum

__version__ = "3.3.0+emulated"


class AccumulateOuterFragmentSchedule(enum.IntEnum):
    """How the optimizer step is scheduled across IPUs."""

    Scheduler = 0
    Serial = 1
    OverlapCycleOptimized = 2
    OverlapMemoryOptimized = 3


class SubgraphCopyingStrategy(enum.IntEnum):
    """When subgraph inputs and outputs are copied."""

    OnEnterAndExit = 0
    JustInTime = 1
