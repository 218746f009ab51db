"""Time-to-target: a cheap periodic evaluation during training, MLPerf-style.

Every ``target.every`` share of the training steps the backend hands the model to a
``ConvergenceMonitor``, which predicts a fixed held-out slice of the validation split (its first
``target.examples`` examples), post-processes and scores it. The first evaluation at or above
``target.value`` gives the time-to-target: optimizer steps and training seconds (step times
only; the evaluations themselves are not counted). A run that never reaches it records null.

The same pauses carry a short matmul probe (``probe``): the machine's speed measured *during*
training, in the same window as the steps. A neighbour that takes half the CPU halves both, so
throughput divided by this probe is steadier on a shared machine than raw samples/s.

Why it matters: a tiny model that learns the task late, at a moment that depends on the seed or
on float rounding, ends at an EM that depends on them too. A run that crosses early and then
trains on is robust; the crossing step says which kind of run this was.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConvergenceMonitor:
    """Decides when to evaluate during training and records the curve and the crossing.

    Args:
        evaluate: model -> metrics dict (``exact_match``, ``f1``) on the held-out slice.
        metric: the metric the target is set on.
        target: the value to reach.
        every: share of the total steps between evaluations (0 disables the monitor).
        examples: size of the held-out slice (reported).
    """

    evaluate: Callable[[Any], dict[str, float]]
    metric: str = "exact_match"
    target: float = 80.0
    every: float = 0.05
    examples: int = 0
    probe: Callable[[], float] | None = None  # FLOP/s of a short matmul probe, run at each point
    curve: list[dict[str, float]] = field(default_factory=list)
    reached: dict[str, float] | None = None
    eval_s: float = 0.0
    probe_flops: list[float] = field(default_factory=list)

    def interval(self, total_steps: int) -> int:
        """Optimizer steps between two evaluations (0: never)."""
        if self.every <= 0 or total_steps <= 0:
            return 0
        return max(1, round(self.every * total_steps))

    def due(self, step: int, total_steps: int) -> bool:
        """Whether to evaluate after optimizer step ``step`` (1-based); the last step always is."""
        interval = self.interval(total_steps)
        return bool(interval) and (step % interval == 0 or step == total_steps)

    def record(self, model: Any, step: int, train_s: float, total_steps: int) -> dict[str, float]:
        """Evaluate ``model`` now; remember the point and the first crossing of the target."""
        began = time.perf_counter()
        scores = self.evaluate(model)
        if self.probe is not None:
            self.probe_flops.append(float(self.probe()))
        self.eval_s += time.perf_counter() - began
        point = {"step": step, "fraction": round(step / total_steps, 4),
                 "train_s": round(train_s, 3),
                 **{k: round(float(scores[k]), 3) for k in ("exact_match", "f1") if k in scores}}
        self.curve.append(point)
        if self.reached is None and point.get(self.metric, float("-inf")) >= self.target:
            self.reached = point
        return point

    def summary(self) -> dict[str, Any]:
        """The RunResult's ``timings.time_to_target``: target, crossing (or None) and curve."""
        hit = self.reached
        return {
            "metric": self.metric, "target": self.target, "examples": self.examples,
            "steps": hit["step"] if hit else None,
            "train_s": hit["train_s"] if hit else None,
            "fraction": hit["fraction"] if hit else None,
            "evaluations": len(self.curve), "eval_s": round(self.eval_s, 3),
            "curve": self.curve,
        }

    def probe_median(self) -> float | None:
        """Median FLOP/s of the probes run during training (None when there were none)."""
        return statistics.median(self.probe_flops) if self.probe_flops else None
