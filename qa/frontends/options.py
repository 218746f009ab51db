"""The run options, declared once and added to both front ends.

``qa-bench run`` passes ``argparse.ArgumentParser.add_argument`` and the pytest plugin passes its
option group's ``addoption`` to ``add_run_options``: same names, defaults and help in
``qa-bench run --help`` and ``pytest --help``. ``read_run_options`` turns either front end's
parsed values back into one dict that ``qa.run.runner.prepare_run`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.gating.baselines import ROOT

#: Where results are appended and the trend is read from (also an option of ``qa-bench merge``).
HISTORY: tuple[str, dict[str, Any]] = (
    "--history", {"metavar": "PATH",
                  "help": "JSON-lines history to append to and plot from (default: "
                          "history.jsonl beside the run folder); e.g. a CI cache path"})

#: The baselines folder (also an option of ``qa-bench report``, ``merge`` and ``baseline``).
BASELINES: tuple[str, dict[str, Any]] = (
    "--baselines", {"metavar": "DIR",
                    "help": "baselines folder; its reference.toml holds the published numbers "
                            "(default: baselines/ of the working folder for qa-bench and its "
                            "other commands, of the pytest rootdir for pytest)"})

#: (flag, argparse/pytest keyword arguments). Adding an option is one line here (and reading it
#: where the run is prepared).
RUN_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--profile", {"default": "smoke", "metavar": "NAME|TOML",
                   "help": "matrix profile: a shipped name (smoke, nightly, sdk-upgrade) or a "
                           "TOML path (default: smoke)"}),
    ("--out", {"metavar": "DIR",
               "help": "run folder for results and report.md (default: "
                       "reports/<profile>-<timestamp>)"}),
    ("--backend", {"metavar": "NAME", "help": "override the profile's backend (torch, ipu)"}),
    ("--models", {"metavar": "A,B", "help": "comma-separated models to run"}),
    ("--pods", {"metavar": "A,B",
                "help": "comma-separated pods: the hardware an entry runs on (an IPU pod such "
                        "as pod16, or a torch device: cpu, cuda, auto)"}),
    ("--datasets", {"metavar": "A,B", "help": "comma-separated datasets"}),
    ("--seeds", {"type": int, "metavar": "N", "help": "run N seeds (42, 43, ...) per entry"}),
    ("--repeat", {"type": int, "default": 1, "metavar": "N",
                  "help": "run each seed N times and check that EM/F1 are identical"}),
    ("--replicas", {"metavar": "N[,M]",
                    "help": "torch: data-parallel processes under torchrun; a list (1,2) runs "
                            "each count and reports the scaling efficiency"}),
    ("--nnodes", {"type": int, "metavar": "N",
                  "help": "torch: hosts that train each entry together under torchrun (start "
                          "the same command on every host, each with its --node-rank)"}),
    ("--node-rank", {"type": int, "metavar": "K", "help": "torch: this host's rank, 0 .. N-1"}),
    ("--rdzv-endpoint", {"metavar": "HOST:PORT",
                         "help": "torch: torchrun's c10d rendezvous, the same on every host"}),
    ("--set", {"action": "append", "default": [], "metavar": "SECTION.KEY=VALUE",
               "help": "override a config field, e.g. train.learning_rate=0 (see qa-bench "
                       "config)"}),
    ("--update-baselines", {"action": "store_true",
                            "help": "write the baselines from this run's results once it is "
                                    "over; refused (old baseline kept) when the run failed a "
                                    "gate or an entry, was stopped, faulted or emulated where "
                                    "the baseline is real"}),
    ("--force-update-baselines", {"action": "store_true",
                                  "help": "--update-baselines even from such a run, from its "
                                          "finished entries; says what was replaced, old -> "
                                          "new (the old file is kept in *.previous.jsonl)"}),
    BASELINES,
    ("--squad-dir", {"metavar": "DIR",
                     "help": "folder with SQuAD dev-v1.1.json / dev-v2.0.json (default: "
                             "$QA_BENCH_SQUAD_DIR)"}),
    ("--entry-timeout", {"type": float, "metavar": "SECONDS",
                         "help": "seconds one entry may take"}),
    ("--no-progress", {"action": "store_true", "help": "no progress bars"}),
    ("--shard", {"metavar": "K/N",
                 "help": "run only shard K of N of the matrix (balanced by estimated cost, the "
                         "same partition on every host)"}),
    ("--list", {"action": "store_true",
                "help": "print the entries (of --shard K/N, else all) with their estimated cost "
                        "and the shard balance, then exit without running"}),
    ("--preflight", {"action": "store_true",
                     "help": "judge every entry by the rules its hardware would refuse it by "
                             "(IPU: pod size, pipeline depth vs gradient accumulation, memory "
                             "per IPU) from the configs alone, then exit without running: 0 all "
                             "pass, 1 any refused"}),
    HISTORY,
)


def dest(flag: str) -> str:
    """The attribute a flag is stored under in both front ends (``--squad-dir`` → ``qa_squad_dir``).

    The ``qa_`` prefix keeps the names apart from other pytest plugins' options.
    """
    return "qa_" + flag.lstrip("-").replace("-", "_")


def add_history_option(addoption: Callable[..., Any]) -> None:
    """Declare ``--history`` alone (``qa-bench merge``)."""
    addoption(HISTORY[0], dest=dest(HISTORY[0]), **HISTORY[1])


def add_baselines_option(addoption: Callable[..., Any]) -> None:
    """Declare ``--baselines`` alone (``qa-bench report``, ``merge``, ``baseline``): read it
    back with ``baselines_root``."""
    addoption(BASELINES[0], dest=dest(BASELINES[0]), **BASELINES[1])


def baselines_root(value: str | None) -> Path:
    """The ``--baselines`` folder, or the default (``qa.gating.baselines.ROOT``)."""
    return Path(value) if value else ROOT


def add_run_options(addoption: Callable[..., Any]) -> None:
    """Declare every run option through ``addoption`` (argparse's ``add_argument`` or pytest's)."""
    for flag, kwargs in RUN_OPTIONS:
        addoption(flag, dest=dest(flag), **kwargs)


def read_run_options(get: Callable[[str], Any]) -> dict[str, Any]:
    """The run options' values by name (``squad_dir``), ``get`` reading one by its ``dest``."""
    return {dest(flag).removeprefix("qa_"): get(dest(flag)) for flag, _ in RUN_OPTIONS}
