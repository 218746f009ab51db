"""The backend interface: every backend compiles, trains and predicts the same way."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from datasets import Dataset

    from qa.config import RunConfig
    from qa.convergence import ConvergenceMonitor


@dataclass
class CompileTiming:
    """Compilation time: cold (empty cache) and warm (from the cache) where measured."""

    cold_s: float | None = None
    warm_s: float | None = None
    cache_hit: bool | None = None
    what: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"cold_s": self.cold_s, "warm_s": self.warm_s, "cache_hit": self.cache_hit,
                "what": self.what}


@dataclass
class TrainTiming:
    """What training measured. Step times exclude the warm-up steps."""

    step_times: list[float] = field(default_factory=list)
    samples_per_step: int = 0
    tokens_per_step: list[int] = field(default_factory=list)
    loss_curve: list[float] = field(default_factory=list)
    total_s: float = 0.0
    steps: int = 0
    samples_per_s: float = 0.0
    tokens_per_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Predictions:
    """Raw model outputs for every validation feature, in feature order."""

    start_logits: np.ndarray
    end_logits: np.ndarray
    samples_per_s: float
    total_s: float
    rounds: dict[str, Any] = field(default_factory=dict)  # timed passes: median, iqr, rounds


class Backend(ABC):
    """A training backend. Subclasses set ``NAME`` and are registered in ``qa.backends``."""

    NAME: str = ""

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this backend can run here, and if not, why (shown as the skip reason)."""

    @classmethod
    @abstractmethod
    def fingerprint(cls, config: RunConfig) -> dict[str, Any]:
        """The hardware this entry runs on (``qa.hardware``): timing baselines match on it."""

    @abstractmethod
    def compile(self, model: Any, features: Dataset, config: RunConfig) -> CompileTiming:
        """Compile the model for the run (Poplar on IPU, torch.compile on torch)."""

    @abstractmethod
    def train(self, model: Any, features: Dataset, config: RunConfig, progress: bool = True,
              monitor: ConvergenceMonitor | None = None) -> TrainTiming:
        """Fine-tune ``model`` in place on tokenised training features.

        When ``monitor`` is given, call ``monitor.record(model, step, train_s, total_steps)``
        after every optimizer step for which ``monitor.due(step, total_steps)`` is true
        (time-to-target), and keep its time out of the step times.
        """

    @abstractmethod
    def predict(self, model: Any, features: Dataset, config: RunConfig,
                progress: bool = True) -> Predictions:
        """Start/end logits for every validation feature (extra columns are not model inputs)."""
