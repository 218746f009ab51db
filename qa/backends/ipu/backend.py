"""Graphcore IPU backend: optimum-graphcore's ``IPUTrainer`` on an IPU pod.

poptorch and optimum-graphcore are imported only inside methods, so this module imports (and its
pure keyword builders in ``keywords.py`` are tested) on machines without the Poplar SDK.

Compile time is measured apart from training: ``compile`` compiles the training graph twice into
a fresh executable cache (cold, then a cache load) with throw-away trainers, and ``train`` times
the trainer's own compile call (a cache load by then) and leaves it out of the step times.

``IPUTrainer`` trains a pipelined fp16 copy of the model it is given. ``predict`` of the same
model reuses that trainer (its inference executable shares the trained weights), also in the
middle of training for time-to-target: the training executable is detached from the IPUs for
the evaluation and attached again after it, as optimum-graphcore does for its own evaluations.
After training the trained weights are copied back into the caller's model, so ``train``
fine-tunes ``model`` in place as the contract says.

Under the poptorch emulation (``tests/emulation``) everything runs on the CPU; results say so
(``emulated`` in the hardware fingerprint, ``-emulated`` in the pod part of the result key).
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa import progress as progress_report
from qa.backends.base import Backend, CompileTiming, Predictions, TrainTiming
from qa.backends.ipu.config import (
    POD_SIZES,
    IPUSettings,
    OptimumAPI,
    api_for_version,
    check_layers,
    config_name_for_model,
    ipu_config_kwargs,
    load_ipu_config,
    replication_factor,
)
from qa.backends.ipu.keywords import (
    LABEL_COLUMNS,
    check_model_supported,
    model_input_columns,
    optimum_version,
    padded_indices,
    trainer_kwargs,
    training_args_kwargs,
)
from qa.backends.ipu.rules import check_entry
from qa.errors import QABenchError
from qa.results.store import EMULATED_POD_SUFFIX

if TYPE_CHECKING:
    from datasets import Dataset

    from qa.config.schema import RunConfig
    from qa.measure.convergence import ConvergenceMonitor

#: Suffix of the result key's pod under the poptorch emulation: emulated results and baselines
#: are filed apart from real pods' and can never gate (or be gated by) hardware numbers.
EMULATED_SUFFIX = EMULATED_POD_SUFFIX
#: Effective training FLOP/s of one IPU for the sharding estimate: the one measured figure in the
#: nightly issue, 387 samples/s for BERT-base at 384 tokens on pod16 (16 IPUs).
IPU_RATE = 387 * 6 * 110e6 * 384 / 16
COMPILE_S_PER_M_PARAMS = 0.3  # graph compile: ~35 s for BERT-base on an IPU


def poptorch_module() -> Any | None:
    """The importable poptorch (real or the test emulation), or None."""
    try:
        import poptorch
    except Exception:  # noqa: BLE001 - a non-enabled SDK fails in several ways
        return None
    return poptorch


def emulated() -> bool:
    """Whether results made here are emulated: true unless the evidence says Poplar SDK.

    Decided from evidence (``emulation_evidence``), never from an attribute a stub may forget
    to set. With no poptorch at all nothing runs, and the answer is False.
    """
    module = poptorch_module()
    return module is not None and emulation_evidence(module) is not None


def emulation_evidence(module: Any) -> str | None:
    """Why ``module`` is not the Poplar SDK's poptorch, or None when everything says it is.

    A real poptorch is the SDK's wheel: an installed ``poptorch`` distribution that lists the
    very file imported, and the Poplar runtime beside it (the SDK's ``enable.sh`` sets
    ``POPLAR_SDK_ENABLED``; ``libpoplar.so`` is on the library path). Anything else, a module
    on ``PYTHONPATH`` such as ``tests/emulation`` included, is an emulation.
    """
    if getattr(module, "EMULATED", False):
        return "the module says it is an emulation (EMULATED)"
    where = getattr(module, "__file__", None)
    if not where:
        return "poptorch has no source file (not an installed wheel)"
    try:
        dist = md.distribution("poptorch")
    except md.PackageNotFoundError:
        return f"poptorch is imported from {where}, and no poptorch wheel is installed"
    listed = {Path(str(dist.locate_file(f))).resolve() for f in dist.files or ()}
    if Path(where).resolve() not in listed:
        return (f"poptorch is imported from {where}, not from the installed poptorch "
                f"{dist.version} wheel")
    if not poplar_runtime():
        return "no Poplar runtime: POPLAR_SDK_ENABLED unset and no libpoplar.so on the library path"
    return None


def poplar_runtime() -> bool:
    """Whether the Poplar SDK's runtime is enabled here (its ``enable.sh`` or ``libpoplar``)."""
    if os.environ.get("POPLAR_SDK_ENABLED"):
        return True
    for folder in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        if folder and (Path(folder) / "libpoplar.so").exists():
            return True
    return False


def _step_recorder(monitor: ConvergenceMonitor | None) -> Any:
    """A ``TrainerCallback`` timing optimizer steps, keeping losses, and feeding ``monitor``."""
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        def __init__(self) -> None:
            self.durations: list[float] = []
            self.losses: list[float] = []
            self.evaluate: Any = None  # set by the backend: (step, train_s, total) -> None
            self.evaluating = False
            self._start = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # The step (one executable call: accumulation + optimizer) ends here; the monitor's
            # evaluation below is outside both the step time and the training clock.
            self.durations.append(time.perf_counter() - self._start)
            if monitor is not None and monitor.due(state.global_step, state.max_steps):
                self.evaluating = True
                try:
                    self.evaluate(state.global_step, sum(self.durations), state.max_steps)
                finally:
                    self.evaluating = False

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    return StepRecorder()


@contextmanager
def _timed(obj: Any, method: str, counts: Callable[[], bool] = lambda: True,
           ) -> Iterator[list[float]]:
    """Within the block, append the duration of each ``obj.method`` call that ``counts()``."""
    own = vars(obj).get(method)
    original = getattr(obj, method)
    durations: list[float] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if counts():
                durations.append(time.perf_counter() - start)

    setattr(obj, method, wrapper)
    try:
        yield durations
    finally:
        if own is None:
            delattr(obj, method)
        else:
            setattr(obj, method, own)


def _cache_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


class IPUBackend(Backend):
    """Fine-tune and predict with optimum-graphcore on one pod (``hardware.pod``)."""

    NAME = "ipu"
    SLOT_KIND = "pod"
    SLOTS = tuple(POD_SIZES)
    MARKS = {"ipu": "needs Graphcore IPU hardware and the Poplar SDK (or the poptorch emulation)"}

    def __init__(self, padding_side: str = "right") -> None:
        # IPU features are padded to max_length (static shapes): the side changes nothing here.
        super().__init__(padding_side)
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._trainer: Any = None
        self._trained_model_id: int | None = None

    # -- contract: before anything runs -----------------------------------------------------
    @classmethod
    def available(cls, config: RunConfig | None = None) -> tuple[bool, str]:
        """Whether poptorch, optimum-graphcore and an IPU are all present."""
        try:
            import poptorch
        except ImportError:
            return False, "poptorch not importable: install the Poplar SDK"
        except Exception as exc:  # the SDK's import can fail in other ways when not enabled
            return False, f"poptorch failed to import ({exc}): enable the Poplar SDK"
        if optimum_version() is None:
            return False, "optimum-graphcore not installed: pip install 'qa-bench[ipu]'"
        if not poptorch.ipuHardwareIsAvailable():
            return False, "no IPU attached (poptorch.ipuHardwareIsAvailable() is False)"
        return True, ""

    @classmethod
    def fingerprint(cls, config: RunConfig) -> dict[str, Any]:
        """Pod, IPUs, replication, IPU version, SDK and optimum-graphcore; ``emulated``."""
        pod = config.hardware.pod or cls.SLOTS[0]
        module = poptorch_module()
        replicas: int | None
        try:
            name = config.ipu.ipu_config or config_name_for_model(config.model.name)
            replicas = replication_factor(load_ipu_config(name), pod)
        except QABenchError:
            replicas = None  # the run itself reports the bad config
        version = None
        if module is not None:
            try:
                version = int(module.ipuHardwareVersion())
            except Exception:  # noqa: BLE001 - older SDKs lack it; no IPU may raise
                version = None
        return {"kind": "ipu", "pod": pod, "ipus": POD_SIZES.get(pod), "replication": replicas,
                "ipu_version": version,
                "sdk": getattr(module, "__version__", None) if module is not None else None,
                "optimum_graphcore": optimum_version(), "emulated": emulated()}

    @classmethod
    def static_check(cls, config: RunConfig) -> tuple[str | None, str]:
        """Pod size, pipeline depth and the memory model (``qa.backends.ipu.rules``)."""
        verdict = check_entry(config)
        return verdict.refusal, verdict.detail

    @classmethod
    def cost_seconds(cls, config: RunConfig, flops: float, params: float) -> float:
        """The work over the pod's IPUs, plus the graph compile (grows with the model)."""
        devices = POD_SIZES.get(config.hardware.pod or "pod4", 4)
        return flops / (IPU_RATE * devices) + COMPILE_S_PER_M_PARAMS * params / 1e6

    @classmethod
    def describe(cls, fingerprint: dict[str, Any]) -> str:
        """``IPU pod16``, ``IPU pod16 (emulated)``."""
        return f"IPU {fingerprint.get('pod')}" + (" (emulated)" if fingerprint.get("emulated")
                                                   else "")

    @classmethod
    def versions(cls) -> dict[str, str]:
        """qa-bench's own, optimum-graphcore's and the SDK's poptorch wheel's, where installed."""
        found = super().versions()
        for package in ("optimum-graphcore", "poptorch"):
            try:
                found[package] = md.version(package)
            except md.PackageNotFoundError:
                continue
        return found

    @classmethod
    def result_slot(cls, config: RunConfig) -> str:
        """``pod16``, or ``pod16-emulated`` under the poptorch emulation."""
        pod = config.hardware.pod or cls.SLOTS[0]
        return pod + EMULATED_SUFFIX if emulated() else pod

    @classmethod
    def entry_marks(cls, pod: str) -> tuple[str, ...]:
        return ("ipu",)

    # -- set-up shared by compile / train / predict -------------------------------------------
    def _api(self) -> OptimumAPI:
        version = optimum_version()
        if version is None:
            raise QABenchError("optimum-graphcore not installed: pip install 'qa-bench[ipu]'")
        return api_for_version(version)

    def _settings(self, config: RunConfig, model: Any, api: OptimumAPI) -> IPUSettings:
        name = config.ipu.ipu_config or config_name_for_model(config.model.name)
        settings = load_ipu_config(name)
        check_model_supported(model.config.model_type, api)
        check_layers(settings, model.config.num_hidden_layers, wildcards=api.layer_wildcards)
        _check_single_instance()
        return settings

    def _dirs(self, settings: IPUSettings) -> tuple[str, str]:
        """(executable cache, trainer output) folders, fresh for this backend instance."""
        if self._workdir is None:
            parent = settings.executable_cache_dir or None
            if parent:
                Path(parent).mkdir(parents=True, exist_ok=True)
            self._workdir = tempfile.TemporaryDirectory(prefix="qa-bench-ipu-", dir=parent)
        root = Path(self._workdir.name)
        (root / "exe_cache").mkdir(exist_ok=True)
        return str(root / "exe_cache"), str(root / "output")

    def _trainer_for(self, model: Any, features: Dataset | None, config: RunConfig,
                     callbacks: list[Any] | None, progress: bool = False) -> tuple[Any, OptimumAPI]:
        from optimum.graphcore import IPUConfig, IPUTrainer, IPUTrainingArguments
        from transformers import PrinterCallback, default_data_collator

        api = self._api()
        settings = self._settings(config, model, api)
        cache_dir, output_dir = self._dirs(settings)
        ipu_config = IPUConfig(**ipu_config_kwargs(
            settings, config.hardware.pod, api,
            gradient_accumulation_steps=config.train.gradient_accumulation_steps,
            executable_cache_dir=cache_dir))
        args = IPUTrainingArguments(**training_args_kwargs(config, api, settings, output_dir))
        trainer = IPUTrainer(**trainer_kwargs(model, ipu_config, args, features,
                                              default_data_collator, callbacks=callbacks))
        if not progress:  # disable_tqdm puts a printer of every logged step in its place
            trainer.remove_callback(PrinterCallback)
        return trainer, api

    def _train_features(self, model: Any, features: Dataset) -> Dataset:
        forward = inspect.signature(model.forward).parameters
        return features.select_columns(
            model_input_columns(features.column_names, forward, with_labels=True))

    # -- contract: the pipeline's stages ------------------------------------------------------
    def compile(self, model: Any, features: Dataset, config: RunConfig) -> CompileTiming:
        """Compile the training graph cold (empty executable cache), then warm (cache load).

        The pipeline hands over validation features: an executable depends on shapes and
        dtypes only, so zero label columns of the training dtype complete them, and ``train``
        later loads this very executable from the cache.
        """
        for label in LABEL_COLUMNS:
            if label not in features.column_names:
                features = features.add_column(label, [0] * len(features))
        dataset = self._train_features(model, features)
        cold_s, cold_new = self._compile_once(model, dataset, config)
        warm_s, warm_new = self._compile_once(model, dataset, config)
        return CompileTiming(
            cold_s=cold_s, warm_s=warm_s, cache_hit=cold_new > 0 and warm_new == 0,
            what="poptorch training executable: cold = empty executable_cache_dir, "
                 "warm = same dir again" + (" (emulated poptorch)" if emulated() else ""))

    def _compile_once(self, model: Any, dataset: Dataset, config: RunConfig) -> tuple[float, int]:
        """Seconds to compile with a throw-away trainer, and files it added to the cache."""
        trainer, api = self._trainer_for(model, dataset, config, callbacks=None)
        cache = Path(trainer.ipu_config.executable_cache_dir)
        before = _cache_files(cache)
        # The optimizer is part of the training graph; the step count only shapes the host-side
        # learning-rate schedule, so any positive value compiles the same executable.
        trainer.create_optimizer_and_scheduler(num_training_steps=max(config.train.max_steps, 1))
        wrapped = getattr(trainer, api.wrap_method)(trainer.model)
        batch = next(iter(trainer.get_train_dataloader()))
        start = time.perf_counter()
        getattr(trainer, api.compile_method)(wrapped, batch)
        seconds = time.perf_counter() - start
        getattr(wrapped, "destroy", wrapped.detachFromDevice)()
        return seconds, len(_cache_files(cache) - before)

    def train(self, model: Any, features: Dataset, config: RunConfig, progress: bool = True,
              monitor: ConvergenceMonitor | None = None) -> TrainTiming:
        """Fine-tune with ``IPUTrainer.train``; compile/cache-load time is reported apart.

        ``monitor`` evaluates after the optimizer steps it asks for, from a trainer callback,
        through ``predict`` on this backend's trainer (training executable detached meanwhile).
        """
        dataset = self._train_features(model, features)
        recorder = _step_recorder(monitor)
        # optimum's own tqdm bar only on a live terminal (a log gets qa.progress's lines).
        trainer, api = self._trainer_for(model, dataset, config, callbacks=[recorder],
                                         progress=progress and progress_report.current().bars)
        # predict() of this model uses this trainer from now on, also from inside train().
        self._trainer, self._trained_model_id = trainer, id(model)
        if monitor is not None:
            recorder.evaluate = lambda step, train_s, total: monitor.record(
                model, step, train_s, total)
        # Compiles inside the monitor's evaluations are part of its (excluded) time already.
        with _timed(trainer, api.compile_method, lambda: not recorder.evaluating) as compiles:
            start = time.perf_counter()
            trainer.train()
            wall = time.perf_counter() - start
        compile_calls = list(compiles)
        total = wall - sum(compile_calls) - (monitor.eval_s if monitor is not None else 0.0)
        _copy_trained_weights(trainer.model, model)

        samples_per_step = (
            trainer.args.per_device_train_batch_size * trainer.ipu_config.batch_size_factor())
        timed = recorder.durations[config.train.timing_warmup_steps:]
        tokens = samples_per_step * config.data.max_length  # static shapes: padded tokens
        timed_s = sum(timed)
        return TrainTiming(
            step_times=timed,
            samples_per_step=samples_per_step,
            tokens_per_step=[tokens] * len(timed),
            loss_curve=recorder.losses,
            total_s=total,
            steps=len(recorder.durations),
            samples_per_s=samples_per_step * len(timed) / timed_s if timed_s else 0.0,
            tokens_per_s=tokens * len(timed) / timed_s if timed_s else 0.0,
            extra={
                "compile_in_train_s": sum(compile_calls),
                "optimum_graphcore": api.version,
                "replication_factor": trainer.ipu_config.replication_factor,
                "gradient_accumulation_steps": trainer.ipu_config.gradient_accumulation_steps,
                "device_iterations": trainer.ipu_config.device_iterations,
                "global_batch": samples_per_step,
                "emulated": emulated(),
                "tokens": "padded to max_length (static shapes on IPU)",
            },
        )

    def predict(self, model: Any, features: Dataset, config: RunConfig,
                progress: bool = True) -> Predictions:
        """Start/end logits for every feature; extra columns never reach the compiled model."""
        if self._trainer is not None and self._trained_model_id == id(model):
            trainer, api = self._trainer, self._api()
        else:
            trainer, api = self._trainer_for(model, None, config, callbacks=None)
        forward = inspect.signature(model.forward).parameters
        dataset = features.select_columns(
            model_input_columns(features.column_names, forward, with_labels=False))
        multiple = trainer.args.per_device_eval_batch_size * trainer.ipu_config.batch_size_factor(
            for_inference=True)
        n = len(dataset)
        padded = dataset.select(padded_indices(n, multiple))
        training = trainer.training_model
        # Mid-training (time-to-target): the IPUs belong to the training executable; free them
        # for the inference one and take them back after, as IPUTrainer does for evaluation.
        paused = training is not None and training.isAttachedToDevice()
        if paused:
            training.detachFromDevice()
        try:
            with _timed(trainer, api.compile_method) as compile_calls:
                start = time.perf_counter()
                output = trainer.predict(padded)
                seconds = time.perf_counter() - start - sum(compile_calls)
        finally:
            if paused:
                training.attachToDevice()
        start_logits, end_logits = output.predictions[:2]
        return Predictions(
            start_logits=start_logits[:n].astype("float32"),
            end_logits=end_logits[:n].astype("float32"),
            samples_per_s=n / seconds if seconds > 0 else 0.0,
            total_s=seconds,
            rounds={"median": seconds, "iqr": 0.0, "rounds": 1,
                    "compile_s": sum(compile_calls)},
        )


def _copy_trained_weights(pipelined: Any, model: Any) -> None:
    """Load the trainer's pipelined (fp16) weights into the caller's model, in its dtypes."""
    pipelined.deparallelize()
    try:
        state = pipelined.state_dict()
    finally:
        kwargs = getattr(pipelined.ipu_config, "_parallelize_kwargs", None) or {}
        pipelined.parallelize(**kwargs)
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()})


def _check_single_instance() -> None:
    """Refuse multi-instance poprun launches: IPUTrainer has no PopDist support."""
    try:
        import popdist
    except ImportError:
        return
    if popdist.isPopdistEnvSet() and popdist.getNumInstances() > 1:
        raise QABenchError(
            f"poprun started {popdist.getNumInstances()} instances, but optimum-graphcore's "
            "IPUTrainer has no PopDist support: each instance would train alone. Use "
            "--num-instances 1 (see docs/ipu.md)"
        )
