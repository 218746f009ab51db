"""``qa-bench``: run | config | report | merge | plan | baseline | compare | evaluate | publish.

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
import math
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
                          "with its default, help and allowed values; with --profile, every "
                          "entry's resolved values and where each came from")
    conf.add_argument("--profile", metavar="NAME|TOML",
                      help="show each entry of this profile: every field's resolved value and "
                           "its origin (default, profile defaults, model or dataset table, "
                           "matrix, slot, --set)")
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

    plan = sub.add_parser("plan", help="the scheduler jobs of a sharded matrix: shards and "
                          "each one's time limit from the cost model (for CI and Slurm)")
    plan.add_argument("--profile", default="nightly", metavar="NAME|TOML")
    plan.add_argument("--seeds", type=int, metavar="N", help="seeds per entry, as for run")
    plan.add_argument("--pods", metavar="P,Q", help="only these pods, as for run")
    plan.add_argument("--backend", help="as for run")
    plan.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="an override, as for run (it can change the cost)")
    plan.add_argument("--per-pod", action="store_true",
                      help="one group of shards per pod (one runner label per pod size)")
    plan.add_argument("--max-hours", type=float, default=24.0,
                      help="the longest time limit a job may get (default 24)")
    plan.add_argument("--shards", type=int, default=1, metavar="N",
                      help="at least this many shards per group (default 1)")
    plan.add_argument("--margin", type=float, default=1.5,
                      help="timeout = estimate x margin + overhead (default 1.5)")
    plan.add_argument("--overhead-min", type=float, default=30.0,
                      help="minutes added to each job for install, data and features "
                           "(default 30)")
    shape = plan.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true",
                       help="one line of JSON: a GitHub Actions matrix ({\"include\": [...]})")
    shape.add_argument("--slurm", action="store_true",
                       help="one line 'N HH:MM:SS': array size and --time for sbatch")

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

    pub = sub.add_parser("publish", help="write the history as a static website (no server; "
                         "e.g. for GitHub Pages): the latest verdicts, failing first, and every "
                         "entry × metric over the runs with its baseline band and change points")
    pub.add_argument("histories", nargs="+", metavar="HISTORY",
                     help="history.jsonl files (e.g. the nightly's and a merged run's)")
    pub.add_argument("--out", required=True, metavar="DIR",
                     help="the site folder: new, empty, or a site this command wrote before "
                          "(replaced whole)")
    add_baselines_option(pub.add_argument)

    ev = sub.add_parser("evaluate", help="official SQuAD evaluation of a predictions file "
                        "(a drop-in for evaluate-v1.1.py / evaluate-v2.0.py)")
    ev.add_argument("data_json")
    ev.add_argument("predictions_json")
    ev.add_argument("--version-2", action="store_true", help="SQuAD v2.0 scoring")
    ev.add_argument("--out-file", "-o", metavar="EVAL_JSON",
                    help="write the metrics JSON to this file instead of stdout")
    ev.add_argument("--na-prob-file", "-n", metavar="NA_PROB_JSON",
                    help="v2.0: question id -> the model's probability (or score) of no "
                         "answer; adds best_exact/best_f1 and their thresholds")
    ev.add_argument("--na-prob-thresh", "-t", type=float, metavar="T",
                    help="v2.0: read a prediction as no answer when its no-answer probability "
                         "exceeds T (default 1.0)")
    ev.add_argument("--out-image-dir", "-p", metavar="DIR",
                    help="v2.0, with --na-prob-file: save precision-recall curves (pr_exact, "
                         "pr_f1, pr_oracle) and no-answer histograms there, add pr_*_ap")
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
                "merge": cmd_merge, "plan": cmd_plan, "baseline": cmd_baseline,
                "compare": cmd_compare, "evaluate": cmd_evaluate,
                "publish": cmd_publish}[args.command](args)
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
    from qa.run.preflight import format_pod_checks, pod_checks_outcome
    from qa.run.runner import prepare_run, run_entries, start_run

    with stopping.signals_as_interrupts():
        plan = prepare_run(read_run_options(lambda name: getattr(args, name)), Path.cwd())
        if plan.listing is not None:
            print(plan.listing)
            if plan.pod_checks is None:
                return EXIT_OK
        if plan.pod_checks is not None:
            print(format_pod_checks(plan.pod_checks))
            return _exit_with(pod_checks_outcome(plan.pod_checks))
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
    ``--profile`` (or ``--set``), each entry of the profile resolved, with each value's origin."""
    if args.profile or args.set:
        _print_resolved(args.profile or "smoke", args.set)
        return EXIT_OK
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
    print("Set a field with --set SECTION.KEY=VALUE or in a profile's [defaults.SECTION] table; "
          "qa-bench config --profile NAME shows what a profile resolves to.")
    return EXIT_OK


def _print_resolved(name: str, sets: list[str]) -> None:
    """Each entry of a profile: every field's resolved value and the layer it came from
    (``qa.run.profiles.expand_with_origins``); validated as ``qa-bench run`` would."""
    from qa.run import profiles

    profile = profiles.load_profile(name)
    resolved = profiles.expand_with_origins(profile, overrides=sets)
    print(f"profile {profile.name} ({profile.path}): {len(resolved)} entries, seeds "
          f"{profile.seeds} (each run sets train.seed to its seed)")
    print("origin: where the value came from, later layers winning: "
          + " < ".join(profiles.ORIGINS))
    for entry, origins in resolved:
        print(f"{entry.id}:")
        rows = [(f"{section}.{key}", "none" if value is None else json.dumps(value))
                for section, values in entry.config.to_dict().items()
                for key, value in values.items()]
        width = max(len(field) + len(value) for field, value in rows) + 5
        for field, value in rows:
            print(f"  {field} = {value}".ljust(width + 2) + f"  {origins.get(field, 'default')}")


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


def cmd_plan(args: argparse.Namespace) -> int:
    """``qa-bench plan``: shards and per-job time limits from the cost model
    (``qa.run.schedule``), for the workflow's matrix and the Slurm array's --time."""
    from qa.run import profiles, schedule
    from qa.run.preflight import seed_list, split_names

    profile = profiles.select(profiles.load_profile(args.profile), args.backend, None,
                              split_names(args.pods), None)
    # Per pod: each group exactly as `qa-bench run --pods POD` selects it.
    groups = {pod: profiles.expand(profiles.select(profiles.load_profile(args.profile),
                                                   args.backend, None, [pod], None),
                                   None, list(args.set))
              for pod in profile.pods} if args.per_pod else {
        "": profiles.expand(profile, None, list(args.set))}
    entries = [e for members in groups.values() for e in members]
    seeds = len(seed_list(args.seeds, profile.seeds, list(args.set)))
    jobs = schedule.plan_jobs(groups, seeds, args.max_hours, args.shards, args.margin,
                              args.overhead_min)
    if args.json:
        print(schedule.to_matrix_json(jobs))
    elif args.slurm:
        print(schedule.slurm_line(jobs))
    else:
        print(f"{profile.name}, {seeds} seed(s), {len(entries)} entries")
        print(schedule.format_table(jobs, args.max_hours, args.margin, args.overhead_min))
    return EXIT_OK


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


def cmd_publish(args: argparse.Namespace) -> int:
    """``qa-bench publish HISTORY... --out DIR``: exit 0 once the site is written (a report, not
    a gate: the nightly's run or merge gives the verdict), 5 when the histories hold no run."""
    from qa.reporting.publish import NothingToPublish, publish

    root = baselines_root(args.qa_baselines)
    if not root.is_dir():
        if args.qa_baselines:
            raise QABenchError(f"--baselines {root}: no such folder")
        root = None  # outside a checkout: the history without baseline bands or verdicts
    try:
        index, views, history = publish(args.histories, args.out, root)
    except NothingToPublish as exc:
        print(f"qa-bench: nothing to publish: {exc} (exit {EXIT_NOTHING_JUDGED})",
              file=sys.stderr)
        return EXIT_NOTHING_JUDGED
    failing = sum(view.state == "fail" for view in views)
    pages = sum(len(view.metrics) for view in views)
    print(f"published {len(views)} series ({failing} failing), {pages} metric pages from "
          f"{len(history.runs)} runs" + ("" if root else "; no baselines folder: nothing gated"))
    if history.unreadable:
        print(f"note: {len(history.unreadable)} unreadable history line(s) skipped, e.g. "
              f"{history.unreadable[0]}")
    print(f"site: {index}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``qa-bench evaluate DATA PREDICTIONS``: the official scripts' JSON, on stdout or in
    ``--out-file`` (v1.1 on one line, v2.0 indented, as each script prints it)."""
    from qa.files import write_text_atomic
    from qa.task.metrics import (
        DEFAULT_NA_PROB_THRESH,
        compute_squad,
        evaluate_v2,
        load_na_probs,
        load_predictions,
        load_squad_json,
    )

    given = [flag for flag, value in (("--na-prob-file", args.na_prob_file),
                                      ("--na-prob-thresh", args.na_prob_thresh),
                                      ("--out-image-dir", args.out_image_dir))
             if value is not None]
    if args.na_prob_thresh is not None and math.isnan(args.na_prob_thresh):
        raise QABenchError("evaluate: --na-prob-thresh must be a number, got NaN")
    if given and not args.version_2:
        raise QABenchError(f"evaluate: {given[0]} is a SQuAD v2.0 option (add --version-2)")
    if args.out_image_dir is not None and args.na_prob_file is None:
        # The official script then draws nothing and says nothing: refuse instead.
        raise QABenchError("evaluate: --out-image-dir needs --na-prob-file (the curves rank "
                           "the questions by their no-answer probabilities)")
    if args.out_image_dir is not None:
        from qa.reporting.no_answer import check_image_dir

        check_image_dir(args.out_image_dir)
    if args.out_file is not None and Path(args.out_file).is_dir():
        raise QABenchError(f"evaluate: --out-file {args.out_file!r} is a folder")
    thresh = DEFAULT_NA_PROB_THRESH if args.na_prob_thresh is None else args.na_prob_thresh
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_squad_json(args.data_json)
        predictions = load_predictions(args.predictions_json)
        na_probs = load_na_probs(args.na_prob_file) if args.na_prob_file is not None else None
        if args.version_2:
            evaluation = evaluate_v2(predictions, data, na_probs=na_probs, na_prob_thresh=thresh,
                                     precision_recall=args.out_image_dir is not None)
            result = evaluation.metrics
        else:
            result = compute_squad(predictions, data)
    for warning in caught:  # missing predictions, what only training checks: one line each
        print(f"qa-bench: warning: {warning.message}", file=sys.stderr)
    if args.out_image_dir is not None:
        from qa.reporting.no_answer import write_no_answer_plots

        curves = {name: (c.precisions, c.recalls) for name, c in evaluation.curves.items()}
        write_no_answer_plots(curves, evaluation.histograms, args.out_image_dir)
    if args.out_file is not None:
        write_text_atomic(args.out_file, json.dumps(result))
    else:
        print(json.dumps(result, indent=2) if args.version_2 else json.dumps(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
