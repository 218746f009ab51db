"""What qa-bench passes to optimum-graphcore: pure keyword builders, checked without poptorch.

Every keyword given to ``IPUConfig``, ``IPUTrainingArguments`` and ``IPUTrainer`` comes from a
function here or in ``config.py``; ``tests/backends/ipu/test_keywords.py`` checks each against the
optimum-graphcore sources of every supported API generation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from qa.backends.ipu.config import IPUSettings, OptimumAPI, replication_factor, version_tuple
from qa.errors import QABenchError

if TYPE_CHECKING:
    from qa.config.schema import RunConfig

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
    if config.ipu.fp32:
        kwargs["fp32"] = True
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
