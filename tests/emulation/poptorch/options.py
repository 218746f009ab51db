"""``poptorch.Options``: what optimum-graphcore sets, recorded; what the emulation acts on, read.

Only the setters optimum-graphcore (0.6-0.7) calls exist, so an unknown call fails at once
instead of being silently accepted. The emulated executor reads replication, device
iterations, gradient accumulation, the gradient reduction, the output mode, stochastic rounding,
the executable cache folder and the execution strategy; everything else is recorded in
``settings`` (it shapes a real Poplar compile, not the CPU arithmetic).

As in poptorch (``_options_impl.OptionsDict``): wrapping a model freezes the ``Options`` it was
given (and the executor keeps a frozen clone); any later setter or attribute assignment raises
``AttributeError("Can't modify frozen Options")``. The gradient reduction defaults to
``ReductionType.Mean``, poptorch's default.
"""

from __future__ import annotations

import copy
from typing import Any

from .enums import AutoStage, MeanReductionStrategy, OutputMode, ReductionType


class _Freezable:
    """Refuses every change once frozen (poptorch's ``checkIsFrozen``)."""

    _is_frozen = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_is_frozen" and self.__dict__.get("_is_frozen", False):
            raise AttributeError("Can't modify frozen Options")
        object.__setattr__(self, name, value)

    def _check_frozen(self) -> None:
        if self.__dict__.get("_is_frozen", False):
            raise AttributeError("Can't modify frozen Options")

    def _change_freeze_state(self, frozen: bool) -> None:
        object.__setattr__(self, "_is_frozen", frozen)
        for value in self.__dict__.values():
            if isinstance(value, _Freezable):
                value._change_freeze_state(frozen)
            elif isinstance(value, dict):
                for item in value.values():
                    if isinstance(item, _Freezable):
                        item._change_freeze_state(frozen)

    def _freeze(self) -> None:
        self._change_freeze_state(True)

    def _unfreeze(self) -> None:
        self._change_freeze_state(False)


class TensorLocationSettings(_Freezable):
    """Where a kind of tensor lives (recorded only)."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}

    def useOnChipStorage(self, use: bool = True) -> TensorLocationSettings:  # noqa: N802
        self._check_frozen()
        self.settings["on_chip"] = bool(use)
        return self

    def useReplicatedTensorSharding(self, use: bool = True) -> TensorLocationSettings:  # noqa: N802
        self._check_frozen()
        self.settings["replicated_tensor_sharding"] = bool(use)
        return self


class _ExecutionStrategy:
    def __init__(self, first_stage: AutoStage | Any = AutoStage.SameAsIpu) -> None:
        self.first_stage = first_stage


class PipelinedExecution(_ExecutionStrategy):
    """Pipelined stages: each block's IPU runs its stage for a different micro batch."""


class ShardedExecution(_ExecutionStrategy):
    """Sharded stages: one micro batch flows through the IPUs in turn."""


class _Training(_Freezable):
    def __init__(self) -> None:
        self.gradient_accumulation = 1
        self.reduction = ReductionType.Mean
        self.mean_reduction_strategy = MeanReductionStrategy.Post
        self.automatic_loss_scaling = False

    @property
    def meanAccumulationAndReplicationReductionStrategy(self) -> MeanReductionStrategy:  # noqa: N802
        return self.mean_reduction_strategy

    def setMeanAccumulationAndReplicationReductionStrategy(  # noqa: N802
            self, strategy: MeanReductionStrategy) -> _Training:
        self._check_frozen()
        self.mean_reduction_strategy = MeanReductionStrategy(strategy)
        return self

    def gradientAccumulation(self, steps: int) -> _Training:  # noqa: N802
        self._check_frozen()
        if int(steps) < 1:
            raise ValueError(f"gradientAccumulation must be >= 1, got {steps}")
        self.gradient_accumulation = int(steps)
        return self

    def accumulationAndReplicationReductionType(self, kind: ReductionType) -> _Training:  # noqa: N802
        self._check_frozen()
        self.reduction = ReductionType(kind)
        return self

    def setAutomaticLossScaling(self, enabled: bool) -> _Training:  # noqa: N802
        self._check_frozen()
        self.automatic_loss_scaling = bool(enabled)
        return self


class _Precision(_Freezable):
    def __init__(self) -> None:
        self.stochastic_rounding = False
        self.partials_type: Any = None

    def enableStochasticRounding(self, enabled: bool) -> _Precision:  # noqa: N802
        self._check_frozen()
        self.stochastic_rounding = bool(enabled)
        return self

    def setPartialsType(self, dtype: Any) -> _Precision:  # noqa: N802
        self._check_frozen()
        self.partials_type = dtype
        return self


class _TensorLocations(_Freezable):
    def __init__(self) -> None:
        self.optimizer: TensorLocationSettings | None = None

    def setOptimizerLocation(self, location: TensorLocationSettings) -> _TensorLocations:  # noqa: N802
        self._check_frozen()
        self.optimizer = location
        return self


class _Popart(_Freezable):
    """PopART's own options: recorded as given."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.patterns: dict[str, bool] = {}

    def set(self, key: str, value: Any) -> _Popart:
        self._check_frozen()
        self.options[key] = value
        return self

    def setPatterns(self, patterns: dict[str, bool], level: int = 2) -> _Popart:  # noqa: N802
        self._check_frozen()
        self.patterns.update(patterns)
        return self


class _Distributed(_Freezable):
    numProcesses = 1  # noqa: N815 - poptorch's name
    processId = 0  # noqa: N815


class Options(_Freezable):
    """The options of one executable (training or inference)."""

    def __init__(self) -> None:
        self.replication_factor = 1
        self.device_iterations = 1
        self.output_mode = OutputMode.Default
        self.random_seed: int | None = None
        self.auto_round_num_ipus = False
        self.execution_strategy: _ExecutionStrategy = PipelinedExecution()
        self.offline_target = False
        self.available_memory_proportion: dict[str, float] = {}
        self.executable_cache_dir: str | None = None
        self.Training = _Training()
        self.Precision = _Precision()
        self.TensorLocations = _TensorLocations()
        self.Distributed = _Distributed()
        self._Popart = _Popart()

    @property
    def _popart(self) -> _Popart:
        # optimum-graphcore 0.7 spells it this way once (explicit IR inference).
        return self._Popart

    def replicationFactor(self, factor: int) -> Options:  # noqa: N802
        self._check_frozen()
        if int(factor) < 1:
            raise ValueError(f"replicationFactor must be >= 1, got {factor}")
        self.replication_factor = int(factor)
        return self

    def deviceIterations(self, iterations: int) -> Options:  # noqa: N802
        self._check_frozen()
        if int(iterations) < 1:
            raise ValueError(f"deviceIterations must be >= 1, got {iterations}")
        self.device_iterations = int(iterations)
        return self

    def outputMode(self, mode: OutputMode, output_return_period: int | None = None) -> Options:  # noqa: N802
        self._check_frozen()
        self.output_mode = OutputMode(mode)
        return self

    def randomSeed(self, seed: int) -> Options:  # noqa: N802
        self._check_frozen()
        self.random_seed = int(seed)
        return self

    def autoRoundNumIPUs(self, enabled: bool) -> Options:  # noqa: N802
        self._check_frozen()
        self.auto_round_num_ipus = bool(enabled)
        return self

    def setExecutionStrategy(self, strategy: _ExecutionStrategy) -> Options:  # noqa: N802
        self._check_frozen()
        if not isinstance(strategy, _ExecutionStrategy):
            raise TypeError(f"not an execution strategy: {strategy!r}")
        self.execution_strategy = strategy
        return self

    def useOfflineIpuTarget(self, ipu_version: int = 2) -> Options:  # noqa: N802
        self._check_frozen()
        self.offline_target = True
        return self

    def setAvailableMemoryProportion(self, proportions: dict[str, float]) -> Options:  # noqa: N802
        self._check_frozen()
        for ipu, value in proportions.items():
            if not 0 < float(value) <= 1:
                raise ValueError(f"available memory proportion of {ipu} must be in (0, 1]")
        self.available_memory_proportion = dict(proportions)
        return self

    def enableExecutableCaching(self, path: str) -> Options:  # noqa: N802
        self._check_frozen()
        self.executable_cache_dir = str(path)
        return self

    def clone(self) -> Options:
        """An unfrozen deep copy (what the executor keeps of the options it was given)."""
        other = copy.deepcopy(self)
        other._unfreeze()
        return other

    def defaultOutputMode(self) -> bool:  # noqa: N802
        """Whether the output mode was left at its default."""
        return self.output_mode == OutputMode.Default

    def exists(self, name: str) -> bool:
        """Whether an option was set (poptorch's check, used with ``random_seed``)."""
        return name == "random_seed" and self.random_seed is not None

    def signature(self, training: bool) -> dict[str, Any]:
        """What changes the compiled executable (part of the executable cache key)."""
        return {
            "training": training,
            "replication_factor": self.replication_factor,
            "device_iterations": self.device_iterations,
            "gradient_accumulation": self.Training.gradient_accumulation if training else 1,
            "reduction": int(self.Training.reduction),
            "mean_strategy": int(self.Training.mean_reduction_strategy),
            "output_mode": int(self.output_mode),
            "strategy": type(self.execution_strategy).__name__,
            "stochastic_rounding": self.Precision.stochastic_rounding,
            "memory": sorted(self.available_memory_proportion.items()),
            "popart": sorted((k, repr(v)) for k, v in self._Popart.options.items()
                             if k != "saveInitializersToFile"),
        }
