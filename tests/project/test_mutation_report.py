"""tools/mutation_report.py: a run that measured nothing in a module must not pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("mutation_report",
                                                  ROOT / "tools" / "mutation_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_configured_modules_are_those_of_pyproject() -> None:
    tool = _tool()
    modules = tool.configured_modules()
    assert "qa.gating.verdicts" in modules and "qa.task.preprocessing" in modules
    assert all((ROOT / (m.replace(".", "/") + ".py")).exists() for m in modules)


def test_a_module_with_only_pending_or_no_mutants_is_unmeasured() -> None:
    tool = _tool()
    modules = tool.configured_modules()
    tested = [tool.Mutant(f"{m}.x_f__mutmut_1", "killed") for m in modules[1:]]
    pending = tool.Mutant(f"{modules[0]}.x_f__mutmut_1", "not checked")
    assert tool.unmeasured_modules(tested + [pending]) == [modules[0]]
    assert tool.unmeasured_modules(tested) == [modules[0]]  # no mutant generated at all
    survived = tool.Mutant(f"{modules[0]}.x_f__mutmut_2", "survived")
    assert tool.unmeasured_modules(tested + [pending, survived]) == []


def test_a_timeout_is_a_kill_and_is_counted_apart() -> None:
    tool = _tool()
    mutants = [tool.Mutant("qa.gating.verdicts.x_gate__mutmut_1", "killed"),
               tool.Mutant("qa.gating.verdicts.x_gate__mutmut_2", "timeout"),
               tool.Mutant("qa.gating.verdicts.x_gate__mutmut_3", "survived", key="k")]
    row = tool.summary(mutants, {})["qa.gating.verdicts"]
    assert (row["killed"], row["timeout"], row["survived"], row["unexplained"]) == (2, 1, 1, 1)
    line = tool.table_lines({"qa.gating.verdicts": row})[2]
    assert line.startswith("| `qa.gating.verdicts` | 3 | 2 | 1 | 1 | 0 | 0 | 66.7 % |")
    before = {k: v for k, v in row.items() if k != "timeout"}  # docs/mutation/before.json
    assert tool.table_lines({"qa.gating.verdicts": before})[2].startswith(
        "| `qa.gating.verdicts` | 3 | 2 | — |")
