"""Whether an entry can run on this machine at all: its device, its data and its model.

One decision for both front ends: ``qa-bench run`` skips an unavailable entry with its reason and
the pytest plugin marks the same entry skipped with the same reason. It is asked before any
work and answers in a second or two: the backend's own ``available`` (no IPU, no CUDA device),
then the data and the model (both named when both are absent). A packaged checkpoint
(``qa.task.packaged``) is available when its pinned distribution is installed; the reason
otherwise gives the install command. A hub dataset or hub model is available when it is in the local
hub cache, or when the hub may be asked (not ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``) and
its endpoint accepts a connection within ``HUB_PROBE_TIMEOUT_S``; otherwise the entry is
skipped instead of retrying an unreachable hub for a minute inside the run.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from qa import backends
from qa.task import packaged
from qa.task.data import SQUAD_FILES, SYNTHETIC
from qa.task.models import is_tiny

if TYPE_CHECKING:
    from qa.config.schema import RunConfig

HUB_PROBE_TIMEOUT_S = 2.0
_TRUE = ("1", "true", "yes", "on")


def unavailable(config: RunConfig) -> str | None:
    """Why the entry of ``config`` cannot run here (one short line), or None when it can."""

    ok, reason = backends.get(config.hardware.backend).available(config)
    if not ok:
        return reason
    # Both, when both are absent: one skip line tells everything to install or pass.
    reasons = [r for r in (_data_missing(config), _model_missing(config)) if r]
    return "; ".join(reasons) or None


def _data_missing(config: RunConfig) -> str | None:

    data = config.data
    if data.train_file or data.validation_file:
        absent = [f for f in (data.train_file, data.validation_file) if f and not Path(f).is_file()]
        return f"data file {absent[0]} not found" if absent else None
    if data.dataset in SYNTHETIC:
        return None
    if data.dataset in SQUAD_FILES and data.squad_dir:
        return None  # a folder given by the user: bad input when wrong (qa.run.runner), not a skip
    if _hub_cached(data.dataset, "dataset"):
        return None
    hint = ("pass --squad-dir (or $QA_BENCH_SQUAD_DIR) with the official JSON files"
            if data.dataset in SQUAD_FILES else "set data.train_file and data.validation_file")
    return _hub_reason(f"dataset {data.dataset!r}", "HF_DATASETS_OFFLINE", hint)


def _model_missing(config: RunConfig) -> str | None:

    name = config.model.name
    if is_tiny(name) or Path(name).is_dir():
        return None
    if packaged.is_packaged(name):
        return packaged.locate(packaged.PACKAGED[name])[1] or None
    if name.startswith((".", "/")):
        return f"model folder {name} does not exist"
    if _hub_cached(name, "model"):
        return None
    return _hub_reason(f"model {name!r}", "HF_HUB_OFFLINE",
                       "use a local checkpoint folder or a built-in tiny model")


def _hub_reason(what: str, offline_variable: str, hint: str) -> str | None:
    """None when the hub can be asked for ``what``; else why not (no retries either way)."""
    for variable in (offline_variable, "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in _TRUE:
            return f"{what} is not in the local hub cache and ${variable} is set: {hint}"
    reachable, why = hub_reachable()
    if reachable:
        return None
    return f"{what} is not in the local hub cache and the hub is unreachable ({why}): {hint}"


def _hub_cached(repo_id: str, kind: str) -> bool:
    """Whether the hub cache (or the datasets cache) holds ``repo_id``: one folder look-up."""
    from huggingface_hub import constants

    prefix = "datasets" if kind == "dataset" else "models"
    base = repo_id.rsplit("/", 1)[-1]
    hub = Path(constants.HF_HUB_CACHE)
    names = [f"{prefix}--{repo_id.replace('/', '--')}"]
    if "/" not in repo_id:  # a canonical name ("squad") is cached under its owner's id now
        names += [p.name for p in hub.glob(f"{prefix}--*--{base}")]
    if any((hub / name / "snapshots").is_dir() for name in names):
        return True
    if kind != "dataset":
        return False
    from datasets import config as datasets_config

    cache = Path(datasets_config.HF_DATASETS_CACHE)
    return (cache / repo_id.replace("/", "___")).is_dir() or any(cache.glob(f"*___{base}"))


@lru_cache(maxsize=1)
def hub_reachable() -> tuple[bool, str]:
    """Whether the hub's endpoint accepts a TCP connection within ``HUB_PROBE_TIMEOUT_S``."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=HUB_PROBE_TIMEOUT_S):
            return True, ""
    except OSError as exc:
        return False, exc.strerror or type(exc).__name__
