"""Matrix profiles: TOML files that expand into benchmark entries.

The default profiles (smoke, nightly, sdk-upgrade) ship in this folder; a user's own profiles
go in ``benchmarks/profiles/NAME.toml`` of the working folder (found by name, before the
shipped ones) or anywhere as ``--profile path/to/file.toml``.

A profile names a backend, the models, pods (or devices) and datasets to cross, and the
defaults every entry starts from. Per-model and per-dataset tables override those defaults::

    description = "..."
    backend = "torch"
    models = ["tiny-roformer"]
    pods = ["cpu"]
    datasets = ["synthetic"]
    seeds = [42]

    [defaults.train]
    learning_rate = 1e-3

    [model."bert-base-uncased".hardware]
    ipu_config = "bert-base-uncased"

    [dataset.squad_v2.data]
    version_2 = true
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa import backends
from qa.config.schema import RunConfig, apply_overrides
from qa.config.sections import MOVED
from qa.config.validation import check_profile
from qa.errors import QABenchError, did_you_mean, unknown
from qa.files import read_toml
from qa.results.store import entry_id
from qa.task.models import TINY_MODELS

PROFILE_KEYS = {"description", "backend", "models", "pods", "datasets", "seeds", "defaults",
                "model", "dataset"}


#: The default profiles ship inside the package (``qa/run/profiles/*.toml``).
SHIPPED = Path(__file__).resolve().parent


def profile_dirs() -> list[Path]:
    """Where profile names are looked up: the user's own ``./benchmarks/profiles`` (in the
    working folder) first, then the profiles shipped with qa-bench."""
    return [Path.cwd() / "benchmarks" / "profiles", SHIPPED]


def profile_names() -> list[str]:
    """Names of the profiles found."""
    names = set()
    for folder in profile_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


@dataclass(frozen=True)
class Entry:
    """One matrix entry: its id, its config, and the hardware it needs (a pytest marker).

    The id is ``results.entry_id`` of the entry's result key, pod as the backend names it
    (``torch/cpu/tiny-roformer__synthetic``, ``torch/cpux2/...`` for two replicas): the id of
    its results and the path of its baseline.
    """

    id: str
    config: RunConfig
    marks: tuple[str, ...] = ()


@dataclass
class Profile:
    """A loaded profile."""

    name: str
    description: str
    backend: str
    models: list[str]
    pods: list[str]
    datasets: list[str]
    seeds: list[int]
    defaults: dict[str, Any] = field(default_factory=dict)
    model_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None


def load_profile(name_or_path: str) -> Profile:
    """Load a profile by name (``smoke``) or path.

    Raises:
        QABenchError: unknown name (with "did you mean"), bad TOML, unknown keys.
    """
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.exists()):
        for folder in profile_dirs():
            if (folder / f"{name_or_path}.toml").exists():
                path = folder / f"{name_or_path}.toml"
                break
        else:
            raise unknown("profile", name_or_path, profile_names())
    raw = read_toml(path, "profile")
    extra = set(raw) - PROFILE_KEYS
    if extra:
        key = sorted(extra)[0]
        raise QABenchError(f"profile {path}: unknown key {key!r}{did_you_mean(key, PROFILE_KEYS)}")
    check_profile(raw, f"profile {path}")
    profile = Profile(
        name=path.stem, description=str(raw.get("description", "")),
        backend=str(raw.get("backend", "torch")), models=list(raw["models"]),
        pods=list(raw["pods"]), datasets=list(raw["datasets"]),
        seeds=[int(s) for s in raw.get("seeds", [42])], defaults=raw.get("defaults", {}),
        model_overrides=raw.get("model", {}), dataset_overrides=raw.get("dataset", {}),
        path=path,
    )
    try:  # validate every entry now: a bad key or value fails before anything runs
        expand(profile)
    except QABenchError as exc:
        raise QABenchError(f"profile {path}: {exc}") from None
    return profile


def _flatten(table: dict[str, Any]) -> list[str]:
    return [f"{section}.{key}={value}" for section, values in table.items()
            for key, value in values.items()]


def select(profile: Profile, backend: str | None = None, models: list[str] | None = None,
           pods: list[str] | None = None, datasets: list[str] | None = None) -> Profile:
    """Narrow a profile by the CLI/pytest options; unknown names are errors with "did you mean".

    Models may be any hub id or path beyond the profile's list (a user's own checkpoint);
    pods must be valid for the backend.
    """
    if backend is not None:
        if backend not in backends.names():
            raise unknown("backend", backend, backends.names())
        profile.backend = backend
    backend_cls = backends.get(profile.backend)
    valid_pods = backend_cls.SLOTS
    for pod in pods or []:
        if pod not in valid_pods:
            raise unknown(backend_cls.SLOT_KIND, pod, valid_pods)
    if models:

        known = set(profile.models) | set(TINY_MODELS)
        for model in models:
            if model not in known and not _looks_like_model_id(model):
                raise unknown("model", model, known)
        profile.models = list(models)
    if pods:
        profile.pods = list(pods)
    elif backend is not None:
        profile.pods = [p for p in profile.pods if p in valid_pods] or [valid_pods[0]]
    if datasets:
        profile.datasets = list(datasets)
    return profile


def _looks_like_model_id(name: str) -> bool:
    # "org/model" hub ids and existing folders are accepted as user models; a bare unknown name
    # is far more often a typo of a profile model than a hub id.
    return "/" in name or Path(name).is_dir()


def expand(profile: Profile, squad_dir: str | None = None,
           overrides: list[str] | None = None) -> list[Entry]:
    """All entries of a profile (models × pods × datasets) as RunConfigs."""
    return [entry for entry, _ in expand_with_origins(profile, squad_dir, overrides)]


#: Where a resolved value can come from, in the order the layers apply (a later one wins).
ORIGINS = ("default", "profile defaults", "profile model table", "profile dataset table",
           "matrix", "slot", "--squad-dir", "--set")


def expand_with_origins(profile: Profile, squad_dir: str | None = None,
                        overrides: list[str] | None = None
                        ) -> list[tuple[Entry, dict[str, str]]]:
    """Every entry with, per field (``section.key``), the layer its value came from.

    The layers apply in ``ORIGINS`` order: the schema's default, the profile's
    ``[defaults.SECTION]``, its ``[model."NAME".SECTION]`` and ``[dataset.NAME.SECTION]``
    tables, the matrix axes (model, dataset, backend), the backend's pod settings,
    ``--squad-dir`` and ``--set``. ``qa-bench config --profile`` prints both.
    """
    backend_cls = backends.get(profile.backend)
    found = []
    for pod in profile.pods:
        if pod not in backend_cls.SLOTS:
            raise unknown(backend_cls.SLOT_KIND, pod, backend_cls.SLOTS)
    for model in profile.models:
        for pod in profile.pods:
            for dataset in profile.datasets:
                layers = [
                    ("profile defaults", _flatten(profile.defaults)),
                    ("profile model table", _flatten(profile.model_overrides.get(model, {}))),
                    ("profile dataset table",
                     _flatten(profile.dataset_overrides.get(dataset, {}))),
                    ("matrix", [f"model.name={model}", f"data.dataset={dataset}",
                                f"hardware.backend={profile.backend}"]),
                    ("slot", list(backend_cls.slot_overrides(pod))),
                    ("--squad-dir", [f"data.squad_dir={squad_dir}"] if squad_dir else []),
                    ("--set", list(overrides or [])),
                ]
                config = apply_overrides(RunConfig(), [s for _, sets in layers for s in sets])
                origins = {f"{section}.{key}": "default"
                           for section, values in config.to_dict().items() for key in values}
                for origin, sets in layers:
                    for item in sets:
                        section, _, key = item.partition("=")[0].strip().partition(".")
                        section = MOVED.get(key, section) if section == "hardware" else section
                        origins[f"{section}.{key}"] = origin
                key = {"backend": profile.backend, "pod": backend_cls.result_slot(config),
                       "model": model, "dataset": dataset}
                found.append((Entry(entry_id(key), config, backend_cls.entry_marks(pod)),
                              origins))
    entries = [entry for entry, _ in found]
    ids = [entry.id for entry in entries]
    twice = next((i for i in ids if ids.count(i) > 1), None)
    if twice:
        raise QABenchError(f"the matrix holds entry {twice} twice (a model, pod or dataset "
                           "listed twice, or two pods that are the same device here)")
    return found
