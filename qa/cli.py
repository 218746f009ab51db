"""``qa-bench``: run | config | report | baseline | compare | evaluate.

Exit codes: 0 every gate holds, 1 a gate failed or an entry did not finish (or compare found a
regression), 2 bad usage or input (one line on stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from qa.errors import QABenchError
from qa.options import add_run_options, read_run_options

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise QABenchError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = _Parser(prog="qa-bench", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run a matrix profile (default: the shipped smoke profile)")
    add_run_options(run.add_argument)

    sub.add_parser("config", help="list every config field (for --set and profiles) with its "
                   "default and help")

    rep = sub.add_parser("report", help="re-render a run folder's report")
    rep.add_argument("run_dir")
    rep.add_argument("--baselines", help="re-judge against this baselines folder")

    base = sub.add_parser("baseline", help="write baselines from finished runs (accuracy pooled "
                          "over all of them, timings per hardware fingerprint)")
    base.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="run folders or RunResult files, e.g. one per seed × thread count")
    base.add_argument("--baselines", default="baselines", help="baselines folder")
    base.add_argument("--timings-from", nargs="+", metavar="RUN_DIR",
                      help="take the timing sections from these runs only (e.g. separate runs "
                           "on a quiet machine; RUN_DIRs then give accuracy only)")

    cmp_ = sub.add_parser("compare", help="compare two runs (e.g. SDK before/after)")
    cmp_.add_argument("a", help="run folder or RunResult JSON (before)")
    cmp_.add_argument("b", help="run folder or RunResult JSON (after)")
    cmp_.add_argument("--force", action="store_true",
                      help="compare even when datasets or configs differ")

    ev = sub.add_parser("evaluate", help="official SQuAD evaluation of a predictions file")
    ev.add_argument("data_json")
    ev.add_argument("predictions_json")
    ev.add_argument("--version-2", action="store_true", help="SQuAD v2.0 scoring")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False)
                            else logging.WARNING, format="qa-bench: %(message)s")
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        return {"run": cmd_run, "config": cmd_config, "report": cmd_report,
                "baseline": cmd_baseline, "compare": cmd_compare,
                "evaluate": cmd_evaluate}[args.command](args)
    except QABenchError as exc:
        print(f"qa-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("qa-bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def cmd_run(args: argparse.Namespace) -> int:
    """``qa-bench run``."""
    from qa.runner import prepare_run, run_entries

    plan = prepare_run(read_run_options(lambda name: getattr(args, name)), Path.cwd())
    summary = run_entries(plan.entries, plan.options)
    _print_summary(summary)
    return EXIT_FAIL if summary.failed else EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    """``qa-bench config``: every config field, its default and its help."""
    from qa.config import config_fields

    rows = [(name, "none" if default is None else json.dumps(default), text)
            for name, default, text in config_fields()]
    width = max(len(name) + len(default) for name, default, _ in rows) + 3
    section = ""
    for name, default, text in rows:
        if name.split(".")[0] != section:
            section = name.split(".")[0]
            print(f"[{section}]")
        print(f"  {name} = {default}".ljust(width + 4) + f"  {text}")
    print("Set a field with --set SECTION.KEY=VALUE or in a profile's [defaults.SECTION] table.")
    return EXIT_OK


def _print_summary(summary) -> None:
    from qa.metricspec import specs

    counts: dict[str, int] = {}
    for verdict in summary.verdicts:
        counts[verdict.status] = counts.get(verdict.status, 0) + 1
    for result in summary.results:
        shown = [(spec, spec.extract(result)) for spec in specs(role="summary")]
        metrics = ", ".join(f"{spec.name} {value:.2f}" for spec, value in shown
                            if value is not None and not spec.hardware_bound)
        speed = "".join(f", {value:.1f} {spec.header}" for spec, value in shown
                        if value and spec.hardware_bound)
        cause = f" ({result.failure['stage']}: {result.failure['cause']})" \
            if result.failure else ""
        print(f"{result.entry_id}: {result.status}{cause} {metrics}{speed}")
    gates = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    print(f"gates: {gates}")
    for note in summary.notes:
        print(f"note: {note}")
    print(f"report: {summary.report_path}")


def cmd_report(args: argparse.Namespace) -> int:
    """``qa-bench report DIR``: re-render from the files in the run folder."""
    from qa.report import render_run_dir

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise QABenchError(f"{run_dir}: no such run folder")
    render_run_dir(run_dir, baselines_root=args.baselines, step_summary=False)
    print(f"report: {run_dir / 'report.md'}")
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    """``qa-bench baseline RUN_DIR...``: one baseline per entry from every run given."""
    from qa.baselines import update_baseline
    from qa.results import load_run_dir

    results = [r for folder in args.run_dirs for r in load_run_dir(folder)]
    timed = ([r for folder in args.timings_from for r in load_run_dir(folder)]
             if args.timings_from else None)
    written = update_baseline(Path(args.baselines), results, timing_results=timed)
    if not written:
        raise QABenchError("no successful result in the runs given: no baseline written")
    for path in written:
        print(f"baseline written: {path}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """``qa-bench compare A B``: exit 1 on a regression, 2 when the runs are not comparable."""
    from qa.compare import compare_runs
    from qa.results import load_run_dir

    table, regressions = compare_runs(load_run_dir(args.a), load_run_dir(args.b),
                                      force=args.force, a_label=str(args.a), b_label=str(args.b))
    print(table)
    return EXIT_FAIL if regressions else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``qa-bench evaluate DATA PREDICTIONS``: the official scripts' JSON on stdout."""
    from qa.metrics import evaluate_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_files(args.data_json, args.predictions_json, version_2=args.version_2)
    for warning in caught:  # missing predictions, what only training checks: one line each
        print(f"qa-bench: warning: {warning.message}", file=sys.stderr)
    print(json.dumps(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
