"""``qa-bench``: run | report | merge | baseline | compare | evaluate.

Exit codes: 0 every gate holds, 1 a gate failed or an entry did not finish (or compare found a
regression), 2 bad usage or input (one line on stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from qa.errors import QABenchError

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

    run = sub.add_parser("run", help="run a matrix profile (default: the embedded smoke profile)")
    run.add_argument("--profile", default="smoke", help="profile name or TOML path")
    run.add_argument("--out", help="run folder (default reports/<profile>-<timestamp>)")
    run.add_argument("--backend", help="override the profile's backend")
    run.add_argument("--models", help="comma-separated models to run")
    run.add_argument("--pods", help="comma-separated pods (ipu) or devices (torch)")
    run.add_argument("--datasets", help="comma-separated datasets")
    run.add_argument("--seeds", type=int, help="run N seeds (42, 43, ...) per entry")
    run.add_argument("--repeat", type=int, default=1, help="run each seed N times, check identity")
    run.add_argument("--replicas", help="torch: data-parallel processes under torchrun; a list "
                     "(1,2) runs each count and reports the scaling efficiency")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a config field, e.g. train.learning_rate=0")
    run.add_argument("--update-baselines", action="store_true",
                     help="write baselines/ from this run's results")
    run.add_argument("--baselines", default="baselines", help="baselines folder")
    run.add_argument("--squad-dir", help="folder with SQuAD dev-v1.1.json/dev-v2.0.json "
                     "(default $QA_BENCH_SQUAD_DIR)")
    run.add_argument("--entry-timeout", type=float, help="seconds one entry may take")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_nightly_options(run)

    rep = sub.add_parser("report", help="re-judge a run folder against the baselines and "
                         "re-render its report (exit 1 on a failed gate or a missing entry)")
    rep.add_argument("run_dir")
    rep.add_argument("--baselines", default="baselines",
                     help="baselines folder to re-judge against (default: baselines; when "
                          "it does not exist the verdicts stored in the folder are shown)")

    merge = sub.add_parser("merge", help="merge shard run folders into one report, one verdict "
                           "table and one exit code")
    merge.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="shard run folders")
    merge.add_argument("--out", required=True, help="the merged run folder to write")
    merge.add_argument("--baselines", default="baselines", help="baselines folder")
    merge.add_argument("--force", action="store_true",
                       help="merge runs of different profiles, matrices, commits or versions")
    add_history_option(merge)

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


def add_history_option(parser: argparse.ArgumentParser) -> None:
    """``--history PATH``: where results are appended and the trend is read from."""
    parser.add_argument("--history", metavar="PATH",
                        help="JSON-lines history to append to and plot from (default: "
                             "history.jsonl beside the run folder); e.g. a CI cache path")


def add_nightly_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run spread over hosts: ``--shard K/N``, ``--list``, ``--history``.

    Declared once here so the shared option declaration (issue 12) can take them over whole.
    """
    parser.add_argument("--shard", metavar="K/N",
                        help="run only shard K of N of the matrix (balanced by estimated cost, "
                             "the same partition on every host)")
    parser.add_argument("--list", action="store_true",
                        help="print the entries (of --shard K/N, else all) with their estimated "
                             "cost and the shard balance, then exit without running")
    add_history_option(parser)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False)
                            else logging.WARNING, format="qa-bench: %(message)s")
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        return {"run": cmd_run, "report": cmd_report, "merge": cmd_merge,
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
    from qa import profiles, sharding
    from qa.config import squad_dir_from_env
    from qa.manifest import build_manifest, write_manifest
    from qa.runner import (
        RunOptions,
        check_baselines,
        check_entry_timeout,
        run_entries,
        seed_list,
        split_names,
    )

    profile = profiles.load_profile(args.profile)
    profile = profiles.select(profile, args.backend, split_names(args.models),
                              split_names(args.pods), split_names(args.datasets))
    entries = []
    counts = _replica_counts(args.replicas)
    for replicas in counts:
        extra = [] if replicas is None else [f"hardware.replicas={replicas}"]
        expanded = profiles.expand(profile, squad_dir_from_env(args.squad_dir),
                                   [*args.set, *extra])
        if len(counts) > 1:  # the same entry at several replica counts: distinct ids
            expanded = [replace(e, id=f"{e.id}-x{replicas}") for e in expanded]
        entries += expanded
    _check_squad_dir(entries)
    seeds = seed_list(args.seeds, profile.seeds, args.set)
    shard_index, shard_count = sharding.parse_shard(args.shard) if args.shard else (None, 1)
    plan = sharding.plan_shards(entries, shard_count, seeds=len(seeds))
    if args.list:
        print(sharding.format_listing(plan, shard_index))
        return EXIT_OK
    if shard_index is not None:
        entries = [a.entry for a in plan.shard(shard_index)]
    if args.repeat < 1:
        raise QABenchError("--repeat must be at least 1")
    check_entry_timeout(args.entry_timeout)
    check_baselines(entries, Path(args.baselines))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or Path("reports") / f"{profile.name}-{stamp}")
    _check_writable(out)
    _quiet_libraries(progress=not args.no_progress)
    options = RunOptions(out_dir=out, baselines_root=Path(args.baselines), seeds=seeds,
                         repeat=args.repeat, update_baselines=args.update_baselines,
                         entry_timeout=args.entry_timeout, progress=not args.no_progress,
                         history=Path(args.history) if args.history else None)
    write_manifest(out, build_manifest(profile.name, plan, shard_index, seeds))
    if not entries:
        print(f"shard {args.shard}: no entries (more shards than entries)")
    summary = run_entries(entries, options)
    _print_summary(summary)
    return EXIT_FAIL if summary.failed else EXIT_OK


def _replica_counts(value: str | None) -> list[int | None]:
    """``--replicas 2`` → [2]; ``--replicas 1,2`` → [1, 2]; absent → [None] (the config's)."""
    if value is None:
        return [None]
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise QABenchError(f"--replicas expects a number or a list like 1,2, got {value!r}") \
            from None
    if not counts or any(c < 1 for c in counts):
        raise QABenchError("--replicas must be at least 1")
    return counts


def _check_squad_dir(entries: list) -> None:
    for entry in entries:
        folder = entry.config.data.squad_dir
        if folder and not Path(folder).is_dir():
            raise QABenchError(f"--squad-dir {folder}: no such folder")


def _check_writable(out: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise QABenchError(f"cannot write to output folder {out}: {exc.strerror or exc}") \
            from None


def _quiet_libraries(progress: bool) -> None:
    """Keep the console readable: library chatter off, offline hub calls fail fast."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    if not progress:
        datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)


def _print_summary(summary) -> None:
    counts: dict[str, int] = {}
    for verdict in summary.verdicts:
        counts[verdict.status] = counts.get(verdict.status, 0) + 1
    for result in summary.results:
        metrics = ", ".join(f"{k} {result.metrics[k]:.2f}" for k in ("exact_match", "f1")
                            if k in result.metrics)
        train = result.timings.get("train_samples_per_s")
        speed = f", {train:.1f} train samples/s" if train else ""
        cause = f" ({result.failure['stage']}: {result.failure['cause']})" \
            if result.failure else ""
        print(f"{result.entry_id}: {result.status}{cause} {metrics}{speed}")
    gates = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    print(f"gates: {gates}")
    for note in summary.notes:
        print(f"note: {note}")
    print(f"report: {summary.report_path}")


def cmd_report(args: argparse.Namespace) -> int:
    """``qa-bench report DIR``: re-judge against the baselines, re-render, name missing entries."""
    from qa.merge import judge_run_dir

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise QABenchError(f"{run_dir}: no such run folder")
    root: Path | None = Path(args.baselines)
    if not root.is_dir():
        if args.baselines != "baselines":
            raise QABenchError(f"--baselines {root}: no such folder")
        root = None  # outside a checkout: show the verdicts stored in the folder
    judged = judge_run_dir(run_dir, root)
    return _print_judged(judged)


def cmd_merge(args: argparse.Namespace) -> int:
    """``qa-bench merge RUN_DIR... --out DIR``: one report and one exit code for all shards."""
    from qa.merge import merge_runs

    _check_writable(Path(args.out))
    judged = merge_runs(args.run_dirs, args.out, baselines_root=args.baselines,
                        history=args.history, force=args.force)
    print(f"merged {len(judged.results)} results from {len(args.run_dirs)} run folders; "
          f"{judged.appended} appended to the history")
    return _print_judged(judged)


def _print_judged(judged) -> int:
    from qa.report import summary_counts

    counts = summary_counts(judged.verdicts)
    bad = sum(r.status != "ok" for r in judged.results)
    print(f"{len(judged.results)} entries ({bad} did not finish) · gates: {counts['pass']} pass, "
          f"{counts['fail']} fail, {counts['improved']} improved, {counts['missing']} missing "
          f"baseline · {len(judged.missing)} entries missing")
    for entry in judged.missing:
        print(f"missing: {entry} (expected, never delivered a result)")
    for note in judged.notes:
        print(f"note: {note}")
    print(f"report: {judged.report_path}")
    return EXIT_FAIL if judged.failed else EXIT_OK


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

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = evaluate_files(args.data_json, args.predictions_json, version_2=args.version_2)
    print(json.dumps(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
