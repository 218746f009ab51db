"""What the callers of a backend ask of it, read from their source: every registered backend,
and one from outside the package, must accept those calls (tests/backends)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: The modules that call into backends.
CALLERS = ("qa/run/pipeline.py", "qa/run/runner.py", "qa/run/profiles/__init__.py",
           "qa/run/sharding.py", "qa/frontends/pytest_support.py")


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


def _bind(cls: type, method: str, n_args: int, keywords: list[str]) -> None:
    function = getattr(cls, method)
    signature = inspect.signature(function)
    is_instance_method = method == "__init__" or not isinstance(
        inspect.getattr_static(cls, method), (classmethod, staticmethod))
    placeholders: list[Any] = [object()] * (n_args + (1 if is_instance_method else 0))
    if not is_instance_method:  # a bound classmethod: inspect already dropped ``cls``
        placeholders = [object()] * n_args
    signature.bind(*placeholders, **{k: object() for k in keywords})
