"""Every stop ends like Ctrl-C: SIGTERM and SIGHUP become an interrupt with the signal's name.

CI runners cancel a job with SIGTERM, a closed terminal sends SIGHUP. Inside
``signals_as_interrupts`` both raise ``Stopped`` (a ``KeyboardInterrupt``), so the run's one
interrupt path writes the partial report marked incomplete and keeps every saved result and the
history; the process then exits ``128 + signal number`` (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP),
the shell's convention for a process ended by a signal.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The run was stopped by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_as_interrupts(before: Callable[[int], None] | None = None) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Stopped`` in the main thread.

    Args:
        before: called with the signal number first (the pytest plugin keeps its exit code).
    """

    def _stop(signum: int, frame: Any) -> None:
        if before is not None:
            before(signum)
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, _stop) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_code(exc: KeyboardInterrupt) -> int:
    """``128 + N`` for the signal that stopped the run (Ctrl-C: SIGINT, 130)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    """How the run was stopped, in words for the report and the console."""
    signum = getattr(exc, "signum", None)
    if signum is None:
        return "interrupted by the user (Ctrl-C)"
    return f"stopped by {signal.Signals(signum).name}"
