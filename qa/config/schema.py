"""Run configuration: frozen dataclasses, built from a profile entry plus ``--set`` overrides.

Every field declares, in its metadata next to its default, its ``"help"`` and what it allows:
``"min"`` / ``"max"`` (inclusive), ``"above"`` (exclusive lower bound), ``"also"`` (single
values allowed besides the range) and ``"choices"``; the type is the annotation. ``qa-bench
config`` lists them and ``qa.config.validation.validate`` checks every resolved config against them
(``RunConfig.from_dict``, hence every profile entry and ``--set``) before any work.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, get_type_hints

from qa.config.sections import migrate, moved_key, section_classes
from qa.config.validation import validate
from qa.errors import QABenchError, did_you_mean
from qa.results.metricspec import accuracy_specs

#: The metrics a time-to-target may be set on; points, so a target lies in 0 .. 100.
ACCURACY = tuple(spec.name for spec in accuracy_specs())
SHARE = {"min": 0.0, "max": 1.0}  # a share or probability
COUNT = {"min": 1}  # a count of things or steps
POINTS = {"min": 0.0, "max": 100.0}  # an accuracy score
SEED = {"min": 0, "max": 2**32 - 1}  # what numpy accepts


@dataclass(frozen=True)
class DataConfig:
    """Where the SQuAD-layout data comes from and how it is cut into features."""

    dataset: str = field(default="synthetic", metadata={
        "help": "'synthetic', 'synthetic_v2', 'squad', 'squad_v2' (local files under "
                "squad_dir when given, else the hub) or any hub dataset name"})
    train_file: str | None = field(default=None, metadata={
        "help": "official-layout SQuAD JSON used for training"})
    validation_file: str | None = field(default=None, metadata={
        "help": "official-layout SQuAD JSON used for evaluation"})
    squad_dir: str | None = field(default=None, metadata={
        "help": "folder holding dev-v1.1.json / dev-v2.0.json (or $QA_BENCH_SQUAD_DIR)"})
    version_2: bool = field(default=False, metadata={
        "help": "SQuAD v2 semantics: unanswerable questions allowed"})
    synthetic_train_contexts: int = field(default=1000, metadata={
        **COUNT, "help": "synthetic generator: contexts in the train split"})
    synthetic_validation_contexts: int = field(default=100, metadata={
        **COUNT, "help": "synthetic generator: contexts in the validation split"})
    synthetic_seed: int = field(default=1234, metadata={
        **SEED, "help": "synthetic generator seed"})
    synthetic_long_fraction: float = field(default=0.25, metadata={
        **SHARE, "help": "synthetic generator: share of contexts long enough to overflow "
                         "max_length 384 into several features"})
    synthetic_distractor_subjects: int = field(default=0, metadata={
        "min": 0, "max": 32,  # more: the generator's name pools run out (it never ends)
        "help": "synthetic generator: other subjects stated with each asked relation (> 0: "
                "the question's subject must be matched; much harder)"})
    synthetic_templates: str = field(default="forms", metadata={
        "choices": ("forms", "core", "distinct", "overlapping"),
        "help": "synthetic generator: 'forms' (five relations, each answer of its own form), "
                "'core' (eight: two relations per answer form, told apart by key words), "
                "'distinct' (seventeen) or 'overlapping' (generator v7's seventeen, words "
                "shared across relations): harder tasks for larger models"})
    synthetic_questions: int = field(default=3, metadata={
        **COUNT, "help": "synthetic generator: questions asked per context (fewer than the "
                         "relations of the template set)"})
    max_train_samples: int | None = field(default=None, metadata={
        **COUNT, "help": "keep only the first N training examples"})
    max_eval_samples: int | None = field(default=None, metadata={
        **COUNT, "help": "keep only the first N validation examples"})
    max_length: int = field(default=384, metadata={
        "min": 16, "max": 65536, "help": "tokens per feature"})
    doc_stride: int = field(default=128, metadata={
        "min": 0, "help": "tokens of overlap between consecutive context windows (at most "
                          "max_length - 4: room for the special tokens and the question)"})


@dataclass(frozen=True)
class ModelConfig:
    """Which model and tokenizer to build or load."""

    name: str = field(default="tiny-roformer", metadata={
        "help": "'tiny-roformer', 'tiny-bert', 'all-minilm-l6-v2' (pretrained, from the "
                "optional extra qa-bench[pretrained]), a hub id or a local checkpoint folder"})
    vocab_file: str | None = field(default=None, metadata={
        "help": "WordPiece vocab.txt to use instead of training a tokenizer (tiny models)"})
    vocab_size: int = field(default=4000, metadata={
        "min": 16, "help": "size of a locally trained WordPiece"})
    attn_implementation: str | None = field(default=None, metadata={
        "choices": ("eager", "sdpa"),
        "help": "'eager' or 'sdpa' (torch's scaled_dot_product_attention); default: "
                "transformers' choice for the model"})
    lowercase: bool = field(default=True, metadata={"help": "lower-case text in the tokenizer"})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "allow model code from the checkpoint (off: safe loading)"})
    cache_dir: str | None = field(default=None, metadata={
        "help": "tokenizer/feature/extracted-model cache (default $QA_BENCH_CACHE, else "
                "~/.cache/qa-bench)"})
    reinit_weights: bool = field(default=False, metadata={
        "help": "pretrained models: re-initialise every weight after loading (the control that "
                "shows what the pretrained weights are worth; tiny models are random anyway)"})


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning hyper-parameters and timing settings."""

    learning_rate: float = field(default=1e-3, metadata={
        "min": 0.0, "help": "peak learning rate"})
    num_train_epochs: float = field(default=3.0, metadata={
        "above": 0.0, "help": "epochs over the train features"})
    max_steps: int = field(default=-1, metadata={
        **COUNT, "also": (-1,), "help": "optimizer steps; overrides epochs if > 0 (-1: epochs)"})
    micro_batch_size: int = field(default=8, metadata={
        **COUNT, "help": "features per device per step"})
    gradient_accumulation_steps: int = field(default=1, metadata={
        **COUNT, "help": "micro batches accumulated per optimizer step"})
    warmup_ratio: float = field(default=0.1, metadata={
        **SHARE, "help": "share of steps for LR warm-up"})
    weight_decay: float = field(default=0.01, metadata={"min": 0.0, "help": "AdamW weight decay"})
    loss_scaling: float | None = field(default=None, metadata={
        "above": 0.0, "help": "static loss scaling (IPU fp16 only)"})
    seed: int = field(default=42, metadata={
        **SEED, "help": "seed for Python, numpy, torch, data order"})
    eval_batch_size: int = field(default=64, metadata={
        **COUNT, "help": "features per prediction batch"})
    eval_timing_rounds: int = field(default=2, metadata={
        **COUNT, "help": "timed prediction passes after a warm-up pass"})
    timing_warmup_steps: int = field(default=3, metadata={
        "min": 0, "help": "first optimizer steps excluded from throughput"})
    dynamic_padding: bool = field(default=False, metadata={
        "help": "pad each batch to its longest feature (torch only)"})
    group_by_length: bool = field(default=False, metadata={
        "help": "batch features of similar length together"})
    torch_compile: bool = field(default=False, metadata={
        "help": "train with torch.compile (off: no CPU speed-up measured)"})
    compile_eval: bool = field(default=True, metadata={
        "help": "time torch.compile of the eval model, cold and warm"})
    dropout: float = field(default=0.0, metadata={
        **SHARE, "help": "dropout for tiny models built here"})


@dataclass(frozen=True)
class HardwareConfig:
    """Which backend runs the entry, where (the pod), and with how many host threads.

    What only one backend reads lives in that backend's own section (``[torch]``, ``[ipu]``:
    ``qa.config.sections``).
    """

    backend: str = field(default="torch", metadata={
        "help": "training backend: 'torch', 'ipu' or another registered one (checked "
                "against the registry, qa.backends)"})
    pod: str | None = field(default=None, metadata={
        "help": "the pod the entry runs on, for a backend that has pods (IPU: pod4, pod8, "
                "pod16, pod32, pod64)"})
    threads: int | None = field(default=None, metadata={
        **COUNT, "help": "torch intra-op threads on the host (default: torch's choice)"})


@dataclass(frozen=True)
class PostprocessConfig:
    """How logits become answers."""

    n_best_size: int = field(default=20, metadata={
        **COUNT, "help": "start/end candidates per feature"})
    max_answer_length: int = field(default=30, metadata={
        **COUNT, "help": "longest answer in tokens"})
    null_score_diff_threshold: float = field(default=0.0, metadata={
        "help": "v2: answer '' when null − best span score exceeds this"})


@dataclass(frozen=True)
class TargetConfig:
    """Time-to-target: a cheap periodic evaluation during training (MLPerf-style)."""

    metric: str = field(default="exact_match", metadata={
        "choices": ACCURACY, "help": "metric the target is set on: 'exact_match' or 'f1'"})
    value: float = field(default=80.0, metadata={
        **POINTS, "help": "time-to-target: the metric value to reach"})
    every: float = field(default=0.1, metadata={
        **SHARE, "help": "share of the training steps between periodic evaluations (0: no "
                         "periodic evaluation, no time-to-target)"})
    examples: int = field(default=100, metadata={
        **COUNT, "help": "validation examples in the periodic evaluation's slice (the first N; "
                         "the final evaluation uses all)"})


def _default_sections() -> tuple[tuple[str, Any], ...]:
    return tuple((name, cls()) for name, cls in section_classes().items())


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one benchmark entry.

    Besides the core sections, every registered backend's own section (``qa.config.sections``) is
    there with its values: ``config.torch.device``, ``config.ipu.ipu_config``, ``config.section(
    "toy")``. In a profile and in ``--set`` they are sections like the others (``torch.device``).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    #: ``(name, settings)`` of every backend section, in registration order (a tuple: the
    #: config stays hashable).
    sections: tuple[tuple[str, Any], ...] = field(default_factory=_default_sections)

    def section(self, name: str) -> Any:
        """A backend's own settings by section name.

        Raises:
            QABenchError: no backend declares that section.
        """
        for key, value in self.sections:
            if key == name:
                return value
        raise QABenchError(f"unknown config section {name!r}"
                           f"{did_you_mean(name, [k for k, _ in self.sections])}")

    def replace_section(self, name: str, **changes: Any) -> RunConfig:
        """A copy with ``changes`` made to a backend's section (validated like any config).

        Raises:
            QABenchError: no such section, or a change that is not allowed.
        """
        old = self.section(name)
        new = dataclasses.replace(old, **changes)
        sections = tuple((k, new if k == name else v) for k, v in self.sections)
        return validate(dataclasses.replace(self, sections=sections))

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields: a backend section, ``config.torch``.
        if name.startswith("_") or name == "sections":
            raise AttributeError(name)
        for key, value in object.__getattribute__(self, "sections"):
            if key == name:
                return value
        raise AttributeError(f"RunConfig has no section {name!r}")

    @property
    def dataset_name(self) -> str:
        """Short dataset name used in result keys and file names."""
        return self.data.dataset

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (embedded in every RunResult): one table per section, the
        backends' sections beside the core ones."""
        raw = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in _core_fields()}
        raw.update((name, dataclasses.asdict(value)) for name, value in self.sections)
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Build from a nested dict, rejecting unknown sections and keys, then validate it.

        Old spellings of settings that moved to a backend's section (``hardware.device``) are
        accepted with a deprecation line (``qa.config.sections.migrate``).

        Raises:
            QABenchError: an unknown name, a value of the wrong type or out of its declared
                range (``qa.config.validation``), as one line naming the field.
        """
        raw = migrate(raw)
        types = {**_section_types(), **section_classes()}
        built = {}
        for name, section_type in types.items():
            section = raw.get(name, {})
            if not isinstance(section, dict):
                raise QABenchError(f"config section {name!r} must be a table of key = value")
            built[name] = _build_section(name, section_type, section)
        extra = set(raw) - set(built)
        if extra:
            name = sorted(extra)[0]
            raise QABenchError(f"unknown config section {name!r}{did_you_mean(name, built)}")
        core = {f.name: built.pop(f.name) for f in _core_fields()}
        return validate(cls(**core, sections=tuple(built.items())))


def _core_fields() -> list[dataclasses.Field[Any]]:
    return [f for f in fields(RunConfig) if f.name != "sections"]


def _section_types() -> dict[str, type]:
    """The core sections' classes by name (the backends' are ``section_classes()``)."""
    return {f.name: get_type_hints(RunConfig)[f.name] for f in _core_fields()}


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise QABenchError(
                f"unknown config key '{section}.{key}'{did_you_mean(key, names)}"
            )
        kwargs[key] = _coerce(f"{section}.{key}", hints[key], value)
    return cls(**kwargs)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Coerce a TOML value or a ``--set`` string to the field's declared type."""
    text = str(hint)
    optional = "None" in text
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise QABenchError(f"{name} cannot be empty")
    for kind, conv in (("bool", _to_bool), ("int", int), ("float", float), ("str", str)):
        if text.startswith(kind) or text == f"<class '{kind}'>":
            if not isinstance(value, (str, int, float)):  # a TOML list, table or date
                raise QABenchError(f"{name} expects {kind}, got {value!r}")
            try:
                result = conv(value)
            except (TypeError, ValueError, OverflowError):  # int(inf), float(10**400)
                raise QABenchError(f"{name} expects {kind}, got {value!r}") from None
            if kind == "int" and isinstance(value, float) and value != int(value):
                raise QABenchError(f"{name} expects int, got {value!r}")
            if kind in ("int", "float") and isinstance(value, bool):  # TOML true is not 1
                raise QABenchError(f"{name} expects {kind}, got {value!r}")
            return result
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.key=value`` strings (the CLI's ``--set``) to a config.

    Raises:
        QABenchError: malformed override, unknown section or key, or a value of the wrong type.
    """
    raw = config.to_dict()
    for item in overrides:
        path, _, value = item.partition("=")
        section, _, key = path.strip().partition(".")
        if "=" not in item or not section or not key:
            raise QABenchError(f"--set expects section.key=value, got {item!r}")
        section, key = moved_key(section, key)
        if section not in raw:
            raise QABenchError(f"unknown config section {section!r}{did_you_mean(section, raw)}")
        if key not in raw[section]:
            raise QABenchError(
                f"unknown config key '{section}.{key}'{did_you_mean(key, raw[section])}"
            )
        raw[section][key] = value.strip()
    return RunConfig.from_dict(raw)


def squad_dir_from_env(option: str | None = None) -> str | None:
    """The SQuAD folder from an option, else ``$QA_BENCH_SQUAD_DIR``, else None."""
    return option or os.environ.get("QA_BENCH_SQUAD_DIR") or None


def config_fields() -> list[tuple[str, Any, str]]:
    """``(section.key, default, help)`` of every config field, in declaration order (the core
    sections, then each backend's)."""
    rows = []
    sections = [(f.name, f.default_factory()) for f in _core_fields()]  # type: ignore[misc]
    for name, section in [*sections, *RunConfig().sections]:
        for f in fields(section):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((f"{name}.{f.name}", default, f.metadata.get("help", "")))
    return rows


# What may differ between comparable runs: where they ran, and local paths (the dataset
# fingerprint, not the path, says whether the data is the same).
COMPARABLE_IGNORES = ("hardware", "environment", "data.squad_dir", "data.train_file",
                      "data.validation_file", "model.cache_dir")


def comparable_config(config: RunConfig | dict[str, Any],
                      ignore: tuple[str, ...] = COMPARABLE_IGNORES) -> dict[str, Any]:
    """A config (or a result's config dict) without the parts allowed to differ between runs.

    ``ignore`` names whole sections (``hardware``) or single keys (``data.squad_dir``); the
    backends' own sections (``torch``, ``ipu``) are always left out, as ``hardware`` was before
    they moved out of it.
    """
    raw = config.to_dict() if isinstance(config, RunConfig) else config
    ignore = (*ignore, *section_classes())  # a backend's own settings: how it runs, like hardware
    kept = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items() if k not in ignore}
    for dotted in (i for i in ignore if "." in i):
        section, key = dotted.split(".", 1)
        if isinstance(kept.get(section), dict):
            kept[section].pop(key, None)
    return kept


def config_hash(config: RunConfig | dict[str, Any],
                ignore: tuple[str, ...] = COMPARABLE_IGNORES) -> str:
    """Stable hash of ``comparable_config``: two runs are comparable when their hashes match."""
    import hashlib

    text = json.dumps(comparable_config(config, ignore), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
