"""``qa-bench``: run | config | report | merge | baseline | compare | evaluate.

Exit codes (``qa.gating.outcome``): 0 something was judged and every gate held, 1 a gate failed or
an
entry did not finish (or compare found a regression), 2 bad usage or input (one line on stderr,
never a traceback), 5 nothing was judged (every entry skipped, no baseline that applies, not
comparable, no shared entry to compare), 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM,
129 SIGHUP) after writing the partial report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from qa.errors import QABenchError
from qa.frontends.options import (
    add_baselines_option,
    add_history_option,
    add_run_options,
    baselines_root,
    read_run_options,
)
from qa.gating.outcome import EXIT_FAIL, EXIT_NOTHING_JUDGED, EXIT_OK, EXIT_USAGE, Outcome
from qa.run import stopping

EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE: the reader of stdout closed it


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

    conf = sub.add_parser("config", help="list every config field (for --set and profiles) "
                          "with its default, help and allowed values")
    conf.add_argument("--profile", metavar="NAME|TOML",
                      help="also show what each entry of this profile sets (with --set)")
    conf.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="an override, validated as qa-bench run would")

    rep = sub.add_parser("report", help="re-judge a run folder against the baselines and "
                         "re-render its report (exit 1 on a failed gate or a missing entry)")
    rep.add_argument("run_dir")
    add_baselines_option(rep.add_argument)  # none here and none given: the stored verdicts

    merge = sub.add_parser("merge", help="merge shard run folders into one report, one verdict "
                           "table and one exit code")
    merge.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="shard run folders")
    merge.add_argument("--out", required=True, help="the merged run folder to write")
    add_baselines_option(merge.add_argument)
    merge.add_argument("--force", action="store_true",
                       help="merge runs of different profiles, matrices, commits or versions")
    merge.add_argument("--profile", metavar="NAME|TOML",
                       help="the profile whose whole matrix the folders must cover: an entry "
                            "no folder planned or delivered is missing (e.g. every shard job "
                            "of one pod died); default: the union of the folders' plans")
    add_history_option(merge.add_argument)

    base = sub.add_parser("baseline", help="write baselines from finished runs (accuracy pooled "
                          "over all of them, timings per hardware fingerprint)")
    base.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="run folders or RunResult files, e.g. one per seed × thread count")
    add_baselines_option(base.add_argument)
    base.add_argument("--timings-from", nargs="+", metavar="RUN_DIR",
                      help="take the timing sections from these runs only (e.g. separate runs "
                           "on a quiet machine; RUN_DIRs then give accuracy only)")
    base.add_argument("--accuracy-tolerance", type=_points, metavar="POINTS",
                      help="the accuracy metrics' tolerance floor in points (the gate is mean "
                           "- max(floor, 3 sigma, mean - worst run)); default: the one already "
                           "in the baseline file, else the metric's default (1.0)")
    base.add_argument("--pool", action="store_true",
                      help="add these runs' accuracy to the runs the existing baseline was "
                           "measured from (its n, mean, std, min, max) instead of replacing "
                           "them: e.g. runs of the unchanged tree on another CPU model")
    base.add_argument("--force", action="store_true",
                      help="write even where a result failed, faulted, or fails its gates "
                           "against the current baseline (failed and faulted results are still "
                           "never pooled; the previous file is kept in *.previous.jsonl)")

    cmp_ = sub.add_parser("compare", help="compare two runs (e.g. SDK before/after)")
    cmp_.add_argument("a", help="run folder or RunResult JSON (before)")
    cmp_.add_argument("b", help="run folder or RunResult JSON (after)")
    cmp_.add_argument("--force", action="store_true",
                      help="compare even when datasets, configs or hardware differ (emulated "
                           "against real included)")

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
        code = {"run": cmd_run, "config": cmd_config, "report": cmd_report,
                "merge": cmd_merge, "baseline": cmd_baseline, "compare": cmd_compare,
                "evaluate": cmd_evaluate}[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (``qa-bench run --list | head -1``): end quietly, as a process
        # killed by SIGPIPE would; stdout goes to devnull so the exit flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except QABenchError as exc:
        print(f"qa-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        print(f"qa-bench: {stopping.describe(exc)}", file=sys.stderr)
        return stopping.exit_code(exc)


def cmd_run(args: argparse.Namespace) -> int:
    """``qa-bench run``."""
    from qa.run.runner import prepare_run, run_entries, start_run

    with stopping.signals_as_interrupts():
        plan = prepare_run(read_run_options(lambda name: getattr(args, name)), Path.cwd())
        if plan.listing is not None:
            print(plan.listing)
            return EXIT_OK
        start_run(plan)
        if not plan.entries:
            print(f"shard {args.qa_shard}: no entries (more shards than entries)")
        summary = run_entries(plan.entries, plan.options, plan.skipped)
    _print_summary(summary)
    return _exit_with(summary.outcome)


def _exit_with(outcome: Outcome) -> int:
    """Print the run's outcome as its last line and return its exit code."""
    print(f"{'ok' if outcome.code == EXIT_OK else 'NOT OK'}: {outcome.reason} "
          f"(exit {outcome.code})")
    return outcome.code


def cmd_config(args: argparse.Namespace) -> int:
    """``qa-bench config``: every config field, its default, help and allowed values; with
    ``--profile``, what each of the profile's entries sets."""
    from qa.config.schema import RunConfig, config_fields
    from qa.config.validation import allowed, declared_fields

    rules = {name: allowed(kind, optional, meta) for name, kind, optional, meta
             in declared_fields(RunConfig)}
    rows = [(name, "none" if default is None else json.dumps(default), text)
            for name, default, text in config_fields()]
    width = max(len(name) + len(default) for name, default, _ in rows) + 3
    section = ""
    for name, default, text in rows:
        if name.split(".")[0] != section:
            section = name.split(".")[0]
            print(f"[{section}]")
        print(f"  {name} = {default}".ljust(width + 4) + f"  {text} [{rules[name]}]")
    print("Set a field with --set SECTION.KEY=VALUE or in a profile's [defaults.SECTION] table.")
    if args.profile or args.set:
        _print_resolved(args.profile or "smoke", args.set)
    return EXIT_OK


def _print_resolved(name: str, sets: list[str]) -> None:
    """Each entry of a profile: the fields it sets away from the defaults."""
    from qa.config.schema import RunConfig
    from qa.run import profiles

    defaults = RunConfig().to_dict()
    for entry in profiles.expand(profiles.load_profile(name), overrides=sets):
        print(f"{entry.id} (profile {name}):")
        for section, values in entry.config.to_dict().items():
            for key, value in values.items():
                if value != defaults[section][key]:
                    shown = "none" if value is None else json.dumps(value)
                    print(f"  {section}.{key} = {shown}")


def _print_summary(summary) -> None:
    from qa.results.metricspec import specs

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
    _print_closing(summary.skipped, summary.notes, summary.report_path)


def cmd_report(args: argparse.Namespace) -> int:
    """``qa-bench report DIR``: re-judge against the baselines, re-render, name missing entries."""
    from qa.reporting.merge import judge_run_dir

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise QABenchError(f"{run_dir}: no such run folder")
    root: Path | None = baselines_root(args.qa_baselines)
    if not root.is_dir():
        if args.qa_baselines:
            raise QABenchError(f"--baselines {root}: no such folder")
        root = None  # outside a checkout: show the verdicts stored in the folder
    judged = judge_run_dir(run_dir, root)
    return _print_judged(judged)


def cmd_merge(args: argparse.Namespace) -> int:
    """``qa-bench merge RUN_DIR... --out DIR``: one report and one exit code for all shards."""
    from qa.reporting.merge import merge_runs
    from qa.run.preflight import check_fresh, check_writable

    check_fresh(Path(args.out))
    check_writable(Path(args.out))
    judged = merge_runs(args.run_dirs, args.out, baselines_root=baselines_root(args.qa_baselines),
                        history=args.qa_history, force=args.force, profile=args.profile)
    print(f"merged {len(judged.results)} results from {len(args.run_dirs)} run folders; "
          f"{judged.appended} appended to the history")
    return _print_judged(judged)


def _print_judged(judged) -> int:
    from qa.reporting.report import summary_counts

    counts = summary_counts(judged.verdicts)
    bad = sum(r.status != "ok" for r in judged.results)
    print(f"{len(judged.results)} entries ({bad} did not finish) · gates: {counts['pass']} pass, "
          f"{counts['fail']} fail, {counts['improved']} improved, {counts['missing']} missing "
          f"baseline · {len(judged.missing)} entries missing")
    for entry in judged.missing:
        print(f"missing: {entry} (expected, never delivered a result)")
    _print_closing(judged.skipped, judged.notes, judged.report_path)
    return _exit_with(judged.outcome)


def _print_closing(skipped: dict[str, str], notes: list[str], report_path: Path | None) -> None:
    """The lines every judged command ends with: skips with reasons, notes, the report."""
    for entry, why in skipped.items():
        print(f"skipped: {entry} ({why})")
    for note in notes:
        print(f"note: {note}")
    print(f"report: {report_path}")


def _points(text: str) -> float:
    """``--accuracy-tolerance``: a finite number of points >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of points >= 0, got {text!r}")
    return value


def cmd_baseline(args: argparse.Namespace) -> int:
    """``qa-bench baseline RUN_DIR...``: one baseline per entry from every run given.

    Through ``qa.gating.baseline_guard``: a failed, faulted or regressed result (judged against the
    current baseline) refuses the whole command (exit 2, nothing written) unless ``--force``.
    """
    from qa.gating.baseline_guard import guarded_update
    from qa.results.store import load_run_dir

    sources: dict[int, str] = {}

    def load(folders: list[str]) -> list:
        loaded = []
        for folder in folders:
            for result in load_run_dir(folder):
                sources[id(result)] = folder
                loaded.append(result)
        return loaded

    results = load(args.run_dirs)
    timed = load(args.timings_from) if args.timings_from else None
    outcome = guarded_update(baselines_root(args.qa_baselines), results, force=args.force,
                             force_flag="--force", sources=sources,
                             accuracy_tolerance=args.accuracy_tolerance, timing_results=timed,
                             pool=args.pool)
    if not outcome.written:
        raise QABenchError(" | ".join(outcome.refused) or "no result: no baseline written")
    for line in outcome.lines:
        print(line)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """``qa-bench compare A B``: exit 1 on a regression, 2 when the runs are not comparable."""
    from qa.reporting.compare import compare_runs, nothing_shared
    from qa.results.store import load_run_dir

    a, b = load_run_dir(args.a), load_run_dir(args.b)
    why = nothing_shared(a, b, force=args.force)
    if why is not None:
        print(f"qa-bench: nothing was compared: {why} (exit {EXIT_NOTHING_JUDGED})",
              file=sys.stderr)
        return EXIT_NOTHING_JUDGED
    table, regressions = compare_runs(a, b, force=args.force, a_label=str(args.a),
                                      b_label=str(args.b))
    print(table)
    return EXIT_FAIL if regressions else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``qa-bench evaluate DATA PREDICTIONS``: the official scripts' JSON on stdout."""
    from qa.task.metrics import evaluate_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_files(args.data_json, args.predictions_json, version_2=args.version_2)
    for warning in caught:  # missing predictions, what only training checks: one line each
        print(f"qa-bench: warning: {warning.message}", file=sys.stderr)
    print(json.dumps(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
