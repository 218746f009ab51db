"""Every gated metric, declared once: where it sits in a RunResult, its unit and direction.

Two kinds:

- accuracy (``"points"``, absolute tolerance): EM and F1. Judged on every machine — a model
  that learns the task must learn it whatever the CPU, GPU, IPU pod or torch build.
- timings (``"ratio"``, relative tolerance, ``hardware_bound``): throughput and compile time.
  Judged only against a baseline measured on the same hardware fingerprint (``qa.hardware``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ACCURACY_TOLERANCE = 1.0


@dataclass(frozen=True)
class MetricSpec:
    """One gated metric: where it sits in a RunResult, its unit, direction and default tolerance."""

    name: str
    unit: str
    higher_is_better: bool
    default_tolerance: float
    sources: tuple[str, ...]  # dotted paths into the RunResult; the first one present wins
    spread_key: str | None = None  # timings entry with median/iqr of the underlying step times

    @property
    def hardware_bound(self) -> bool:
        """Timings belong to the hardware they were measured on; accuracy does not."""
        return self.unit == "ratio"

    def extract(self, result: Any) -> float | None:
        """The metric's value in ``result``, or None where it was not measured."""
        for source in self.sources:
            value: Any = result
            for part in source.split("."):
                value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
                if value is None:
                    break
            if is_number(value):
                return float(value)
        return None


def is_number(value: Any) -> bool:
    """A finite int or float (bool excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        # SQuAD v2 results say "exact" where v1.1 says "exact_match": both gate as exact_match.
        MetricSpec("exact_match", "points", True, ACCURACY_TOLERANCE,
                   ("metrics.exact_match", "metrics.exact")),
        MetricSpec("f1", "points", True, ACCURACY_TOLERANCE, ("metrics.f1",)),
        # The spread is of seconds per padded token: with dynamic padding the raw step times
        # vary with batch length (workload), which is not noise.
        MetricSpec("train_samples_per_s", "ratio", True, 0.05, ("timings.train_samples_per_s",),
                   spread_key="train_token_s"),
        MetricSpec("eval_samples_per_s", "ratio", True, 0.05, ("timings.eval_samples_per_s",),
                   spread_key="eval_step_s"),
        # The cold compile gates; older results hold a single "compile_s".
        MetricSpec("compile_s", "ratio", False, 0.25, ("timings.compile.cold_s",
                                                        "timings.compile_s")),
        MetricSpec("compile_warm_s", "ratio", False, 0.5, ("timings.compile.warm_s",)),
    )
}


def timing_values(result: Any) -> dict[str, float]:
    """The hardware-bound metrics a result measured (kept per seed, for baselines)."""
    values = {name: spec.extract(result) for name, spec in METRICS.items()
              if spec.hardware_bound}
    return {k: v for k, v in values.items() if v is not None}
