#!/usr/bin/env python3
"""Run mutmut over the modules that decide verdicts and answers, then write docs/mutation/report.md.

    python tools/mutation_report.py [--max-children N] [--skip-run] [--out docs/mutation/report.md]

(what ``tox -e mutation`` runs). mutmut's configuration is ``[tool.mutmut]`` in pyproject.toml;
its state lives in ``mutants/`` (not in git), so a second run only retests what changed.

The report has, per module, mutants / killed / survived / score, and every mutant that was not
killed, described by a key that does not depend on mutmut's numbering (module, function, and the
changed line before and after). Survivors that ``docs/mutation/equivalents.toml`` lists are shown
with the reason kept there; any other survivor is *unexplained*, and makes this script exit 1:
either a test should kill it, or it is equivalent and its key and reason belong in that file.
Entries of that file that match no survivor any more are listed as stale.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "docs" / "mutation" / "equivalents.toml"
# The same table measured on the tree before the killing tests (``--summary-json`` there).
BEFORE = ROOT / "docs" / "mutation" / "before.json"
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
# Not tested yet (an interrupted run): neither killed nor a survivor.
PENDING = {"not checked", "check was interrupted by user"}
NAME = re.compile(r"^(?P<module>[\w.]+?)\.x(?:ǁ(?P<cls>\w+)ǁ|_)(?P<func>\w+?)__mutmut_\d+$")


@dataclass(frozen=True)
class Mutant:
    """One mutant: its mutmut name, status and stable key."""

    name: str
    status: str
    key: str = ""

    @property
    def module(self) -> str:
        match = NAME.match(self.name)
        return match["module"] if match else self.name.rsplit(".", 1)[0]


def _mutmut() -> str:
    """The mutmut command of this interpreter's environment (``python -m mutmut`` re-imports
    its main module, which mutmut warns against)."""
    beside = Path(sys.executable).with_name("mutmut")
    return str(beside) if beside.exists() else "mutmut"


def mutmut(*args: str) -> str:
    """Output of a mutmut command run in the repository root."""
    done = subprocess.run([_mutmut(), *args], cwd=ROOT, text=True, capture_output=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"mutmut {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def statuses() -> list[Mutant]:
    """Every mutant mutmut knows, with its status."""
    mutants = []
    for line in mutmut("results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and NAME.match(name):
            mutants.append(Mutant(name, status))
    return mutants


@functools.cache
def _functions(module: str) -> dict[str, str]:
    """Source of every function mutmut wrote for ``module`` (originals and mutants)."""
    path = ROOT / "mutants" / Path(*module.split(".")).with_suffix(".py")
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1: node.end_lineno])
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def describe(name: str) -> str:
    """``module::Class.function: old -> new``, the changed lines stripped of indentation (what
    ``mutmut show`` prints, read from mutmut's generated module rather than one process each)."""
    match = NAME.match(name)
    assert match, name
    mutant = name[len(match["module"]) + 1:]
    original = mutant.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    functions = _functions(match["module"])
    old = functions[original].replace(original, match["func"]).splitlines()
    new = functions[mutant].replace(mutant, match["func"]).splitlines()
    diff = list(difflib.unified_diff(old, new, lineterm="", n=0))[2:]
    removed = [ln[1:].strip() for ln in diff if ln.startswith("-")]
    added = [ln[1:].strip() for ln in diff if ln.startswith("+")]
    where = f"{match['cls']}.{match['func']}" if match["cls"] else match["func"]
    return f"{match['module']}::{where}: {' / '.join(removed)} -> {' / '.join(added)}"


def with_keys(mutants: list[Mutant]) -> list[Mutant]:
    """Keys for every mutant that was not killed (numbered where two are alike)."""
    keyed, seen = [], Counter()
    for m in mutants:
        if m.status in KILLED | PENDING:
            keyed.append(m)
            continue
        key = describe(m.name)
        seen[key] += 1
        keyed.append(Mutant(m.name, m.status, key if seen[key] == 1 else f"{key} #{seen[key]}"))
    return keyed


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """Hand-kept ``key -> reason`` for mutants that change no behaviour a user relies on."""
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])
    return {entry["mutant"]: entry["reason"] for entry in entries}


def summary(mutants: list[Mutant], equivalents: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per module: mutants, killed (of which by timeout), survived, no tests, not run,
    equivalent, unexplained."""
    by_module: dict[str, list[Mutant]] = defaultdict(list)
    for m in mutants:
        by_module[m.module].append(m)
    table = {}
    for module, ms in sorted(by_module.items()):
        counts = Counter("killed" if m.status in KILLED else
                         "not run" if m.status in PENDING else m.status for m in ms)
        alive = [m for m in ms if m.status not in KILLED | PENDING]
        equivalent = sum(m.key in equivalents for m in alive)
        table[module] = {"mutants": len(ms), "killed": counts["killed"],
                         "timeout": sum(m.status == "timeout" for m in ms),
                         "survived": counts["survived"], "no tests": counts["no tests"],
                         "not run": counts["not run"], "equivalent": equivalent,
                         "unexplained": len(alive) - equivalent}
    return table


def table_lines(table: dict[str, dict[str, int]]) -> list[str]:
    """The per-module table (scores over the mutants tested: *not run* ones are left out)."""
    lines = ["| module | mutants | killed | of which timeouts | survived | no tests | not run "
             "| raw score | equivalent | score after equivalents | unexplained |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for module, c in table.items():
        tested = c["mutants"] - c["not run"]
        raw = f"{100 * c['killed'] / tested:.1f} %" if tested else "—"
        rest = tested - c["equivalent"]
        after = f"{100 * c['killed'] / rest:.1f} %" if rest > 0 else "—"
        timeouts = c.get("timeout", "—")  # tables written before this column have none
        lines.append(f"| `{module}` | {c['mutants']} | {c['killed']} | {timeouts} | "
                     f"{c['survived']} | "
                     f"{c['no tests']} | {c['not run']} | {raw} | {c['equivalent']} | {after} | "
                     f"{c['unexplained']} |")
    return lines


def render(mutants: list[Mutant], equivalents: dict[str, str], header: list[str]) -> str:
    """docs/mutation/report.md."""
    by_module: dict[str, list[Mutant]] = defaultdict(list)
    for m in mutants:
        by_module[m.module].append(m)
    lines = ["# Mutation testing", "", *header, "", *table_lines(summary(mutants, equivalents))]
    if BEFORE.exists():
        before = json.loads(BEFORE.read_text(encoding="utf-8"))
        lines += ["", f"### Before: {before['what']}", "", before["how"], "",
                  *table_lines(before["modules"])]
    for module, ms in sorted(by_module.items()):
        alive = sorted((m for m in ms if m.status not in KILLED | PENDING),
                       key=lambda m: m.key)
        if not alive:
            continue
        lines += ["", f"## `{module}`", ""]
        for m in alive:
            reason = equivalents.get(m.key)
            label = f"equivalent: {reason}" if reason else "**unexplained**"
            lines.append(f"- `{m.key}` ({m.status}) — {label}")
    stale = sorted(set(equivalents) - {m.key for m in mutants})
    if stale:
        lines += ["", "## Stale entries of docs/mutation/equivalents.toml", ""]
        lines += [f"- `{key}`" for key in stale]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1,
                        help="mutants tested at once (default: one per CPU; 1 on a machine "
                             "shared with other jobs)")
    parser.add_argument("--skip-run", action="store_true", help="report mutmut's last results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "mutation" / "report.md")
    parser.add_argument("--summary-json", type=Path,
                        help="also write the per-module counts as JSON "
                             "(how docs/mutation/before.json was made)")
    parser.add_argument("mutants", nargs="*",
                        help="mutmut name patterns to (re)test, e.g. 'qa.gating.verdicts*' "
                             "(default: all)")
    args = parser.parse_args(argv)
    header = []
    if not args.skip_run:
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), os.times()
        subprocess.run([_mutmut(), "run", "--max-children", str(args.max_children),
                        *args.mutants], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall, used = time.perf_counter() - start, os.times()
        cpu_s = (used.children_user - cpu.children_user) + (used.children_system
                                                             - cpu.children_system)
        command = " ".join(["mutmut", "run", "--max-children", str(args.max_children),
                            *args.mutants])
        header.append(f"Last run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
                      f"`{command}`: {wall / 60:.1f} min wall, "
                      f"{cpu_s / 60:.1f} min CPU, {os.cpu_count()} cores, load average "
                      f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.")
    elif args.out.exists():
        # The results are still those of the last run: keep the line that describes it.
        header += [line for line in args.out.read_text(encoding="utf-8").splitlines()
                   if line.startswith("Last run: ")][:1]
    mutants = with_keys(statuses())
    equivalents = load_equivalents()
    header.append("Regenerated by `tox -e mutation` (`tools/mutation_report.py`): edit "
                  "`docs/mutation/equivalents.toml`, not this file. Raw score = killed / tested "
                  "mutants; after equivalents = killed / (tested - equivalent); *not run*: not "
                  "tested yet (an interrupted run). A timeout counts as killed: the mutant's "
                  "tests ran over `timeout_multiplier` times their recorded time "
                  "(`[tool.mutmut]`). *Unexplained* survivors fail the tox env.")
    args.out.write_text(render(mutants, equivalents, header), encoding="utf-8")
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary(mutants, equivalents), indent=1) + "\n",
                                     encoding="utf-8")
    unexplained = [m for m in mutants
                   if m.status not in KILLED | PENDING and m.key not in equivalents]
    print(f"{args.out}: {len(mutants)} mutants, {len(unexplained)} unexplained survivor(s)")
    unmeasured = unmeasured_modules(mutants)
    if unmeasured and not args.mutants:
        # A whole run that leaves a configured module untested measured nothing there: an
        # interrupted run, or a module whose mutants mutmut never generated.
        print(f"not measured (no mutant tested): {', '.join(unmeasured)}")
    return 1 if unexplained or (unmeasured and not args.mutants) else 0


def configured_modules() -> list[str]:
    """The modules ``[tool.mutmut] only_mutate`` names, as dotted module names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    paths = config["tool"]["mutmut"].get("only_mutate", [])
    return [p.removesuffix(".py").replace("/", ".") for p in paths]


def unmeasured_modules(mutants: list[Mutant]) -> list[str]:
    """Configured modules with no tested mutant (none generated, or every one still pending)."""
    tested = {m.module for m in mutants if m.status not in PENDING}
    return [module for module in configured_modules() if module not in tested]


if __name__ == "__main__":
    sys.exit(main())
