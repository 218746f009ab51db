"""The emulated IPU machine: how many IPUs it has, and which executables hold them.

The emulation is off unless ``QA_BENCH_IPU_EMULATION`` names the machine's IPU count (for example
``16``). Then ``ipuHardwareIsAvailable()`` is true and an executable attaches to
``replication factor x IPUs per replica`` IPUs (the per-replica count rounded up to a power of
two, as ``autoRoundNumIPUs`` asks); attaching more than the machine has fails, as it does on a
pod. That is what forces a trainer to detach its training executable before an inference one
can run on the same IPUs.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

ENV = "QA_BENCH_IPU_EMULATION"
#: IPU hardware version the emulation reports (Mk2, what optimum-graphcore requires).
HARDWARE_VERSION = 2


def machine_ipus() -> int:
    """IPUs of the emulated machine; 0 when the emulation is not enabled."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 0
    try:
        count = int(raw)
    except ValueError:
        raise RuntimeError(f"{ENV} must be a number of IPUs, got {raw!r}") from None
    if count < 1:
        raise RuntimeError(f"{ENV} must be at least 1, got {count}")
    return count


# executor -> IPUs it holds; an executor that is garbage collected releases them, as on a pod.
_attached: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def attached_ipus() -> int:
    """IPUs held by attached executables now."""
    return sum(_attached.values())


def attach(executor: Any, ipus: int) -> None:
    """Acquire ``ipus`` IPUs for ``executor``.

    Raises:
        RuntimeError: emulation off, or not enough free IPUs (poptorch's attach failure).
    """
    total = machine_ipus()
    if total == 0:
        raise RuntimeError(f"no IPU available: the poptorch emulation is off (set {ENV})")
    free = total - attached_ipus()
    if ipus > free:
        raise RuntimeError(
            f"Failed to acquire {ipus} IPUs: {free} of the machine's {total} are free "
            f"({attached_ipus()} held by other attached executables; detach them first)")
    _attached[executor] = ipus


def detach(executor: Any) -> None:
    """Release the IPUs ``executor`` holds."""
    _attached.pop(executor, None)


def is_attached(executor: Any) -> bool:
    """Whether ``executor`` holds IPUs."""
    return executor in _attached
