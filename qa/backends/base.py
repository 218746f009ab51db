"""The backend contract: everything the rest of qa-bench asks of a backend, declared once.

The pipeline constructs a backend with the tokenizer's padding side, asks whether it can run
and what hardware it runs on, then compiles, trains and predicts. Profiles ask which pods (or
devices) it accepts, how a pod becomes config overrides, which pytest marks its entries carry;
result keys ask for the pod part; the runner asks how an entry is launched (in this process or
under a launcher such as torchrun); a failure is classified by its kind. Sharding asks what an
entry costs, reports how its hardware reads and which package versions it reports; each has a
generic default here. A backend is a folder ``qa/backends/<name>/`` whose class implements
this, plus one line in the registry (``qa/backends/__init__.py``), or a class in another
distribution named by a ``qa_bench.backends`` entry point. ``tests/backends/test_base_contract.py``
binds every call the callers make against every registered backend.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.launchers import Worker, inline
from qa.measure.hardware import identity_line

if TYPE_CHECKING:
    from datasets import Dataset

    from qa.config.schema import RunConfig
    from qa.measure.convergence import ConvergenceMonitor
    from qa.results.store import RunResult


#: The default device rate of ``Backend.cost_seconds`` (effective training FLOP/s).
DEFAULT_FLOPS_PER_S = 2e10


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


class BackendFailure(RuntimeError):
    """A failure with its own RunResult status (other exceptions record ``failed``)."""

    status = "failed"


class Diverged(BackendFailure):
    """The training loss became NaN or infinite."""

    status = "diverged"


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions providing it (read once: ~0.1 s)."""
    return md.packages_distributions()


class Backend(ABC):
    """A training backend. Subclasses set ``NAME`` and ``SLOTS`` and are registered by name.

    Args:
        padding_side: the tokenizer's padding side ("right" or "left"), for backends that cut
            or shift padded batches.
    """

    NAME: str = ""
    #: What a *slot* (where one entry runs; a profile's ``pods`` list names them) is called for
    #: this backend, in errors: an IPU "pod", a torch "device".
    SLOT_KIND: str = "pod"
    #: The slot names the backend accepts (``pod16``, ``cpu``); the first is the default.
    SLOTS: tuple[str, ...] = ()
    #: pytest marks its entries may carry, with their descriptions (registered by the plugin).
    MARKS: dict[str, str] = {}

    #: Spellings of the contract before "slot" (a backend written against them still works).
    OLD_NAMES = {"PODS": "SLOTS", "POD_KIND": "SLOT_KIND", "pod_overrides": "slot_overrides",
                 "result_pod": "result_slot"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for old, new in Backend.OLD_NAMES.items():
            if old in cls.__dict__ and new not in cls.__dict__:
                warnings.warn(f"{cls.__module__}.{cls.__qualname__}.{old} is deprecated: name it "
                              f"{new} (qa.backends.base)", DeprecationWarning, stacklevel=2)
                setattr(cls, new, cls.__dict__[old])

    def __init__(self, padding_side: str = "right") -> None:
        self.padding_side = padding_side

    # -- before anything runs ---------------------------------------------------------------
    @classmethod
    @abstractmethod
    def available(cls, config: RunConfig | None = None) -> tuple[bool, str]:
        """Whether this backend (and ``config``'s device, if given) can run here, else why."""

    @classmethod
    @abstractmethod
    def fingerprint(cls, config: RunConfig) -> dict[str, Any]:
        """The hardware this entry runs on (``qa.measure.hardware``): timing baselines match
        on it."""

    @classmethod
    def slot_overrides(cls, pod: str) -> list[str]:
        """``--set`` overrides that place an entry on slot ``pod`` (a name from ``SLOTS``)."""
        return [f"hardware.pod={pod}"]

    @classmethod
    def result_slot(cls, config: RunConfig) -> str:
        """The slot part of the entry's result key (stored as ``pod``, and its baseline's path)."""
        return config.hardware.pod or cls.SLOTS[0]

    @classmethod
    def entry_marks(cls, pod: str) -> tuple[str, ...]:
        """pytest marks of an entry on ``pod`` (names from ``MARKS``)."""
        return ()

    @classmethod
    def static_check(cls, config: RunConfig) -> tuple[str | None, str] | None:
        """The rules the target hardware refuses an entry by, judged from its config alone.

        ``qa-bench run --preflight`` calls this for every entry, with no device or SDK present:
        ``(refusal, detail)``, refusal None when the entry passed every rule, or None (the
        default) when this backend has no static rules, so that nothing is called checked that
        was not.
        """
        return None

    @classmethod
    def probe_device(cls, config: RunConfig) -> str | None:
        """The torch device whose matmul speed stands for this run's hardware, or None.

        The pipeline's FLOP/s probe (MFU's peak, the probe during training) runs there. None
        (the default) when no torch device on the host is the hardware the steps ran on: then
        no probe runs and MFU stays unset rather than being measured against the wrong chip.
        """
        return None

    @classmethod
    def data_parallel(cls, config: RunConfig) -> int:
        """How many copies of the model share one optimizer step's samples, as the config sets
        it (the sharding plan's sample count with ``train.max_steps``). Default: 1."""
        return 1

    @classmethod
    def compute_dtype(cls, config: RunConfig) -> str:
        """The torch dtype the model's matmuls run in (the FLOP/s probe's dtype for MFU).
        Default: ``float32``."""
        return "float32"

    @classmethod
    def cost_seconds(cls, config: RunConfig, flops: float, params: float) -> float:
        """Estimated device-seconds of one seed of an entry (``qa.run.sharding``).

        ``flops`` is the entry's training plus evaluation work, ``params`` the model's
        parameters, both from the config alone. The estimate must depend on the config only (no
        probe, no clock): every host of a sharded run computes the same partition. Default: the
        work at ``DEFAULT_FLOPS_PER_S`` (a CPU's order of magnitude), no compile time.
        """
        return flops / DEFAULT_FLOPS_PER_S

    @classmethod
    def describe(cls, fingerprint: dict[str, Any]) -> str:
        """One line naming the hardware of ``fingerprint`` for reports and verdicts.

        The pipeline stores it in the fingerprint (``description``) when the entry runs, so the
        report and the gates, which import no backend, read it from the result. Default: the
        identity fields the fingerprint carries (``qa.measure.hardware.identity_line``).
        """
        return identity_line(fingerprint)

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Package versions this backend reports in a result's environment, beside the common
        ones (``qa.results.store.environment_record``). Default: the distribution that
        provides the backend's module, when it is installed."""
        found: dict[str, str] = {}
        for dist in _distributions().get(cls.__module__.split(".")[0], []):
            try:
                found[dist] = md.version(dist)
            except md.PackageNotFoundError:
                continue
        return found

    # -- running an entry -------------------------------------------------------------------
    @classmethod
    def launch(cls, config: RunConfig, options: Any, worker: Worker) -> RunResult:
        """Run ``worker`` for one entry and return its result: in this process
        (``qa.launchers.inline``) unless a backend picks another launcher.

        ``options`` is the runner's ``RunOptions`` (cache folder, progress); ``worker`` the
        pipeline's ``run_entry``, handed down so that no backend imports the pipeline.
        """
        return inline(config, options, worker)

    @classmethod
    def failure_status(cls, exc: BaseException) -> str | None:
        """The RunResult status for ``exc`` when it is one of the backend's failure kinds."""
        return exc.status if isinstance(exc, BackendFailure) else None

    # -- the pipeline's stages --------------------------------------------------------------
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
