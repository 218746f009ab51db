"""Builders for the comparison tests: one IPU entry (``KEY``) measured twice."""

from __future__ import annotations

from typing import Any

from qa.config.schema import RunConfig
from qa.results.store import RunResult

KEY = {"backend": "ipu", "pod": "pod16", "model": "bert-base-uncased", "dataset": "squad"}
ENTRY = "ipu/pod16/bert-base-uncased__squad"


def make_result(f1: float = 88.0, sps: float = 400.0, compile_cold: float = 30.0,
                status: str = "ok", iqr: float = 0.004, **overrides: Any) -> RunResult:
    """A small, valid RunResult; keyword overrides replace whole fields."""
    fields: dict[str, Any] = {
        "key": dict(KEY),
        "config": RunConfig().to_dict(),
        "metrics": {"exact_match": 81.0, "f1": f1},
        "timings": {"train_samples_per_s": sps,
                    "train_step_s": {"median": 0.4, "iqr": iqr, "rounds": 200},
                    "train_token_s": {"median": 4e-5, "iqr": iqr / 1e4, "rounds": 200},
                    "compile": {"cold_s": compile_cold}},
        "environment": {"versions": {"optimum-graphcore": "0.7.1"}},
        "dataset_fingerprint": "fp1",
        "status": status,
        "failure": {"stage": "compile", "cause": "poplar error"} if status != "ok" else None,
    }
    fields.update(overrides)
    return RunResult(**fields)


def verdicts(table: str) -> dict[str, str]:
    """metric -> verdict cell, from the markdown table."""
    rows = [line.split("|") for line in table.splitlines() if line.startswith(f"| {ENTRY}")]
    return {cells[2].strip(): cells[-2].strip() for cells in rows}
