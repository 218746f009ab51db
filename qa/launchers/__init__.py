"""Launchers: how one entry's process(es) start, handed the function to run.

A launcher never imports the pipeline: the runner hands it the worker (``qa.run.pipeline.
run_entry``), a callable ``worker(config, cache_dir, progress) -> RunResult``. ``inline`` calls it
in this process; ``qa.launchers.torchrun`` starts ``torchrun`` processes that import the worker
by its dotted name. A backend picks the launcher for an entry (``Backend.launch``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.config.schema import RunConfig
    from qa.results.store import RunResult

#: ``worker(config, cache_dir, progress) -> RunResult``: one entry, start to finish.
Worker = Callable[["RunConfig", "Path | None", bool], "RunResult"]


class LaunchFailed(RuntimeError):
    """The launcher's processes ended without a result; ``stage`` names the launcher."""

    def __init__(self, stage: str, cause: str) -> None:
        super().__init__(cause)
        self.stage = stage


def inline(config: RunConfig, options: Any, worker: Worker) -> RunResult:
    """Run ``worker`` in this process (``options``: the runner's cache folder and progress)."""
    return worker(config, options.cache_dir, options.progress)


def dotted_name(worker: Worker) -> str:
    """``module:function`` by which another process imports ``worker``."""
    return f"{worker.__module__}:{worker.__qualname__}"
