"""A nightly history for the dashboard tests, grown from one real run's result file.

``REAL_RESULT`` is the result of a real ``qa-bench run --profile smoke`` of this project at
commit 9012371 on its 2-core CPU machine (tiny-roformer on the synthetic set; see its
``environment``, ``hardware`` and ``timings.contention``), as that run's history recorded it. The
history (``nightly_history``) is that run, unchanged, as the oldest night of its entry, then
synthetic nights made from a copy of the same file (so every field a reader uses has the real
structure and passes ``RunResult.from_dict``), with only their commit, date and metric values
changed:

- ``torch/cpu/tiny-roformer__synthetic`` (``FAILING``): EM and F1 drop by ``SHIFT`` points from
  night ``SHIFT_AT`` on (a level shift that persists 5 nights: the latest run fails its gate);
- ``torch/cpu/tiny-bert__synthetic`` (``IMPROVING``): steady accuracy, train throughput up
  15 % from night 6 (a change point in the good direction; accuracy still passes);
- ``ipu/pod4-emulated/tiny-bert__synthetic`` (``EMULATED``): an emulated IPU entry, steady.

``write_baselines`` writes their baselines from the nights before any shift, through the
suite's own guarded writer, into a folder the test owns.
"""

from __future__ import annotations

import copy
import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from qa.gating.baseline_guard import guarded_update
from qa.results.store import RunResult, append_history, load_result

REAL_RESULT = Path(__file__).with_name("data") / "smoke_result.json"
NIGHTS = 12
SHIFT_AT = 7
SHIFT = 6.0
FAILING = "torch/cpu/tiny-roformer__synthetic"
IMPROVING = "torch/cpu/tiny-bert__synthetic"
EMULATED = "ipu/pod4-emulated/tiny-bert__synthetic"
EMULATED_HW = {"kind": "ipu", "pod": "pod4", "ipus": 4, "replication": 1, "emulated": True,
               "description": "IPU pod4 (emulated)"}


def real_result() -> RunResult:
    """The real smoke run's result."""
    return load_result(REAL_RESULT)


def _commit(night: int) -> str:
    return hashlib.sha1(f"night {night}".encode()).hexdigest()


def _night(base: RunResult, night: int, em: float, f1: float, sps_factor: float,
           key: dict[str, str] | None = None, hardware: dict[str, Any] | None = None
           ) -> RunResult:
    """A copy of ``base`` as night ``night`` with these values (validated on the way)."""
    raw = copy.deepcopy(base.to_dict())
    start = datetime.fromisoformat(base.finished_at) + timedelta(days=night)
    raw["started_at"] = (start - timedelta(minutes=3)).isoformat()
    raw["finished_at"] = start.isoformat()
    raw["environment"]["git_commit"] = _commit(night)
    raw["metrics"].update(exact_match=em, f1=f1)
    raw["seeds"] = [{**seed, "exact_match": em, "f1": f1} for seed in raw["seeds"]]
    raw["timings"]["train_samples_per_s"] *= sps_factor
    if key is not None:
        raw["key"] = dict(key)
        raw["config"]["model"]["name"] = key["model"]
    if hardware is not None:
        raw["hardware"] = dict(hardware)
    return RunResult.from_dict(raw, source=f"night {night}")


def nightly_history(seed: int = 7) -> list[RunResult]:
    """The three series (see the module docstring), one run of each per night, oldest first."""
    rng = random.Random(seed)
    real = real_result()
    em0, f10 = real.metrics["exact_match"], real.metrics["f1"]

    def score(level: float) -> float:
        return round(min(100.0, max(0.0, level + rng.gauss(0, 0.25))), 3)

    runs = []
    for night in range(NIGHTS):
        # the failing entry is neither the first in the history nor alphabetically
        bert = {**real.key, "model": "tiny-bert"}
        runs.append(_night(real, night, score(96.0), score(97.5),
                           (1.15 if night >= 6 else 1.0) * (1 + rng.gauss(0, 0.01)), key=bert))
        drop = SHIFT if night >= SHIFT_AT else 0.0
        runs.append(real if night == 0 else
                    _night(real, night, score(em0 - drop), score(f10 - drop),
                           1 + rng.gauss(0, 0.01)))
        if night >= 2:
            ipu = {**real.key, "backend": "ipu", "pod": "pod4-emulated", "model": "tiny-bert"}
            runs.append(_night(real, night, score(95.0), score(96.5), 1 + rng.gauss(0, 0.01),
                               key=ipu, hardware=EMULATED_HW))
    return runs


def write_history(path: Path, runs: list[RunResult]) -> Path:
    """Append ``runs`` to the JSON-lines history at ``path``, as the runner does."""
    for run in runs:
        append_history(path, run)
    return path


def write_baselines(root: Path, runs: list[RunResult]) -> None:
    """Baselines of the three entries from their nights before ``SHIFT_AT`` and before the
    throughput step, through ``qa.gating.baseline_guard`` as ``qa-bench baseline`` writes them."""
    early = [r for r in runs if datetime.fromisoformat(r.finished_at)
             < datetime.fromisoformat(runs[0].finished_at) + timedelta(days=6)]
    outcome = guarded_update(root, early)
    assert outcome.written, outcome.lines
