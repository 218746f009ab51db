"""A matrix run: entries × seeds, each result saved the moment it exists, then gates, baselines
(``--update-baselines``, through ``qa.gating.baseline_guard``, judged first) and report.

Shared by the CLI (``qa-bench run``) and the pytest layer, so neither holds logic the other lacks.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from qa import backends
from qa import progress as progress_report
from qa.config.schema import RunConfig, squad_dir_from_env
from qa.errors import QABenchError
from qa.gating import baselines, references
from qa.gating.baseline_guard import guarded_update
from qa.gating.outcome import Outcome, decide
from qa.gating.verdicts import gate
from qa.launchers import LaunchFailed
from qa.reporting import report
from qa.results.metricspec import accuracy_specs, is_number
from qa.results.store import RunResult, history_beside, read_history, save_result
from qa.run import profiles, sharding, stopping
from qa.run.manifest import (
    assigned,
    build_manifest,
    missing,
    read_manifest,
    skipped_entries,
    write_manifest,
)
from qa.run.pipeline import EntryTimeout, failed_result, run_entry
from qa.run.preflight import (
    PodCheck,
    check_baselines,
    check_data_files,
    check_entry_timeout,
    check_fresh,
    check_pod_rules,
    check_writable,
    replica_counts,
    result_id,
    seed_list,
    skip_reasons,
    split_names,
)
from qa.run.profiles import Entry

log = logging.getLogger("qa")



@dataclass
class RunOptions:
    """How a matrix run behaves (from CLI or pytest options)."""

    out_dir: Path
    baselines_root: Path = baselines.ROOT
    references: Path = baselines.REFERENCES
    seeds: list[int] = field(default_factory=lambda: [42])
    repeat: int = 1
    update_baselines: bool = False
    # write even from an unfit run (``qa.gating.baseline_guard``)
    force_update_baselines: bool = False
    entry_timeout: float | None = None
    progress: bool = True  # counts may be shown (False: ``--no-progress``, lines only)
    # What the run says while it works (``qa.progress``): quiet unless a front end sets one.
    reporter: progress_report.Reporter = field(default_factory=progress_report.Reporter)
    cache_dir: Path | None = None
    history: Path | None = None  # the JSON-lines history (default: beside the run folder)

    @property
    def history_path(self) -> Path:
        """Where results are appended and the trend is read from."""
        return Path(self.history) if self.history else history_beside(self.out_dir)


@dataclass
class RunSummary:
    """What a matrix run produced."""

    results: list[RunResult]
    verdicts: list[Any]
    report_path: Path | None
    incomplete: bool = False
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # entry id -> why it could not run

    @property
    def outcome(self) -> Outcome:
        """The exit code and its reason (``qa.gating.outcome``): 0 only where something was
        judged."""
        return decide(self.results, self.verdicts, skipped=list(self.skipped))


@dataclass
class RunPlan:
    """A prepared run: the profile, its entries (this shard's) and how to run them."""

    profile: profiles.Profile
    entries: list[Entry]
    options: RunOptions
    manifest: dict[str, Any]  # what this run folder was asked to run (``qa.run.manifest``)
    listing: str | None = None  # ``--list``: the entries and the shard balance, nothing to run
    skipped: dict[str, str] = field(default_factory=dict)  # entry id -> why it cannot run here
    # (``entries`` holds every entry of this shard, skipped ones included)
    pod_checks: list[PodCheck] | None = None  # ``--preflight``: the static rules' verdicts


def prepare_run(values: dict[str, Any], home: Path, out_prefix: str = "",
                reporter: progress_report.Reporter | None = None) -> RunPlan:
    """The one run set-up of both front ends: options (``qa.frontends.options``) → entries and
    RunOptions.

    Every check that can fail on bad input runs here, before anything trains: profile and
    names, ``--set`` overrides, seeds, ``--repeat``, ``--replicas``, ``--entry-timeout``, the
    SQuAD folder, every baseline file, and whether the run folder can be written.

    Args:
        values: ``qa.frontends.options.read_run_options`` output.
        home: where the default ``baselines/`` and ``reports/`` are (the working folder for the
            CLI, the rootdir for pytest, so pytest behaves the same from any folder).
        out_prefix: prefix of the default run folder's name (``pytest-`` under pytest).
        reporter: what the run shows while it works (default: ``qa.progress.for_stream`` on
            stderr: live on a terminal, lines in a log; lines only with ``--no-progress``).

    Raises:
        QABenchError: any bad option or input, as one line.
    """
    # The options first (cheap), then the profile and every entry's config
    # (``qa.config.validation``,
    # inside ``profiles.expand``), then the files: all before anything is written or downloaded.
    repeat = 1 if values.get("repeat") is None else values["repeat"]
    if repeat < 1:
        raise QABenchError("--repeat must be at least 1")
    check_entry_timeout(values.get("entry_timeout"))
    sets = list(values.get("set") or [])
    # torchrun's multi-node options are config fields, so a profile can hold them too.
    for option, field_name in (("nnodes", "nodes"), ("node_rank", "node_rank"),
                               ("rdzv_endpoint", "rdzv_endpoint")):
        if values.get(option) is not None:
            sets.append(f"torch.{field_name}={values[option]}")
    profile = profiles.load_profile(values["profile"])
    profile = profiles.select(profile, values.get("backend"), split_names(values.get("models")),
                              split_names(values.get("pods")),
                              split_names(values.get("datasets")))
    squad_dir = squad_dir_from_env(values.get("squad_dir"))
    entries = []
    for replicas in replica_counts(values.get("replicas")):
        extra = [] if replicas is None else [f"torch.replicas={replicas}"]
        entries += profiles.expand(profile, squad_dir, [*sets, *extra])
    for folder in {e.config.data.squad_dir for e in entries} - {None, ""}:
        if not Path(folder).is_dir():
            raise QABenchError(f"--squad-dir {folder}: no such folder")
    check_data_files(entries)
    seeds = seed_list(values.get("seeds"), profile.seeds, sets)
    shard_index, shard_count = (sharding.parse_shard(values["shard"]) if values.get("shard")
                                else (None, 1))
    shards = sharding.plan_shards(entries, shard_count, seeds=len(seeds))
    if shard_index is not None:
        entries = [a.entry for a in shards.shard(shard_index)]
    listing = sharding.format_listing(shards, shard_index) if values.get("list") else None
    root = Path(values["baselines"]) if values.get("baselines") else home / baselines.ROOT
    check_baselines(entries, root)
    if values.get("preflight"):  # nothing is written or imported beyond the configs
        return RunPlan(profile, entries, RunOptions(out_dir=Path(values.get("out") or ".")), {},
                       listing, pod_checks=check_pod_rules(entries))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(values.get("out") or home / "reports" / f"{out_prefix}{profile.name}-{stamp}")
    if listing is None:
        check_fresh(out)
    check_writable(out)
    progress = not values.get("no_progress")
    if reporter is None:
        reporter = progress_report.for_stream(bars=progress)
    # datasets' own bars only where a terminal redraws them (a log would get their \r).
    _quiet_libraries(reporter.bars and progress)
    options = RunOptions(out_dir=out, baselines_root=root,
                         references=baselines.references_path(root),
                         seeds=seeds, repeat=repeat,
                         update_baselines=bool(values.get("update_baselines")
                                               or values.get("force_update_baselines")),
                         force_update_baselines=bool(values.get("force_update_baselines")),
                         entry_timeout=values.get("entry_timeout"), progress=progress,
                         reporter=reporter,
                         history=Path(values["history"]) if values.get("history") else None)
    skipped = {} if listing is not None else skip_reasons(entries)
    manifest = build_manifest(profile.name, shards, shard_index, seeds)
    manifest["skipped"] = {result_id(e): why for e in entries
                           if (why := skipped.get(e.id)) is not None}
    return RunPlan(profile, entries, options, manifest, listing, skipped)


def start_run(plan: RunPlan) -> None:
    """Write the run folder's manifest before the first entry runs (``qa-bench merge`` and the
    report name the entries that never delivered a result)."""
    write_manifest(plan.options.out_dir, plan.manifest)


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


#: How soon the alarm tries again when it went off inside an import.
IMPORT_GRACE_S = 0.05


def _importing(frame: Any) -> bool:
    """Whether ``frame`` (where the alarm interrupted) is inside an ``import``."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise EntryTimeout inside the block after ``seconds`` (main thread, POSIX).

    Not inside an import: a module whose import the exception cut short stays half-initialised in
    ``sys.modules`` (``partially initialized module 'datasets'``, a transformers model class that
    "could not be imported", or a crash in a half-loaded extension) for every later entry of the
    run. An alarm that finds an import running waits for it to finish (``IMPORT_GRACE_S`` steps).
    """
    if not seconds:
        yield
        return

    def _expired(signum: int, frame: Any) -> None:
        if _importing(frame):  # never cut an import short: try again just after it
            signal.setitimer(signal.ITIMER_REAL, IMPORT_GRACE_S)
            return
        raise EntryTimeout(f"entry exceeded --entry-timeout {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_one(config: RunConfig, options: RunOptions) -> RunResult:
    """One entry for one seed, bounded by the entry timeout, launched as its backend says."""
    try:
        with time_limit(options.entry_timeout):
            return backends.get(config.hardware.backend).launch(config, options, run_entry)
    except EntryTimeout as exc:
        return failed_result(config, "timeout", "entry", str(exc))
    except LaunchFailed as exc:
        return failed_result(config, "failed", exc.stage, str(exc))


def aggregate_seeds(results: list[RunResult]) -> RunResult:
    """Merge one entry's per-seed results: accuracy = mean over seeds, per-seed values kept.

    Timings come from the first seed's run (the seeds change the weights, not the work).
    """
    first = results[0]
    ok = [r for r in results if r.status == "ok"]
    if len(results) == 1 or not ok:
        return first
    merged = replace(ok[0], seeds=[s for r in ok for s in r.seeds])
    merged.metrics = dict(ok[0].metrics)
    # Every score of qa.task.metrics.compute_squad (the gated EM/F1 and v2's HasAns_/NoAns_ ones);
    # question counts ("total") are the same in every seed.
    scores = [k for k, v in ok[0].metrics.items() if is_number(v) and not k.endswith("total")]
    for key in scores:
        values = [r.metrics[key] for r in ok if key in r.metrics]
        if values:
            merged.metrics[key] = statistics.fmean(values)
            if len(values) > 1:
                merged.metrics[f"{key}_std"] = statistics.stdev(values)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        merged.status, merged.failure = bad[0].status, bad[0].failure
    return merged


def run_entries(entries: list[Entry], options: RunOptions,
                skipped: dict[str, str] | None = None) -> RunSummary:
    """Run every entry (× seeds × repeats), save results as they come, gate, and report.

    Ctrl-C (or SIGTERM/SIGHUP inside ``qa.run.stopping.signals_as_interrupts``) stops the run and
    writes a partial report marked incomplete, then re-raises. ``skipped`` (entry id -> why,
    from ``RunPlan.skipped``) is named in the summary and the report.
    """
    results: list[RunResult] = []
    skipped = dict(skipped or {})
    notes: list[str] = []
    candidates: dict[str, list[RunResult]] = {}
    to_run = [e for e in entries if e.id not in skipped]
    start_progress(to_run, options, len(entries) - len(to_run))
    try:
        for entry in to_run:
            results.append(run_entry_all_seeds(entry, options, notes, candidates))
    except KeyboardInterrupt as exc:
        options.reporter.end_matrix()
        notes.append(f"{stopping.describe(exc)}: entries after the last one listed did not "
                     "run")
        _finish(results, options, notes, True, candidates, skipped)
        raise
    except QABenchError as exc:
        options.reporter.end_matrix()
        if results:  # keep what was measured before the bad entry
            notes.append(f"stopped on bad input: {exc}")
            _finish(results, options, notes, True, candidates, skipped)
        raise
    options.reporter.end_matrix()
    return _finish(results, options, notes, False, candidates, skipped)


def progress_runs(entries: list[Entry], options: RunOptions) -> list[tuple[Any, str, float]]:
    """The runs of a matrix as ``qa.progress`` counts them: (key, label, estimated seconds),
    one per entry and seed, in the order they run; the estimate is the cost model's
    (``qa.run.sharding.estimate_cost``) times ``--repeat``."""
    return [((entry.id, seed), _run_label(entry, seed),
             sharding.estimate_cost(entry.config, 1) * options.repeat)
            for entry in entries for seed in options.seeds]


def start_progress(entries: list[Entry], options: RunOptions, skipped: int = 0) -> None:
    """Tell the run's reporter the plan: N runs, their estimates (the ETA's start)."""
    options.reporter.start_matrix(progress_runs(entries, options), skipped)


def _run_label(entry: Entry, seed: int) -> str:
    return f"{entry.id} seed {seed}"


def run_entry_all_seeds(entry: Entry, options: RunOptions, notes: list[str],
                        candidates: dict[str, list[RunResult]]) -> RunResult:
    """One entry over every seed: merged and saved at once.

    The one per-entry flow of both front ends (``run_entries`` and the pytest session). With
    ``--update-baselines`` the per-seed results are kept in ``candidates``: the baselines are
    written once the run is over and judged (``update_baselines``), never before.
    """
    log.info("entry %s", entry.id)
    per_seed = _run_entry_seeds(entry, options, notes)
    result = aggregate_seeds(per_seed)
    save_result(result, options.out_dir, options.history_path)
    if options.update_baselines:
        candidates[result.entry_id] = per_seed
    return result


def update_baselines(results: list[RunResult], candidates: dict[str, list[RunResult]],
                     options: RunOptions, notes: list[str], incomplete: bool) -> None:
    """``--update-baselines`` at the end of a run, through ``qa.gating.baseline_guard``.

    Judged against the baselines as they were (what the run's gates saw): a run that failed a
    gate or an entry, or stopped early, writes nothing unless ``--force-update-baselines``.
    The notes say what was written, refused or replaced, with the diff.
    """
    if not options.update_baselines:
        return
    pooled = [r for result in results for r in candidates.get(result.entry_id, [result])]
    outcome = guarded_update(options.baselines_root, pooled, judged=results,
                             force=options.force_update_baselines,
                             force_flag="--force-update-baselines", incomplete=incomplete)
    notes.extend(outcome.lines)


def _run_entry_seeds(entry: Entry, options: RunOptions, notes: list[str]) -> list[RunResult]:
    per_seed = []
    reporter = options.reporter
    for seed in options.seeds:
        config = replace(entry.config, train=replace(entry.config.train, seed=seed))
        reporter.start_run((entry.id, seed), _run_label(entry, seed),
                           sharding.estimate_cost(config, 1) * options.repeat)
        with progress_report.use(reporter):
            result = run_one(config, options)
            if options.repeat > 1 and result.status == "ok":
                notes.append(_check_repeat(entry, config, options, result))
        reporter.end_run(result.status)
        per_seed.append(result)
    return per_seed


def _check_repeat(entry: Entry, config: RunConfig, options: RunOptions,
                  first: RunResult) -> str:
    """Run the entry again and say whether EM/F1 are identical (reproducibility check)."""
    repeats = [run_one(config, options) for _ in range(options.repeat - 1)]
    accuracy = accuracy_specs()
    same = all(r.status == "ok" and all(s.extract(r) == s.extract(first) for s in accuracy)
               for r in repeats)
    values = ", ".join(" / ".join(f"{s.header} {_or_nan(s.extract(r)):.4f}" for s in accuracy)
                       for r in [first, *repeats])
    first.timings["repeat"] = {"runs": options.repeat, "identical": same}
    verdict = "identical" if same else "DIFFERENT"
    return f"repeat check {entry.id} seed {config.train.seed}: {verdict} over " \
           f"{options.repeat} runs ({values})"


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _finish(results: list[RunResult], options: RunOptions, notes: list[str],
            incomplete: bool, candidates: dict[str, list[RunResult]],
            skipped: dict[str, str] | None = None) -> RunSummary:
    verdicts: list[Any] = []
    for result in results:
        verdicts.extend(gate(result, baselines.load_baseline(
            options.baselines_root, result.key)))
    update_baselines(results, candidates, options, notes, incomplete)
    path = write_run_report(results, verdicts, options, notes, incomplete, skipped)
    return RunSummary(results, verdicts, path, incomplete, notes, dict(skipped or {}))


def write_run_report(results: list[RunResult], verdicts: list[Any], options: RunOptions,
                     notes: list[str], incomplete: bool,
                     skipped: dict[str, str] | None = None) -> Path:
    """The run folder's report.md with the published references and the history's trend.

    Entries the folder's manifest assigned to it but no result delivered are named as missing.
    """
    Path(options.out_dir).mkdir(parents=True, exist_ok=True)
    emulated = [r.entry_id for r in results if (r.hardware or {}).get("emulated")]
    if emulated:
        notes = [*notes, f"emulated hardware: {', '.join(emulated)} ran on an emulation on the "
                         "CPU: not hardware numbers; filed under their own key, so they never "
                         "gate real hardware or become its baseline"]
    published = references.load_references(options.references) \
        if Path(options.references).exists() else []
    history = read_history(options.history_path)
    manifest = read_manifest(options.out_dir)
    absent = missing(assigned(manifest), results, skipped_entries(manifest)) if manifest else []
    return report.write_report(options.out_dir, results, verdicts, references=published,
                               history=history, incomplete=incomplete, notes=notes,
                               missing=absent, baselines_root=options.baselines_root,
                               skipped=skipped)
