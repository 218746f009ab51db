"""The map holds: imports between qa's modules form no cycle, and the stages point one way.

Read from the source (``ast``), every import counted — module level and inside functions —
except the ``if TYPE_CHECKING:`` blocks, which only name types. docs/design.md draws the layers
these rules keep.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

QA = Path(__file__).resolve().parents[2] / "qa"


def _module(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in QA.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> set[str]:
    """The qa modules ``path`` imports at run time."""
    found: set[str] = set()
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("qa"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if base.startswith("qa"):
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    found.add(child if child in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module)
    return {m for m in found if m in MODULES}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself can fail: a two-module loop is reported."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


#: package -> packages it must never import (docs/design.md: the arrows point one way).
FORBIDDEN = {
    "qa.task": ("qa.run", "qa.backends", "qa.launchers", "qa.gating", "qa.reporting",
                "qa.frontends", "qa.results", "qa.measure"),
    "qa.results": ("qa.run", "qa.backends", "qa.launchers", "qa.gating", "qa.reporting",
                   "qa.frontends", "qa.task"),
    "qa.measure": ("qa.run", "qa.backends", "qa.launchers", "qa.gating", "qa.reporting",
                   "qa.frontends", "qa.task"),
    "qa.gating": ("qa.run.pipeline", "qa.run.runner", "qa.backends", "qa.launchers",
                  "qa.reporting", "qa.frontends", "qa.task"),
    "qa.reporting": ("qa.run.pipeline", "qa.run.runner", "qa.backends", "qa.launchers",
                     "qa.frontends", "qa.task"),
    "qa.launchers": ("qa.run.pipeline", "qa.run.runner", "qa.backends", "qa.gating",
                     "qa.reporting", "qa.frontends"),
    "qa.backends": ("qa.run.pipeline", "qa.run.runner", "qa.gating", "qa.reporting",
                    "qa.frontends"),
    "qa.run": ("qa.frontends",),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_stages_import_only_downwards(package: str) -> None:
    wrong = sorted(f"{name} -> {target}" for name, targets in GRAPH.items()
                   if name == package or name.startswith(package + ".")
                   for target in targets
                   if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[package]))
    assert wrong == []


def test_qa_has_only_packages_and_the_shared_base_at_its_top() -> None:
    top = sorted(p.name for p in QA.iterdir() if p.suffix == ".py")
    assert top == ["__init__.py", "errors.py", "files.py", "progress.py", "shapes.py"]


@pytest.mark.parametrize("module", ["qa.errors", "qa.files", "qa.progress", "qa.shapes"])
def test_the_base_modules_import_nothing_of_qa(module: str) -> None:
    """Every stage may import the base (the pipeline and the backends both report progress),
    so the base imports none of them (only ``qa.errors``, the one error type)."""
    assert GRAPH[module] <= {"qa.errors"}
