"""Did another job share the CPUs while we timed? Measured, not guessed.

A timing baseline says how fast this code runs on this hardware *when it has the machine to
itself*. On a shared machine (a CI runner that also builds, a VM whose neighbours steal cycles)
the same tree runs 20-30 % slower now and then, and a timing gate that cannot tell would fire.
The hardware fingerprint cannot see it; the machine's own counters can: over the timed window
``CpuShare`` reads the CPU time every process on the machine used (``/proc/stat``) and our own
(``getrusage``), and reports what *others* used as a share of the machine's CPU capacity, plus
the hypervisor's steal time. Linux only; elsewhere the measurement is None and timings are
judged as usual.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Above this share of the machine used by other processes (or stolen by the hypervisor) while
#: we timed, timing verdicts say "busy machine" instead of judging (accuracy is still judged).
BUSY_SHARE = 0.10

_STAT = Path("/proc/stat")


def _machine_jiffies() -> tuple[int, int] | None:
    """(busy, steal) clock ticks of all CPUs since boot, or None where /proc/stat is absent."""
    try:
        first = _STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (older kernels stop before steal)
    ticks = [int(v) for v in first[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks + [0] * (8 - len(ticks))
    return user + nice + system + irq + softirq, steal


def _own_cpu_s() -> float:
    """CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuShare:
    """Accumulates, over one or more timed windows, the CPU others used on this machine.

    Use as a context manager around each timed block; ``summary()`` gives the totals.
    """

    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    wall_s: float = 0.0
    others_s: float = 0.0
    steal_s: float = 0.0
    available: bool = True
    _start: tuple[float, float, tuple[int, int] | None] = (0.0, 0.0, None)

    def __enter__(self) -> CpuShare:
        self._start = (time.perf_counter(), _own_cpu_s(), _machine_jiffies())
        return self

    def __exit__(self, *exc: Any) -> None:
        began, own_began, jiffies_began = self._start
        jiffies = _machine_jiffies()
        wall = time.perf_counter() - began
        own = _own_cpu_s() - own_began
        if jiffies is None or jiffies_began is None:
            self.available = False
            return
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy = (jiffies[0] - jiffies_began[0]) / tick
        self.wall_s += wall
        self.others_s += max(0.0, busy - own)
        self.steal_s += max(0.0, (jiffies[1] - jiffies_began[1]) / tick)

    def summary(self) -> dict[str, Any] | None:
        """``{"other_cpu_share", "steal_share", "window_s", "cores"}`` or None if unmeasured."""
        if not self.available or self.wall_s <= 0:
            return None
        capacity = self.wall_s * self.cores
        return {"other_cpu_share": round(self.others_s / capacity, 4),
                "steal_share": round(self.steal_s / capacity, 4),
                "window_s": round(self.wall_s, 3), "cores": self.cores}


def busy(contention: dict[str, Any] | None, limit: float = BUSY_SHARE) -> str:
    """Why the machine counts as busy during the timed window ('' when it did not)."""
    if not contention:
        return ""
    others = float(contention.get("other_cpu_share") or 0.0)
    steal = float(contention.get("steal_share") or 0.0)
    if others + steal <= limit:
        return ""
    parts = []
    if others:
        parts.append(f"other processes used {others * 100:.0f} %")
    if steal:
        parts.append(f"the hypervisor stole {steal * 100:.0f} %")
    return (f"busy machine — {' and '.join(parts)} of the CPUs while this run was timed "
            f"(limit {limit * 100:.0f} %)")
