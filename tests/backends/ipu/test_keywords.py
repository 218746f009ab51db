"""Contract: every keyword the IPU backend passes exists in optimum-graphcore's own sources.

optimum-graphcore cannot be imported here (it needs poptorch), so its wheels are downloaded with
``pip download --no-deps`` (cached under ``$QA_BENCH_CACHE/wheels``), unpacked, and read with
``ast``. ``IPUTrainingArguments`` is a stand-alone dataclass in every release checked (it does not
inherit ``transformers.TrainingArguments``), so its fields are all in optimum-graphcore's source;
the checker follows base classes only inside the unpacked sources and fails, rather than guesses,
when a class inherits from anywhere else. The only skip is an unreachable package index.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
import typing
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from qa.backends.ipu.config import (
    api_for_version,
    ipu_config_kwargs,
    load_ipu_config,
    shipped_names,
)
from qa.backends.ipu.keywords import (
    QA_MODEL_TYPES_SINCE,
    check_model_supported,
    required_methods,
    trainer_kwargs,
    training_args_kwargs,
)
from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.task.models import cache_root

# 0.3.1 and 0.7.1 are the two API generations; the others sit on either side of each change
# api_for_version encodes (compile_model at 0.4.0, wildcards at 0.6.0, n_ipu at 0.6.1).
VERSIONS = ("0.3.1", "0.3.2", "0.4.0", "0.6.0", "0.6.1", "0.7.1")
SEED_TRAIN = {
    "learning_rate": 2e-5,
    "loss_scaling": 64,
    "weight_decay": 0.01,
    "warmup_ratio": 0.25,
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 32,
    "num_train_epochs": 3,
}
# pip names these in its "Retrying ... after connection broken by" warnings, printed only while
# retries remain: hence the explicit --retries in the download command.
NETWORK_ERRORS = (
    "NewConnectionError",
    "NameResolutionError",
    "Failed to resolve",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No route to host",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Connection refused",
)
QA_CLASSES = {
    "bert": "BertForQuestionAnswering",
    "roberta": "RobertaForQuestionAnswering",
    "deberta": "DebertaForQuestionAnswering",
    "distilbert": "DistilBertForQuestionAnswering",
}
PACKAGE = "optimum.graphcore"


# -- the checker ------------------------------------------------------------------------------


class SourceTree:
    """Python sources under ``root`` (an unpacked wheel), read with ``ast`` only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._parsed: dict[str, ast.Module] = {}

    def module(self, dotted: str) -> ast.Module:
        if dotted not in self._parsed:
            base = self.root.joinpath(*dotted.split("."))
            paths = [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()]
            if not paths:
                raise LookupError(f"module {dotted} is not in {self.root}")
            self._parsed[dotted] = ast.parse(paths[0].read_text(encoding="utf-8"))
        return self._parsed[dotted]

    def find_class(self, dotted: str, name: str) -> tuple[str, ast.ClassDef]:
        """The class ``name`` defined in, or re-exported by, module ``dotted``."""
        tree = self.module(dotted)
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return dotted, node
        source = self.imported_from(dotted, name)
        if source is None:
            raise LookupError(f"class {name} not found in {dotted}")
        return self.find_class(source, name)

    def imported_from(self, dotted: str, name: str) -> str | None:
        """The absolute module that ``dotted`` imports ``name`` from, if it does."""
        is_package = self.root.joinpath(*dotted.split("."), "__init__.py").is_file()
        anchor = dotted.split(".") if is_package else dotted.split(".")[:-1]
        for node in self.module(dotted).body:
            if isinstance(node, ast.ImportFrom) and any(
                (alias.asname or alias.name) == name for alias in node.names
            ):
                if node.level == 0:
                    return node.module
                parts = anchor[: len(anchor) - node.level + 1]
                return ".".join(parts + ([node.module] if node.module else []))
        return None

    def bases(self, dotted: str, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
        """Base classes, resolved inside the tree; a base from elsewhere is an error."""
        found = []
        for base in cls.bases:
            name = base.id if isinstance(base, ast.Name) else ast.unparse(base)
            if name == "object":
                continue
            origin = self.imported_from(dotted, name) or dotted
            try:
                found.append(self.find_class(origin, name))
            except LookupError:
                raise LookupError(
                    f"{cls.name} inherits {name} from {origin}, which is outside the checked "
                    "sources: add that package's pinned wheel to check inherited keywords"
                ) from None
        return found

    def accepted_keywords(self, dotted: str, name: str) -> set[str]:
        """Keywords ``name(...)`` accepts: dataclass fields, or ``__init__`` parameters plus
        the keys ``__init__`` takes out of ``**kwargs`` (``kwargs.pop("key", ...)``)."""
        module, cls = self.find_class(dotted, name)
        if _is_dataclass(cls):
            names = {
                s.target.id
                for s in cls.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
            }
            for base_module, base in self.bases(module, cls):
                names |= self.accepted_keywords(base_module, base.name)
            return names
        init = _method(cls, "__init__")
        if init is None:
            return set().union(
                *(self.accepted_keywords(m, b.name) for m, b in self.bases(module, cls))
            )
        return _parameters(init) | _kwargs_keys(init)

    def init_annotations(self, dotted: str, name: str) -> dict[str, str]:
        """``__init__`` parameter annotations of ``name``, as source text."""
        _, cls = self.find_class(dotted, name)
        init = _method(cls, "__init__")
        args = [] if init is None else [*init.args.args, *init.args.kwonlyargs]
        return {a.arg: ast.unparse(a.annotation) for a in args if a.annotation is not None}

    def method_parameters(self, dotted: str, name: str, method: str) -> set[str] | None:
        """Parameters of ``name.method`` (searching resolvable bases), None when absent."""
        module, cls = self.find_class(dotted, name)
        node = _method(cls, method)
        if node is not None:
            return _parameters(node)
        for base_module, base in self.bases(module, cls):
            params = self.method_parameters(base_module, base.name, method)
            if params is not None:
                return params
        return None


def _is_dataclass(cls: ast.ClassDef) -> bool:
    return any("dataclass" in ast.unparse(d) for d in cls.decorator_list)


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def _parameters(func: ast.FunctionDef) -> set[str]:
    args = func.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]} - {"self", "cls"}


def _kwargs_keys(func: ast.FunctionDef) -> set[str]:
    if func.args.kwarg is None:
        return set()
    var = func.args.kwarg.arg
    keys = set()
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == var
            and node.func.attr in {"pop", "get"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(node.args[0].value)
    return keys


def conforms(value: object, annotation: str) -> bool:
    """Whether ``value`` fits a typing annotation given as text (the subset optimum uses)."""
    return _fits(value, eval(annotation, vars(typing)))  # noqa: S307 - annotations we read


def _fits(value: object, hint: object) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if hint is type(None):
        return value is None
    if origin is typing.Union:
        return any(_fits(value, arg) for arg in args)
    if origin in (list, tuple):
        return isinstance(value, origin) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)  # type: ignore[arg-type]


def unknown_keywords(accepted: set[str], passed: Iterable[str]) -> list[str]:
    """Keywords in ``passed`` that ``accepted`` lacks, sorted."""
    return sorted(set(passed) - accepted)


# -- fetching the sources -----------------------------------------------------------------------


def _unpacked_wheel(version: str) -> Path:
    target = cache_root() / "wheels" / f"optimum_graphcore-{version}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":none:",
            "--disable-pip-version-check",
            "-q",
            "--retries",
            "2",
            f"optimum-graphcore=={version}",
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            if any(marker in output for marker in NETWORK_ERRORS):
                pytest.skip(f"package index unreachable, cannot fetch optimum-graphcore {version}")
            pytest.fail(f"pip download optimum-graphcore=={version} failed:\n{output}")
        (wheel,) = Path(tmp).glob("*.whl")
        staging = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging)
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another worker finished first
            if not (target / ".complete").exists():
                raise
    return target


@pytest.fixture(scope="session", params=VERSIONS)
def optimum(request: pytest.FixtureRequest) -> tuple[str, SourceTree]:
    """(version, sources) of one optimum-graphcore release."""
    return request.param, SourceTree(_unpacked_wheel(request.param))  # parsed once per session


def _seed_config(pod: str = "pod16", ipu_config: str = "bert-base-uncased") -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": {"name": ipu_config},
            "train": SEED_TRAIN,
            "hardware": {"backend": "ipu", "pod": pod}, "ipu": {"ipu_config": ipu_config},
        }
    )


# -- the contract -------------------------------------------------------------------------------


def test_wheel_is_the_version_asked_for(optimum: tuple[str, SourceTree]) -> None:
    version, tree = optimum
    assert f'__version__ = "{version}"' in (tree.root / "optimum/graphcore/version.py").read_text()
    exported = {
        a.asname or a.name
        for n in tree.module(PACKAGE).body
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert {"IPUConfig", "IPUTrainer", "IPUTrainingArguments"} <= exported


def test_api_generation_matches_the_source(optimum: tuple[str, SourceTree]) -> None:
    version, tree = optimum
    api = api_for_version(version)
    fields = tree.accepted_keywords(PACKAGE, "IPUTrainingArguments")
    assert ("n_ipu" in fields) == (api.replication == "n_ipu")
    if api.replication == "pod_type":
        assert "pod_type" in fields
    modeling = (tree.root / "optimum/graphcore/modeling_utils.py").read_text()
    assert ("wildcard" in modeling) == api.layer_wildcards


@pytest.mark.parametrize("config_name", shipped_names())
@pytest.mark.parametrize("pod", ["pod4", "pod16", "pod64"])
def test_ipu_config_keywords_exist(
    optimum: tuple[str, SourceTree], config_name: str, pod: str
) -> None:
    version, tree = optimum
    kwargs = ipu_config_kwargs(load_ipu_config(config_name), pod, api_for_version(version), 32)
    accepted = tree.accepted_keywords(PACKAGE, "IPUConfig")
    assert unknown_keywords(accepted, kwargs) == []


@pytest.mark.parametrize("config_name", shipped_names())
def test_ipu_config_values_match_annotations(
    optimum: tuple[str, SourceTree], config_name: str
) -> None:
    """From 0.6 IPUConfig type-checks every attribute with typeguard (a tuple is no List)."""
    version, tree = optimum
    kwargs = ipu_config_kwargs(load_ipu_config(config_name), "pod16", api_for_version(version), 32)
    annotations = tree.init_annotations(PACKAGE, "IPUConfig")
    wrong = {
        k: v for k, v in kwargs.items() if k in annotations and not conforms(v, annotations[k])
    }
    assert wrong == {}, annotations


def test_training_arguments_do_not_inherit_transformers(optimum: tuple[str, SourceTree]) -> None:
    """So their fields are complete in optimum-graphcore's own source (no pinned transformers)."""
    _, tree = optimum
    _, cls = tree.find_class(PACKAGE, "IPUTrainingArguments")
    assert cls.bases == [] and _is_dataclass(cls)


@pytest.mark.parametrize("pod", ["pod4", "pod16"])
def test_training_arguments_keywords_exist(optimum: tuple[str, SourceTree], pod: str) -> None:
    version, tree = optimum
    config = _seed_config(pod)
    settings = load_ipu_config("bert-base-uncased")
    kwargs = training_args_kwargs(config, api_for_version(version), settings, "out")
    accepted = tree.accepted_keywords(PACKAGE, "IPUTrainingArguments")
    assert unknown_keywords(accepted, kwargs) == []


def test_trainer_keywords_exist(optimum: tuple[str, SourceTree]) -> None:
    _, tree = optimum
    kwargs = trainer_kwargs(object(), object(), object(), object(), object(), [object()])
    assert set(kwargs) == {
        "model",
        "ipu_config",
        "args",
        "train_dataset",
        "data_collator",
        "callbacks",
    }
    accepted = tree.accepted_keywords(PACKAGE, "IPUTrainer")
    assert unknown_keywords(accepted, kwargs) == []


def test_methods_the_backend_calls_exist(optimum: tuple[str, SourceTree]) -> None:
    version, tree = optimum
    for cls, methods in required_methods(api_for_version(version)).items():
        for method, keywords in methods.items():
            params = tree.method_parameters(PACKAGE, cls, method)
            assert params is not None, f"{cls}.{method} missing in {version}"
            assert unknown_keywords(params, keywords) == [], f"{cls}.{method}"


def test_qa_model_support_matches_the_source(optimum: tuple[str, SourceTree]) -> None:
    version, tree = optimum
    api = api_for_version(version)
    for model_type, qa_class in QA_CLASSES.items():
        path = tree.root / f"optimum/graphcore/models/{model_type}/modeling_{model_type}.py"
        registered = path.is_file() and f"@register({qa_class})" in path.read_text()
        try:
            check_model_supported(model_type, api)
            claimed = True
        except QABenchError:
            claimed = False
        assert claimed == registered, f"{model_type} on {version}"
    assert set(QA_CLASSES) == set(QA_MODEL_TYPES_SINCE)


# -- the checker catches what it is for ------------------------------------------------------

MISSPELLED = [
    ("IPUConfig", {"ipus_per_replica": 4, "layers_per_ipus": [0, 4, 4, 4]}, ["layers_per_ipus"]),
    ("IPUConfig", {"matmul_proportions": 0.25}, ["matmul_proportions"]),
    ("IPUTrainingArguments", {"output_dir": "o", "learning_rat": 2e-5}, ["learning_rat"]),
    ("IPUTrainingArguments", {"loss_scale": 64, "seed": 1}, ["loss_scale"]),
    ("IPUTrainer", {"model": None, "train_datasets": None}, ["train_datasets"]),
]


@pytest.mark.parametrize(("cls", "kwargs", "expected"), MISSPELLED)
def test_checker_reports_misspelled_keyword(
    optimum: tuple[str, SourceTree], cls: str, kwargs: dict, expected: list[str]
) -> None:
    _, tree = optimum
    assert unknown_keywords(tree.accepted_keywords(PACKAGE, cls), kwargs) == expected


def test_checker_reports_the_api_keyword_of_the_other_generation() -> None:
    """``pod_type`` is gone from 0.7.1 and ``n_ipu`` absent from 0.3.1: the checker must say so."""
    old = SourceTree(_unpacked_wheel("0.3.1")).accepted_keywords(PACKAGE, "IPUTrainingArguments")
    new = SourceTree(_unpacked_wheel("0.7.1")).accepted_keywords(PACKAGE, "IPUTrainingArguments")
    assert unknown_keywords(old, ["n_ipu"]) == ["n_ipu"]
    assert unknown_keywords(new, ["pod_type"]) == ["pod_type"]


def test_checker_on_a_synthetic_package(tmp_path: Path) -> None:
    """The checker itself, offline: dataclass fields, kwargs.pop keys, re-exports, bases."""
    pkg = tmp_path / "optimum" / "graphcore"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .conf import Conf, Args\nfrom .ext import Child\n")
    (pkg / "conf.py").write_text(
        "from dataclasses import dataclass\n"
        "class Conf:\n    def __init__(self, a=1, **kwargs):\n        self.b = kwargs.pop('b', 2)\n"
        "@dataclass\nclass Base:\n    x: int = 0\n"
        "@dataclass\nclass Args(Base):\n    y: int = 0\n"
    )
    (pkg / "ext.py").write_text(
        "from dataclasses import dataclass\nfrom transformers import TrainingArguments\n"
        "@dataclass\nclass Child(TrainingArguments):\n    z: int = 0\n"
    )
    tree = SourceTree(tmp_path)
    assert tree.accepted_keywords(PACKAGE, "Conf") == {"a", "b"}
    assert tree.accepted_keywords(PACKAGE, "Args") == {"x", "y"}
    assert unknown_keywords(tree.accepted_keywords(PACKAGE, "Conf"), ["a", "c"]) == ["c"]
    assert conforms([0, 4], "Optional[List[int]]") and not conforms((0, 4), "List[int]")
    assert conforms(0.25, "Union[float, List[float]]") and not conforms(True, "int")
    with pytest.raises(LookupError, match="outside the checked sources"):
        tree.accepted_keywords(PACKAGE, "Child")
