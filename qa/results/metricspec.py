"""Every metric qa-bench gates or reports, declared once: ``SPECS``.

Each ``MetricSpec`` says where the value sits in a RunResult, its report column (header and
format), and, for a gated metric, its tolerance rule and direction. Gating and baselines
(``METRICS``), published references, run-to-run compare, the pytest gates, the seed means and
every report column read this list; adding a metric or a column is one entry here.

Two tolerance rules (the ``unit`` a baseline file records):

- ``"points"``, absolute tolerance: accuracy (EM, F1). Judged on every machine — a model that
  learns the task must learn it whatever the CPU, GPU, IPU pod or torch build.
- ``"ratio"``, relative tolerance, ``hardware_bound``: throughput and compile time. Judged only
  against a baseline measured on the same hardware fingerprint (``qa.measure.hardware``).

A spec without a tolerance rule (``unit=""``) is reported, never gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ACCURACY_TOLERANCE = 1.0


@dataclass(frozen=True)
class MetricSpec:
    """One metric: where it sits in a RunResult, how it is shown and (if gated) judged."""

    name: str
    unit: str  # tolerance rule: "points" (absolute), "ratio" (relative), "" (never gated)
    higher_is_better: bool
    default_tolerance: float | None
    sources: tuple[str, ...]  # dotted paths into the RunResult; the first one present wins
    header: str  # the report's column header
    table: str = ""  # the report table it is a column of ("timings"), "" for none
    fmt: str = ""  # format() spec of the cell; "" for the report's default number format
    spread_key: str | None = None  # timings entry with median/iqr of the underlying step times
    rounds_from: str | None = None  # dotted path of the measured durations behind the metric
    # "summary" (CLI line), "trend" (trend table and plot), "changepoint" (step detection),
    # "scaling" (the replica scaling table)
    roles: frozenset[str] = frozenset()

    @property
    def gated(self) -> bool:
        """Judged against baselines (it has a tolerance rule)."""
        return bool(self.unit)

    @property
    def hardware_bound(self) -> bool:
        """Timings belong to the hardware they were measured on; accuracy does not."""
        return self.unit == "ratio"

    def extract(self, result: Any) -> float | None:
        """The metric's value in ``result``, or None where it was not measured."""
        for source in self.sources:
            value = _lookup(result, source)
            if is_number(value):
                return float(value)
        return None

    def cell(self, result: Any) -> Any:
        """The raw value for a report cell (numbers, flags), or None."""
        return next((v for v in (_lookup(result, s) for s in self.sources) if v is not None),
                    None)

    def seed_value(self, seed: dict[str, Any]) -> float | None:
        """The metric in one seed's record (``RunResult.seeds`` keeps the metrics flat)."""
        values = (seed.get(source.rsplit(".", 1)[-1]) for source in self.sources)
        return next((float(v) for v in values if is_number(v)), None)

    def rounds(self, result: Any) -> list[float]:
        """The measured durations (seconds) behind a timing metric, for pytest-benchmark."""
        value = _lookup(result, self.rounds_from) if self.rounds_from else None
        values = value if isinstance(value, list) else [value]
        return [float(v) for v in values if is_number(v) and v > 0]


def _lookup(result: Any, dotted: str) -> Any:
    """``result.timings["compile"]["cold_s"]`` for ``"timings.compile.cold_s"``; None if absent."""
    value: Any = result
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return value


def is_number(value: Any) -> bool:
    """A finite int or float (bool excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reported(name: str, sources: tuple[str, ...], header: str, fmt: str = "") -> MetricSpec:
    return MetricSpec(name, "", True, None, sources, header, table="timings", fmt=fmt)


SPECS: tuple[MetricSpec, ...] = (
    # SQuAD v2 results say "exact" where v1.1 says "exact_match": both gate as exact_match.
    MetricSpec("exact_match", "points", True, ACCURACY_TOLERANCE,
               ("metrics.exact_match", "metrics.exact"), "EM",
               roles=frozenset({"summary", "changepoint"})),
    MetricSpec("f1", "points", True, ACCURACY_TOLERANCE, ("metrics.f1",), "F1",
               roles=frozenset({"summary", "trend", "changepoint"})),
    # The timings table, in column order.
    _reported("step_median_s", ("timings.train_step_s.median",), "step median (s)"),
    _reported("step_iqr_s", ("timings.train_step_s.iqr",), "step IQR (s)"),
    _reported("steps_timed", ("timings.train_step_s.rounds",), "steps timed"),
    # The spread is of seconds per padded token: with dynamic padding the raw step times
    # vary with batch length (workload), which is not noise.
    MetricSpec("train_samples_per_s", "ratio", True, 0.05, ("timings.train_samples_per_s",),
               "train samples/s", table="timings", spread_key="train_token_s",
               rounds_from="timings.train_step_times",
               roles=frozenset({"summary", "trend", "scaling", "changepoint"})),
    _reported("train_tokens_per_s", ("timings.train_tokens_per_s",), "train tokens/s"),
    MetricSpec("eval_samples_per_s", "ratio", True, 0.05, ("timings.eval_samples_per_s",),
               "eval samples/s", table="timings", spread_key="eval_step_s",
               rounds_from="timings.eval_s"),
    # The cold compile gates; older results hold a single "compile_s".
    MetricSpec("compile_s", "ratio", False, 0.25, ("timings.compile.cold_s", "timings.compile_s"),
               "compile cold (s)", table="timings", rounds_from="timings.compile.cold_s"),
    MetricSpec("compile_warm_s", "ratio", False, 0.5, ("timings.compile.warm_s",),
               "compile cached (s)", table="timings", rounds_from="timings.compile.warm_s"),
    _reported("cache_hit", ("timings.compile.cache_hit",), "cache hit"),
    _reported("mfu", ("efficiency.mfu",), "MFU"),
    _reported("peak_rss_mb", ("memory.peak_rss_mb",), "peak RSS (MB)"),
    _reported("cuda_peak_mb", ("memory.cuda_peak_allocated_mb",), "peak CUDA (MB)"),
    _reported("wall_s", ("timings.wall_s",), "wall (s)"),
    # SQuAD v2.0 entries: the answerable / unanswerable split and evaluate-v2.0.py's best
    # thresholds over the null odds (qa.task.postprocessing.postprocess_with_null_odds).
    # References for reading a run, never gated: the best threshold is chosen on the very
    # questions it is scored on.
    *(MetricSpec(name, "", True, None, (f"metrics.{name}",), header, table="no_answer")
      for name, header in (("HasAns_f1", "HasAns F1"), ("NoAns_f1", "NoAns F1"),
                           ("best_exact", "best EM"), ("best_exact_thresh", "best EM threshold"),
                           ("best_f1", "best F1"), ("best_f1_thresh", "best F1 threshold"))),
)

#: The gated metrics by name: what baselines hold, verdicts judge and pytest gates test.
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in SPECS if spec.gated}


def specs(table: str = "", role: str = "") -> list[MetricSpec]:
    """The specs of a report table or with a role, in declaration order."""
    return [s for s in SPECS if (not table or s.table == table) and (not role or role in s.roles)]


def accuracy_specs() -> list[MetricSpec]:
    """The gated accuracy metrics (absolute points, judged on every machine)."""
    return [s for s in METRICS.values() if not s.hardware_bound]


def timing_values(result: Any) -> dict[str, float]:
    """The hardware-bound metrics a result measured (kept per seed, for baselines)."""
    values = {name: spec.extract(result) for name, spec in METRICS.items()
              if spec.hardware_bound}
    return {k: v for k, v in values.items() if v is not None}
