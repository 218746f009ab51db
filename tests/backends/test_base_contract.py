"""The backend contract: every call the pipeline makes on a backend binds on every backend.

The calls are read from the pipeline's own source with ``ast`` (not copied here by hand), so a
keyword added to a call in ``qa/run/pipeline.py`` is checked against every registered backend the
moment it is written. This is the class of break that kept the IPU backend from ever running:
``backend_cls(padding_side=...)`` and ``train(..., progress=..., monitor=...)`` against an
``IPUBackend`` that took neither.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

from qa import backends
from qa.backends.base import Backend

ROOT = Path(__file__).resolve().parents[2]
#: The modules that call into backends.
CALLERS = ("qa/run/pipeline.py", "qa/run/runner.py", "qa/run/profiles/__init__.py",
           "qa/frontends/pytest_support.py")
#: Local names the callers bind a backend class or instance to.
BACKEND_NAMES = {"backend", "backend_cls"}


def _is_registry_get(node: ast.AST) -> bool:
    """``backends.get(...)``: the registry lookup, whose result is a backend class."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get" and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "backends")


def backend_calls(path: Path) -> list[tuple[str, int, list[str], int]]:
    """(method, positional count, keyword names, line) for each call on a backend in ``path``.

    The method is ``__init__`` for a call of the class itself (``backend_cls(...)``).
    """
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "backend_cls":
            method = "__init__"
        elif isinstance(func, ast.Attribute) and (
                (isinstance(func.value, ast.Name) and func.value.id in BACKEND_NAMES)
                or _is_registry_get(func.value)):
            method = func.attr
        else:
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            raise AssertionError(f"{path}:{node.lineno}: *args/**kwargs hide the call's shape")
        calls.append((method, len(node.args), [k.arg for k in node.keywords], node.lineno))
    return calls


ALL_CALLS = [(f"{name}:{line}", method, n_args, keywords)
             for name in CALLERS
             for method, n_args, keywords, line in backend_calls(ROOT / name)]


def test_the_callers_are_read() -> None:
    methods = {method for _, method, _, _ in ALL_CALLS}
    # If the parse found none of these, the test below would pass vacuously.
    assert {"__init__", "available", "fingerprint", "compile", "train", "predict"} <= methods


def _bind(cls: type, method: str, n_args: int, keywords: list[str]) -> None:
    function = getattr(cls, method)
    signature = inspect.signature(function)
    is_instance_method = method == "__init__" or not isinstance(
        inspect.getattr_static(cls, method), (classmethod, staticmethod))
    placeholders: list[Any] = [object()] * (n_args + (1 if is_instance_method else 0))
    if not is_instance_method:  # a bound classmethod: inspect already dropped ``cls``
        placeholders = [object()] * n_args
    signature.bind(*placeholders, **{k: object() for k in keywords})


@pytest.mark.parametrize("name", backends.names())
@pytest.mark.parametrize(("where", "method", "n_args", "keywords"), ALL_CALLS,
                         ids=[f"{w}-{m}" for w, m, _, _ in ALL_CALLS])
def test_pipeline_calls_bind(name: str, where: str, method: str, n_args: int,
                             keywords: list[str]) -> None:
    cls = backends.get(name)
    try:
        _bind(cls, method, n_args, keywords)
    except TypeError as exc:
        pytest.fail(f"{where}: {cls.__name__}.{method}({n_args} positional, "
                    f"{', '.join(keywords) or 'no keywords'}) does not bind: {exc}")


@pytest.mark.parametrize("name", backends.names())
def test_base_declares_every_call(name: str) -> None:
    """Every method the callers use is declared by the contract (base.Backend) itself."""
    for where, method, n_args, keywords in ALL_CALLS:
        assert hasattr(Backend, method), f"{where}: {method} is not part of qa.backends.base"
        _bind(Backend, method, n_args, keywords)


@pytest.mark.parametrize("name", backends.names())
def test_backends_construct_with_the_pipeline_arguments(name: str) -> None:
    backend = backends.get(name)(padding_side="left")
    assert backend.padding_side == "left"


def test_a_new_backend_is_one_module_and_one_registry_line(tmp_path, monkeypatch) -> None:
    """Pods, result key, marks and failure kinds all come from the backend class itself."""
    from qa.run import profiles
    from qa.run.pipeline import result_key

    package = tmp_path / "toy_backend"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from qa.backends.base import Backend, BackendFailure\n"
        "class Melted(BackendFailure):\n"
        "    status = 'melted'\n"
        "class ToyBackend(Backend):\n"
        "    NAME = 'toy'\n"
        "    PODS = ('rack1', 'rack2')\n"
        "    MARKS = {'toy': 'needs the toy accelerator'}\n"
        "    available = classmethod(lambda cls, config=None: (False, 'no toy here'))\n"
        "    fingerprint = classmethod(lambda cls, config: {'kind': 'toy'})\n"
        "    @classmethod\n"
        "    def entry_marks(cls, pod):\n"
        "        return ('toy',)\n"
        "    compile = train = predict = None\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    backends.register("toy", "toy_backend:ToyBackend")  # the one registry line

    profile = profiles.Profile(name="p", description="", backend="toy", models=["tiny-bert"],
                               pods=["rack2"], datasets=["synthetic"], seeds=[42])
    (entry,) = profiles.expand(profiles.select(profile))
    assert entry.config.hardware.pod == "rack2" and entry.marks == ("toy",)
    assert result_key(entry.config)["pod"] == "rack2"
    with pytest.raises(Exception, match="unknown pod 'rack3'"):
        profiles.select(profile, pods=["rack3"])
    cls = backends.get("toy")
    import toy_backend

    assert cls.failure_status(toy_backend.Melted("hot")) == "melted"
    assert cls.failure_status(ValueError("x")) is None


def test_failure_kinds_come_from_the_backend() -> None:
    from qa.backends.base import Diverged
    from qa.results.store import RunResult
    from qa.run.pipeline import _record_failure

    status = backends.get("torch").failure_status  # the torch loop raises the contract's kind
    result = RunResult(key={}, config={})
    _record_failure(result, "train", Diverged("loss is nan"), status(Diverged("loss is nan")))
    assert result.status == "diverged" and result.failure["stage"] == "train"
    _record_failure(result, "train", ValueError("boom"), status(ValueError("boom")))
    assert result.status == "failed"


def test_the_flops_probe_runs_only_where_the_host_is_the_hardware() -> None:
    """MFU and the probe during training measure the device the steps ran on, or nothing."""
    from qa.config.schema import RunConfig, apply_overrides

    cpu = apply_overrides(RunConfig(), ["hardware.backend=torch", "hardware.device=cpu"])
    assert backends.get("torch").probe_device(cpu) == "cpu"
    ipu = apply_overrides(RunConfig(), ["hardware.backend=ipu", "hardware.pod=pod16"])
    # A host matmul is no measure of an IPU (nor of the emulation standing in for one).
    assert backends.get("ipu").probe_device(ipu) is None
