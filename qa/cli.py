"""``qa-bench``: run | report | compare | evaluate.

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

    rep = sub.add_parser("report", help="re-render a run folder's report")
    rep.add_argument("run_dir")
    rep.add_argument("--baselines", help="re-judge against this baselines folder")

    base = sub.add_parser("baseline", help="write baselines from finished runs (accuracy pooled "
                          "over all of them, timings per hardware fingerprint)")
    base.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="run folders or RunResult files, e.g. one per seed × thread count")
    base.add_argument("--baselines", default="baselines", help="baselines folder")

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
        return {"run": cmd_run, "report": cmd_report, "baseline": cmd_baseline,
                "compare": cmd_compare, "evaluate": cmd_evaluate}[args.command](args)
    except QABenchError as exc:
        print(f"qa-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("qa-bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def cmd_run(args: argparse.Namespace) -> int:
    """``qa-bench run``."""
    from qa import profiles
    from qa.config import squad_dir_from_env
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
    for replicas in _replica_counts(args.replicas):
        extra = [] if replicas is None else [f"hardware.replicas={replicas}"]
        entries += profiles.expand(profile, squad_dir_from_env(args.squad_dir),
                                   [*args.set, *extra])
    _check_squad_dir(entries)
    seeds = seed_list(args.seeds, profile.seeds, args.set)
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
                         entry_timeout=args.entry_timeout, progress=not args.no_progress)
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
    written = update_baseline(Path(args.baselines), results)
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
