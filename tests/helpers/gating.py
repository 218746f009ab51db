"""Builders of results and baselines for the gating tests: one torch entry on a test CPU.

``make_result()`` is a small valid ``RunResult`` of ``KEY`` measured on ``HW``; ``make_baseline``
a baseline of the same entry that records its workload, so the two are comparable.
"""

from __future__ import annotations

from typing import Any

from qa.config.schema import RunConfig
from qa.gating.baselines import Baseline
from qa.gating.comparability import recorded
from qa.results.metricspec import METRICS
from qa.results.store import RunResult

KEY = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}
HW = {"kind": "cpu", "cpu": "Test CPU", "cpu_id": "Test/25/1/1", "cpu_flags": "f00", "cores": 8,
      "threads": 8, "torch_build": "cpu"}
OTHER_HW = {**HW, "cpu_id": "Test/25/17/0"}  # same model, another machine
IPU_HW = {"kind": "ipu", "pod": "pod16", "ipus": 16, "replication": 4, "emulated": False}
IPU_KEY = {"backend": "ipu", "pod": "pod16", "model": "tiny-bert", "dataset": "synthetic"}


def make_result(em: float = 80.0, f1: float = 88.0, sps: float = 100.0,
                compile_cold: float | None = 10.0, status: str = "ok",
                seeds: list[dict[str, Any]] | None = None, step: tuple[float, float] = (0.4, 0.02),
                **overrides: Any) -> RunResult:
    """A small, valid RunResult; keyword overrides replace whole fields."""
    fields: dict[str, Any] = {
        "key": dict(KEY),
        "config": RunConfig().to_dict(),
        "metrics": {"exact_match": em, "f1": f1},
        "timings": {"train_samples_per_s": sps, "eval_samples_per_s": 2 * sps,
                    "train_step_s": {"median": step[0], "iqr": step[1], "rounds": 100},
                    # the throughput spread is read from seconds per padded token
                    "train_token_s": {"median": step[0] / 1e4, "iqr": step[1] / 1e4,
                                      "rounds": 100},
                    "compile": {"cold_s": compile_cold, "warm_s": None, "cache_hit": False}},
        "environment": {"versions": {"qa-bench": "0.1.0", "torch": "2.3.0"}, "cpu": "Test CPU",
                        "cores": 8, "git_commit": "abc123", "python": "3.11.7"},
        "hardware": dict(HW),
        "dataset_fingerprint": "fp1",
        "status": status,
        "failure": {"stage": "train", "cause": "loss is NaN"} if status != "ok" else None,
        "seeds": seeds if seeds is not None else [{"seed": 42, "exact_match": em, "f1": f1}],
        "finished_at": "2024-05-01T12:00:00+00:00",
    }
    fields.update(overrides)
    return RunResult(**fields)


def make_baseline(hardware: dict[str, Any] | None = None, **metrics: dict[str, Any]) -> Baseline:
    """A baseline holding the given metrics (unit and direction filled from METRICS); timing
    metrics go into one section measured on ``hardware`` (default: the results' ``HW``)."""
    raw = {name: {"unit": METRICS[name].unit, "higher_is_better": METRICS[name].higher_is_better,
                  **m} for name, m in metrics.items()}
    accuracy = {n: m for n, m in raw.items() if not METRICS[n].hardware_bound}
    timing = {n: m for n, m in raw.items() if METRICS[n].hardware_bound}
    return Baseline.from_dict({"key": dict(KEY), "metrics": accuracy,
                               "timings": [{"hardware": hardware or dict(HW), "metrics": timing}],
                               "provenance": provenance()})


def provenance(**extra: Any) -> dict[str, Any]:
    """A test baseline's provenance recording the workload of ``make_result()`` (comparable)."""
    return {"measured_by": "test", "date": "2024-01-01", "dataset_fingerprint": "fp1",
            **recorded([make_result()]), **extra}


def by_metric(verdicts: list) -> dict[str, Any]:
    """metric -> verdict."""
    return {v.metric: v for v in verdicts}


# The baseline of the verdict-field tests (``make_baseline(**BASE)``).
BASE = {"exact_match": {"value": 80.0, "tolerance": 0.5}, "f1": {"value": 88.0, "tolerance": 0.5},
        "train_samples_per_s": {"value": 100.0, "tolerance": 0.05},
        "compile_s": {"value": 10.0, "tolerance": 0.25}}


def timings(**values: Any) -> dict[str, Any]:
    """A result's timings holding only the given metrics."""
    out: dict[str, Any] = {"compile": {"cold_s": values.pop("compile_s", None),
                                       "warm_s": values.pop("compile_warm_s", None)}}
    return {**out, **values}
