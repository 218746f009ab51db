"""Graphcore IPU backend: optimum-graphcore's ``IPUTrainer`` on an IPU pod.

poptorch and optimum-graphcore are imported only inside methods, so this module imports (and its
pure keyword builders are tested) on machines without the Poplar SDK. Every keyword passed to
``IPUConfig``, ``IPUTrainingArguments`` and ``IPUTrainer`` comes from a pure function here or in
``qa.ipu_config``; ``tests/test_ipu_contract.py`` checks each against the optimum-graphcore
sources of every supported API generation.

Compile time is measured apart from training: ``compile`` compiles the training graph twice into
a fresh executable cache (cold, then a cache load) with throw-away trainers, and ``train`` times
the trainer's own compile call (a cache load by then) and leaves it out of the step times.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.backends.base import Backend, CompileTiming, Predictions, TrainTiming
from qa.errors import QABenchError
from qa.ipu_config import (
    IPUSettings,
    OptimumAPI,
    api_for_version,
    check_layers,
    config_name_for_model,
    ipu_config_kwargs,
    load_ipu_config,
    replication_factor,
    version_tuple,
)

if TYPE_CHECKING:
    from datasets import Dataset

    from qa.config import RunConfig

LABEL_COLUMNS = ("start_positions", "end_positions")

#: First optimum-graphcore release with a pipelined ``<Model>ForQuestionAnswering``.
QA_MODEL_TYPES_SINCE: dict[str, str] = {
    "bert": "0.3.0",
    "roberta": "0.3.0",
    "deberta": "0.3.0",
    "distilbert": "0.4.0",
}


def optimum_version() -> str | None:
    """Installed optimum-graphcore version from package metadata (nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optimum-graphcore")
    except PackageNotFoundError:
        return None


def check_model_supported(model_type: str, api: OptimumAPI) -> None:
    """Raise unless ``api``'s release has a pipelined question-answering model for ``model_type``.

    Raises:
        QABenchError: model type unknown to qa-bench's IPU backend, or newer than the release.
    """
    since = QA_MODEL_TYPES_SINCE.get(model_type)
    if since is None:
        raise QABenchError(
            f"model type {model_type!r} has no IPU question-answering support here "
            f"(supported: {', '.join(sorted(QA_MODEL_TYPES_SINCE))})"
        )
    if version_tuple(api.version) < version_tuple(since):
        raise QABenchError(
            f"optimum-graphcore {api.version} has no pipelined {model_type} QA model "
            f"(added in {since})"
        )


def model_input_columns(
    columns: Sequence[str], forward_params: Iterable[str], with_labels: bool
) -> list[str]:
    """Dataset columns to feed the model, in dataset order.

    poptorch compiles the model for one argument list and refuses a call with another ("5
    arguments used to compile the model and 3 provided"), so prediction must see exactly the
    inputs (never ``example_id``/``offset_mapping``, never labels) and training inputs + labels.

    Raises:
        QABenchError: ``input_ids`` missing, or labels requested but absent.
    """
    params = set(forward_params)
    keep = [c for c in columns if c in params and (with_labels or c not in LABEL_COLUMNS)]
    if "input_ids" not in keep:
        raise QABenchError(f"features have no input_ids column (columns: {', '.join(columns)})")
    if with_labels and not all(label in keep for label in LABEL_COLUMNS):
        raise QABenchError("training features need start_positions and end_positions columns")
    return keep


def padded_indices(n: int, multiple: int) -> list[int]:
    """Indices ``0..n-1`` padded by repeating the last one up to a multiple of ``multiple``.

    poptorch's data loader drops an incomplete final batch; padding keeps every feature, and the
    caller trims the logits back to ``n``.
    """
    if n < 1 or multiple < 1:
        raise QABenchError(f"cannot pad {n} features to a multiple of {multiple}")
    return list(range(n)) + [n - 1] * (-n % multiple)


def training_args_kwargs(
    config: RunConfig, api: OptimumAPI, settings: IPUSettings, output_dir: str
) -> dict[str, Any]:
    """Keyword arguments for ``IPUTrainingArguments`` for this run on ``api``."""
    train = config.train
    kwargs: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": train.micro_batch_size,
        "per_device_eval_batch_size": train.eval_batch_size,
        # Overrides the IPU config's value (optimum turns it into ipu_config_overrides).
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        "learning_rate": train.learning_rate,
        "weight_decay": train.weight_decay,
        "warmup_ratio": train.warmup_ratio,
        "lr_scheduler_type": "linear",
        "num_train_epochs": train.num_train_epochs,
        "max_steps": train.max_steps,
        "seed": train.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "evaluation_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
    }
    if train.loss_scaling is not None:
        kwargs["loss_scaling"] = train.loss_scaling
    pod = config.hardware.pod
    if api.replication == "pod_type":
        if pod is not None:
            kwargs["pod_type"] = pod
    else:
        kwargs["n_ipu"] = replication_factor(settings, pod) * settings.ipus_per_replica
    return kwargs


def trainer_kwargs(
    model: Any,
    ipu_config: Any,
    args: Any,
    train_dataset: Any = None,
    data_collator: Any = None,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``IPUTrainer``; ``None`` values are left out."""
    kwargs = {
        "model": model,
        "ipu_config": ipu_config,
        "args": args,
        "train_dataset": train_dataset,
        "data_collator": data_collator,
        "callbacks": callbacks,
    }
    return {k: v for k, v in kwargs.items() if v is not None}


def required_methods(api: OptimumAPI) -> dict[str, dict[str, tuple[str, ...]]]:
    """Methods (and keyword parameters) this backend calls, per class, for the contract test."""
    return {
        "IPUTrainer": {
            api.wrap_method: (),
            api.compile_method: (),
            "create_optimizer_and_scheduler": ("num_training_steps",),
            "get_train_dataloader": (),
            "train": (),
            "predict": (),
        },
        "IPUConfig": {"batch_size_factor": ("for_inference",)},
    }


def _record_steps() -> Any:
    """A ``TrainerCallback`` recording step durations and logged losses."""
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        def __init__(self) -> None:
            self.durations: list[float] = []
            self.losses: list[float] = []
            self._start = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.durations.append(time.perf_counter() - self._start)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    return StepRecorder()


def _timed(obj: Any, method: str) -> list[float]:
    """Wrap ``obj.method`` so each call's duration is appended to the returned list."""
    original = getattr(obj, method)
    durations: list[float] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    setattr(obj, method, wrapper)
    return durations


def _cache_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


class IPUBackend(Backend):
    """Fine-tune and predict with optimum-graphcore on one pod (``hardware.pod``)."""

    NAME = "ipu"

    def __init__(self) -> None:
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._trainer: Any = None
        self._trained_model_id: int | None = None

    @classmethod
    def fingerprint(cls, config: RunConfig) -> dict[str, Any]:
        """The pod (IPUs in it) and the SDK; emulated runs never match real hardware."""
        pod = config.hardware.pod or "pod4"
        return {"kind": "ipu", "pod": pod, "ipus": int(pod.removeprefix("pod") or 0),
                "sdk": optimum_version(), "emulated": False}

    @classmethod
    def available(cls) -> tuple[bool, str]:
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

    # -- set-up shared by compile / train / predict -------------------------------------------

    def _api(self) -> OptimumAPI:
        version = optimum_version()
        if version is None:
            raise QABenchError("optimum-graphcore not installed: pip install 'qa-bench[ipu]'")
        return api_for_version(version)

    def _settings(self, config: RunConfig, model: Any, api: OptimumAPI) -> IPUSettings:
        name = config.hardware.ipu_config or config_name_for_model(config.model.name)
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

    def _trainer_for(
        self, model: Any, features: Dataset | None, config: RunConfig, callbacks: list[Any] | None
    ) -> tuple[Any, OptimumAPI]:
        from optimum.graphcore import IPUConfig, IPUTrainer, IPUTrainingArguments
        from transformers import default_data_collator

        api = self._api()
        settings = self._settings(config, model, api)
        cache_dir, output_dir = self._dirs(settings)
        ipu_config = IPUConfig(
            **ipu_config_kwargs(
                settings,
                config.hardware.pod,
                api,
                gradient_accumulation_steps=config.train.gradient_accumulation_steps,
                executable_cache_dir=cache_dir,
            )
        )
        args = IPUTrainingArguments(**training_args_kwargs(config, api, settings, output_dir))
        trainer = IPUTrainer(
            **trainer_kwargs(
                model, ipu_config, args, features, default_data_collator, callbacks=callbacks
            )
        )
        return trainer, api

    def _train_features(self, model: Any, features: Dataset) -> Dataset:
        forward = inspect.signature(model.forward).parameters
        return features.select_columns(
            model_input_columns(features.column_names, forward, with_labels=True)
        )

    # -- the Backend interface ------------------------------------------------------------------

    def compile(self, model: Any, features: Dataset, config: RunConfig) -> CompileTiming:
        """Compile the training graph cold (empty executable cache), then warm (cache load)."""
        dataset = self._train_features(model, features)
        cold_s, cold_new = self._compile_once(model, dataset, config)
        warm_s, warm_new = self._compile_once(model, dataset, config)
        return CompileTiming(
            cold_s=cold_s,
            warm_s=warm_s,
            cache_hit=cold_new > 0 and warm_new == 0,
            what="poptorch training executable: cold = empty executable_cache_dir, "
            "warm = same dir again",
        )

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

    def train(self, model: Any, features: Dataset, config: RunConfig) -> TrainTiming:
        """Fine-tune with ``IPUTrainer.train``; compile/cache-load time is reported apart."""
        dataset = self._train_features(model, features)
        recorder = _record_steps()
        trainer, api = self._trainer_for(model, dataset, config, callbacks=[recorder])
        compile_calls = _timed(trainer, api.compile_method)
        start = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - start - sum(compile_calls)
        # IPUTrainer trains a pipelined copy of `model`; predict() reuses this trainer.
        self._trainer, self._trained_model_id = trainer, id(model)

        samples_per_step = (
            trainer.args.per_device_train_batch_size * trainer.ipu_config.batch_size_factor()
        )
        timed = recorder.durations[config.train.timing_warmup_steps :]
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
                "tokens": "padded to max_length (static shapes on IPU)",
            },
        )

    def predict(self, model: Any, features: Dataset, config: RunConfig) -> Predictions:
        """Start/end logits for every feature; extra columns never reach the compiled model."""
        if self._trainer is not None and self._trained_model_id == id(model):
            trainer, api = self._trainer, self._api()
        else:
            trainer, api = self._trainer_for(model, None, config, callbacks=None)
        forward = inspect.signature(model.forward).parameters
        dataset = features.select_columns(
            model_input_columns(features.column_names, forward, with_labels=False)
        )
        multiple = trainer.args.per_device_eval_batch_size * trainer.ipu_config.batch_size_factor(
            for_inference=True
        )
        n = len(dataset)
        padded = dataset.select(padded_indices(n, multiple))
        compile_calls = _timed(trainer, api.compile_method)
        start = time.perf_counter()
        output = trainer.predict(padded)
        seconds = time.perf_counter() - start - sum(compile_calls)
        start_logits, end_logits = output.predictions[:2]
        return Predictions(
            start_logits=start_logits[:n],
            end_logits=end_logits[:n],
            samples_per_s=n / seconds if seconds > 0 else 0.0,
            total_s=seconds,
        )


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
