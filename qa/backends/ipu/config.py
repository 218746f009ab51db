"""IPU config files, read without poptorch: pod size -> replication, global batch, layer split.

A config is optimum-graphcore's ``ipu_config.json`` layout (the files on the hub under
``Graphcore/<model>-ipu``), shipped in ``qa/backends/ipu/configs/<name>.json`` or given as a path.
Only the settings qa-bench uses are accepted; any other key is an error with a suggestion, so a
typo never silently falls back to optimum's default.

Two optimum-graphcore API generations tell the trainer how big the pod is:

* ``pod_type`` (0.3.0 - 0.6.0): ``IPUTrainingArguments(pod_type="pod16")`` and per-pod dicts
  such as ``"replication_factor": {"pod4": 1, "pod16": 4, "default": 1}`` in the config;
* ``n_ipu`` (0.6.1 and later): ``IPUTrainingArguments(n_ipu=16)``, and the trainer sets
  ``replication_factor = n_ipu // ipus_per_replica``. 0.6.1 still accepts ``pod_type`` (deprecated),
  0.7.0 removed it, and ``IPUConfig`` stopped accepting per-pod dicts in 0.6.1.

Independently, the trainer's compile entry point was ``_compile_model`` / ``_wrap_model`` before
0.4.0 and ``compile_model`` / ``wrap_model`` from 0.4.0, and ``-1`` wildcards in
``layers_per_ipu`` arrived in 0.6.0. ``api_for_version`` captures all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from qa.errors import QABenchError, did_you_mean, unknown
from qa.files import read_json

CONFIG_DIR = Path(__file__).parent / "configs"

#: Pod names and how many IPUs each has.
POD_SIZES: dict[str, int] = {"pod4": 4, "pod8": 8, "pod16": 16, "pod32": 32, "pod64": 64}

# Keys written by optimum's ``save_pretrained`` that carry no setting.
_METADATA_KEYS = frozenset({"optimum_version", "transformers_version"})

PerPod = dict[str, int]


@dataclass(frozen=True)
class OptimumAPI:
    """What differs between optimum-graphcore releases, as far as qa-bench is concerned."""

    version: str
    replication: Literal["pod_type", "n_ipu"]
    compile_method: str
    wrap_method: str
    layer_wildcards: bool


def version_tuple(version: str) -> tuple[int, int, int]:
    """``"0.7.1.dev0"`` -> ``(0, 7, 1)``.

    Raises:
        QABenchError: not a version number.
    """
    match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not match:
        raise QABenchError(f"cannot read optimum-graphcore version {version!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def api_for_version(version: str) -> OptimumAPI:
    """The API generation of an optimum-graphcore release, e.g. ``api_for_version("0.7.1")``.

    Raises:
        QABenchError: unreadable version, or one older than 0.3.0 (never supported here).
    """
    parts = version_tuple(version)
    if parts < (0, 3, 0):
        raise QABenchError(f"optimum-graphcore {version} is too old: qa-bench needs 0.3.0 or later")
    public = parts >= (0, 4, 0)
    return OptimumAPI(
        version=version,
        replication="n_ipu" if parts >= (0, 6, 1) else "pod_type",
        compile_method="compile_model" if public else "_compile_model",
        wrap_method="wrap_model" if public else "_wrap_model",
        layer_wildcards=parts >= (0, 6, 0),
    )


@dataclass(frozen=True)
class IPUSettings:
    """The parts of an IPU config qa-bench reads (optimum's defaults where a key is absent)."""

    name: str = field(metadata={"help": "shipped name or path the settings came from"})
    ipus_per_replica: int = field(metadata={"help": "pipeline length: IPUs per model replica"})
    layers_per_ipu: tuple[int, ...] = field(
        metadata={"help": "encoder layers on each pipeline stage; -1 = split the rest evenly"}
    )
    replication_factor: int | PerPod = field(
        default=1, metadata={"help": "data-parallel replicas: an int, or a per-pod dict (0.3 API)"}
    )
    n_ipu: int | None = field(
        default=None, metadata={"help": "IPUs to use when no pod is named (0.7 API)"}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "hub value; the run's TrainConfig value is what is passed"}
    )
    device_iterations: int = field(default=1, metadata={"help": "training steps per host call"})
    inference_device_iterations: int = field(
        default=1, metadata={"help": "inference batches per host call"}
    )
    matmul_proportion: float | tuple[float, ...] = field(
        default=0.2, metadata={"help": "share of tile memory for matmul temporaries (per IPU)"}
    )
    embedding_serialization_factor: int = field(
        default=1, metadata={"help": "split the word embedding into this many matmuls"}
    )
    recompute_checkpoint_every_layer: bool = field(
        default=False, metadata={"help": "checkpoint activations at every encoder layer"}
    )
    optimizer_state_offchip: bool = field(
        default=False, metadata={"help": "keep optimizer state in streaming memory"}
    )
    replicated_tensor_sharding: bool = field(
        default=False, metadata={"help": "shard optimizer state across replicas"}
    )
    enable_half_partials: bool = field(
        default=True, metadata={"help": "fp16 partials in matmuls and convolutions"}
    )
    executable_cache_dir: str = field(
        default="", metadata={"help": "parent folder for compiled executables ('' = temp dir)"}
    )
    source: dict[str, str] = field(
        default_factory=dict, metadata={"help": "where each value comes from (the _source key)"}
    )


_SETTING_KEYS = {f.name for f in fields(IPUSettings)} - {"name", "source"}


def shipped_names() -> list[str]:
    """Names of the configs shipped in ``qa/backends/ipu/configs``."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.json"))


def config_name_for_model(model_name: str) -> str:
    """The shipped config named after a model id (``microsoft/deberta-base`` -> ``deberta-base``).

    Raises:
        QABenchError: no shipped config for that model (pass ``ipu.ipu_config``).
    """
    name = model_name.rstrip("/").rsplit("/", 1)[-1]
    if name not in shipped_names():
        raise QABenchError(
            f"no shipped IPU config for model {model_name!r}: set ipu.ipu_config to one of "
            f"{', '.join(shipped_names())} or to a JSON path"
        )
    return name


def load_ipu_config(name_or_path: str | Path) -> IPUSettings:
    """Read an IPU config: a shipped name (``bert-base-uncased``) or a JSON file path.

    Raises:
        QABenchError: unknown name, unreadable or invalid JSON, unknown keys, bad values.
    """
    path = Path(name_or_path)
    text_name = str(name_or_path)
    if not path.is_file():
        if path.suffix == ".json" or "/" in text_name or "\\" in text_name:
            raise QABenchError(f"IPU config file not found: {text_name}")
        if text_name not in shipped_names():
            raise unknown("IPU config", text_name, shipped_names())
        path = CONFIG_DIR / f"{text_name}.json"
    raw = read_json(path, "IPU config")
    if not isinstance(raw, dict):
        raise QABenchError(f"{path}: an IPU config must be a JSON object")
    return settings_from_dict(raw, name=text_name)


def settings_from_dict(raw: dict[str, Any], name: str = "<dict>") -> IPUSettings:
    """Validate an ``ipu_config.json``-style dict and build :class:`IPUSettings`.

    Keys starting with ``_`` are comments (``_source`` records where values come from).

    Raises:
        QABenchError: unknown key (with a suggestion) or a value of the wrong type or range.
    """
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_") or key in _METADATA_KEYS:
            continue
        if key == "inference_replication_factor":
            # qa-bench replicates inference like training (optimum's n_ipu API does the same).
            if value != raw.get("replication_factor", 1):
                raise QABenchError(
                    f"{name}: inference_replication_factor must equal replication_factor"
                )
            continue
        if key not in _SETTING_KEYS:
            hint = did_you_mean(key, _SETTING_KEYS)
            raise QABenchError(f"{name}: unknown IPU config key {key!r}{hint}")
        values[key] = _check_value(name, key, value)
    source = raw.get("_source", {})
    if not isinstance(source, dict):
        raise QABenchError(f"{name}: _source must map setting names to where they come from")

    layers = values.get("layers_per_ipu", (-1,))
    ipus = values.get("ipus_per_replica", len(layers))
    if -1 not in layers and len(layers) != ipus:
        raise QABenchError(
            f"{name}: layers_per_ipu has {len(layers)} entries but ipus_per_replica is {ipus}"
        )
    if -1 in layers and len(layers) not in (1, ipus):
        raise QABenchError(
            f"{name}: layers_per_ipu with -1 needs 1 or ipus_per_replica ({ipus}) entries"
        )
    matmul = values.get("matmul_proportion", 0.2)
    if isinstance(matmul, tuple):
        if len(matmul) == 1:
            matmul = matmul[0]  # optimum >= 0.6 rejects a 1-entry list for a longer pipeline
        elif len(matmul) != ipus:
            raise QABenchError(
                f"{name}: matmul_proportion has {len(matmul)} entries, ipus_per_replica is {ipus}"
            )
    n_ipu = values.get("n_ipu")
    if n_ipu is not None and n_ipu % ipus:
        raise QABenchError(f"{name}: n_ipu={n_ipu} is not a multiple of ipus_per_replica={ipus}")
    values.update(layers_per_ipu=layers, ipus_per_replica=ipus, matmul_proportion=matmul)
    return IPUSettings(name=name, source={str(k): str(v) for k, v in source.items()}, **values)


def _check_value(name: str, key: str, value: Any) -> Any:
    where = f"{name}: {key}"
    if key in {
        "recompute_checkpoint_every_layer",
        "optimizer_state_offchip",
        "replicated_tensor_sharding",
        "enable_half_partials",
    }:
        if not isinstance(value, bool):
            raise QABenchError(f"{where} must be true or false, got {value!r}")
        return value
    if key == "executable_cache_dir":
        if not isinstance(value, str):
            raise QABenchError(f"{where} must be a string")
        return value
    if key == "layers_per_ipu":
        if not (isinstance(value, list) and value and all(_is_int(v) and v >= -1 for v in value)):
            raise QABenchError(f"{where} must be a non-empty list of integers >= -1, got {value!r}")
        return tuple(value)
    if key == "matmul_proportion":
        items = value if isinstance(value, list) else [value]
        if not items or not all(_is_number(v) and 0 < v <= 1 for v in items):
            raise QABenchError(f"{where} must be a number in (0, 1] or a list of them")
        return tuple(float(v) for v in items) if isinstance(value, list) else float(value)
    if key == "replication_factor" and isinstance(value, dict):
        extra = set(value) - set(POD_SIZES) - {"default"}
        if extra:
            bad = sorted(extra)[0]
            raise QABenchError(
                f"{where}: unknown pod {bad!r}{did_you_mean(bad, [*POD_SIZES, 'default'])}"
            )
        if not all(_is_int(v) and v >= 1 for v in value.values()):
            raise QABenchError(f"{where}: every per-pod value must be an integer >= 1")
        return dict(value)
    if key == "n_ipu" and value is None:
        return None
    if key == "embedding_serialization_factor" and value == 0:
        raise QABenchError(
            f"{where}=0: use 1 for no serialisation (optimum-graphcore >= 0.6 rejects 0)"
        )
    if not (_is_int(value) and value >= 1):
        raise QABenchError(f"{where} must be an integer >= 1, got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def pod_ipus(pod: str) -> int:
    """Number of IPUs in a pod (``pod16`` -> 16).

    Raises:
        QABenchError: unknown pod name, with the closest valid one suggested.
    """
    if pod not in POD_SIZES:
        raise unknown("pod", pod, POD_SIZES)
    return POD_SIZES[pod]


def replication_factor(settings: IPUSettings, pod: str | None) -> int:
    """Data-parallel replicas for ``settings`` on ``pod`` (or ``settings.n_ipu`` when pod is None).

    A per-pod dict is looked up by pod name (its ``default`` when the pod is missing); otherwise
    replication is ``n_ipu // ipus_per_replica`` as in optimum's ``n_ipu`` API. With no pod and no
    ``n_ipu`` an int ``replication_factor`` is used as written.

    Raises:
        QABenchError: unknown pod, a replica larger than the pod, IPUs not divisible by the
            pipeline length, a per-pod dict with neither the pod nor a default.
    """
    ipus = settings.ipus_per_replica
    per_pod = settings.replication_factor if isinstance(settings.replication_factor, dict) else None
    if pod is None:
        if settings.n_ipu is not None:
            return _replicas_from_ipus(settings, settings.n_ipu, f"n_ipu={settings.n_ipu}")
        if per_pod is None:
            return int(settings.replication_factor)  # type: ignore[arg-type]
        if "default" not in per_pod:
            raise QABenchError(
                f"{settings.name}: replication_factor is per pod and has no 'default'; name a pod"
            )
        return per_pod["default"]
    n_ipu = pod_ipus(pod)
    if ipus > n_ipu:
        raise QABenchError(
            f"{settings.name} needs {ipus} IPUs per replica but {pod} has only {n_ipu} IPUs"
        )
    if per_pod is None:
        return _replicas_from_ipus(settings, n_ipu, pod)
    if pod in per_pod:
        replicas = per_pod[pod]
    elif "default" in per_pod:
        replicas = per_pod["default"]
    else:
        raise QABenchError(
            f"{settings.name}: replication_factor has no entry for {pod} and no 'default' "
            f"(it lists {', '.join(sorted(per_pod))})"
        )
    if replicas * ipus > n_ipu:
        raise QABenchError(
            f"{settings.name}: {replicas} replicas x {ipus} IPUs per replica = "
            f"{replicas * ipus} IPUs, but {pod} has {n_ipu}"
        )
    return replicas


def _replicas_from_ipus(settings: IPUSettings, n_ipu: int, what: str) -> int:
    ipus = settings.ipus_per_replica
    if n_ipu % ipus:
        raise QABenchError(
            f"{settings.name}: {what} gives {n_ipu} IPUs, not a multiple of ipus_per_replica={ipus}"
        )
    return n_ipu // ipus


def global_batch_size(micro_batch: int, grad_accum: int, replication: int) -> int:
    """Samples per optimizer step: micro batch x gradient accumulation x replicas.

    Device iterations are left out on purpose: they repeat whole steps on the device.

    Raises:
        QABenchError: any factor below 1.
    """
    for label, value in (
        ("micro batch", micro_batch),
        ("gradient accumulation", grad_accum),
        ("replication", replication),
    ):
        if not _is_int(value) or value < 1:
            raise QABenchError(f"{label} must be an integer >= 1, got {value!r}")
    return micro_batch * grad_accum * replication


def check_layers(
    settings: IPUSettings, num_hidden_layers: int, wildcards: bool = True
) -> list[int]:
    """Check the layer split against the model and return it with wildcards expanded.

    Mirrors optimum-graphcore >= 0.6: one IPU per replica takes every layer; ``[-1]`` or all -1
    splits evenly; -1 entries mixed with counts share what the counts leave; leftover layers go
    to the last wildcard stage. Without wildcards the counts must add up to the model's layers.

    Raises:
        QABenchError: counts that do not add up, -1 where the API has no wildcards, or more
            fixed layers than the model has.
    """
    layers = list(settings.layers_per_ipu)
    ipus = settings.ipus_per_replica
    where = f"{settings.name}: layers_per_ipu={layers}"
    if -1 in layers and not wildcards:
        raise QABenchError(f"{where} uses -1, which this optimum-graphcore release lacks")
    if ipus == 1:
        if layers not in ([-1], [num_hidden_layers]):
            raise QABenchError(f"{where} on 1 IPU must be [-1] or [{num_hidden_layers}]")
        return [num_hidden_layers]
    if -1 in layers:
        if layers == [-1]:
            layers = [-1] * ipus
        fixed = sum(n for n in layers if n != -1)
        slots = [i for i, n in enumerate(layers) if n == -1]
        if fixed > num_hidden_layers:
            raise QABenchError(
                f"{where} fixes {fixed} layers but the model has {num_hidden_layers}"
            )
        share, rest = divmod(num_hidden_layers - fixed, len(slots))
        for i in slots:
            layers[i] = share
        layers[slots[-1]] += rest
        return layers
    if sum(layers) != num_hidden_layers:
        raise QABenchError(
            f"{where} places {sum(layers)} layers but the model has {num_hidden_layers}"
        )
    return layers


def ipu_config_kwargs(
    settings: IPUSettings,
    pod: str | None,
    api: OptimumAPI,
    gradient_accumulation_steps: int | None = None,
    executable_cache_dir: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``optimum.graphcore.IPUConfig(**kwargs)`` on ``api``.

    Under the ``pod_type`` API the replication is resolved here and passed as ints (the trainer
    also gets ``pod_type``); under the ``n_ipu`` API it is left to the trainer, which derives it
    from ``n_ipu`` (see ``training_args_kwargs`` in the IPU backend).
    """
    replicas = replication_factor(settings, pod)
    matmul = settings.matmul_proportion
    kwargs: dict[str, Any] = {
        "ipus_per_replica": settings.ipus_per_replica,
        "layers_per_ipu": list(settings.layers_per_ipu),
        "gradient_accumulation_steps": gradient_accumulation_steps
        or settings.gradient_accumulation_steps,
        "device_iterations": settings.device_iterations,
        "inference_device_iterations": settings.inference_device_iterations,
        "matmul_proportion": list(matmul) if isinstance(matmul, tuple) else matmul,
        "embedding_serialization_factor": settings.embedding_serialization_factor,
        "recompute_checkpoint_every_layer": settings.recompute_checkpoint_every_layer,
        "optimizer_state_offchip": settings.optimizer_state_offchip,
        # Sharding needs replicas to shard across; optimum only warns, so drop it here.
        "replicated_tensor_sharding": settings.replicated_tensor_sharding and replicas > 1,
        "enable_half_partials": settings.enable_half_partials,
        "executable_cache_dir": settings.executable_cache_dir
        if executable_cache_dir is None
        else executable_cache_dir,
    }
    if api.replication == "pod_type":
        kwargs["replication_factor"] = replicas
        kwargs["inference_replication_factor"] = replicas
    return kwargs
