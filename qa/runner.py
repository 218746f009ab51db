"""A matrix run: entries × seeds, each result saved the moment it exists, then gates and report.

Shared by the CLI (``qa-bench run``) and the pytest layer, so neither holds logic the other lacks.
"""

from __future__ import annotations

import logging
import signal
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qa import baselines, report
from qa.config import RunConfig, apply_overrides
from qa.errors import QABenchError
from qa.pipeline import EntryTimeout
from qa.profiles import Entry
from qa.results import RunResult, save_result

log = logging.getLogger("qa")

ACCURACY_KEYS = ("exact_match", "f1", "exact", "HasAns_exact", "HasAns_f1", "NoAns_exact",
                 "NoAns_f1")


@dataclass
class RunOptions:
    """How a matrix run behaves (from CLI or pytest options)."""

    out_dir: Path
    baselines_root: Path = Path("baselines")
    references: Path = Path("baselines/reference.toml")
    seeds: list[int] = field(default_factory=lambda: [42])
    repeat: int = 1
    update_baselines: bool = False
    entry_timeout: float | None = None
    progress: bool = True
    cache_dir: Path | None = None
    history: Path | None = None  # the JSON-lines history (default: beside the run folder)

    @property
    def history_path(self) -> Path:
        """Where results are appended and the trend is read from."""
        return Path(self.history) if self.history else Path(self.out_dir).parent / "history.jsonl"


@dataclass
class RunSummary:
    """What a matrix run produced."""

    results: list[RunResult]
    verdicts: list[Any]
    report_path: Path | None
    incomplete: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when any gate failed or any entry did not finish."""
        return any(v.status == "fail" for v in self.verdicts) or any(
            r.status != "ok" for r in self.results)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise EntryTimeout inside the block after ``seconds`` (main thread, POSIX)."""
    if not seconds:
        yield
        return

    def _expired(signum: int, frame: Any) -> None:
        raise EntryTimeout(f"entry exceeded --entry-timeout {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_one(config: RunConfig, options: RunOptions) -> RunResult:
    """One entry for one seed, bounded by the entry timeout."""
    from qa import backends
    from qa.pipeline import result_key

    try:
        with time_limit(options.entry_timeout):
            return backends.get(config.hardware.backend).launch(config, options)
    except EntryTimeout as exc:
        result = RunResult(key=result_key(config), config=config.to_dict(), status="timeout",
                           failure={"stage": "entry", "cause": str(exc)})
        return result


def check_baselines(entries: list[Entry], root: Path) -> None:
    """Load every entry's baseline before running anything: a bad file fails in seconds.

    Raises:
        QABenchError: a baseline file with bad JSON, a missing field, a bad tolerance, ...
    """
    from qa.pipeline import result_key

    for entry in entries:
        baselines.load_baseline(root, result_key(entry.config))


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
    for key in ACCURACY_KEYS:
        values = [r.metrics[key] for r in ok if key in r.metrics]
        if values:
            merged.metrics[key] = statistics.fmean(values)
            if len(values) > 1:
                merged.metrics[f"{key}_std"] = statistics.stdev(values)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        merged.status, merged.failure = bad[0].status, bad[0].failure
    return merged


def run_entries(entries: list[Entry], options: RunOptions) -> RunSummary:
    """Run every entry (× seeds × repeats), save results as they come, gate, and report.

    Ctrl-C stops the run and writes a partial report marked incomplete, then re-raises.
    """
    results: list[RunResult] = []
    notes: list[str] = []
    try:
        for entry in entries:
            results.append(run_entry_all_seeds(entry, options, notes))
    except KeyboardInterrupt:
        notes.append("interrupted by the user (Ctrl-C): entries after the last one listed "
                     "did not run")
        _finish(results, options, notes, incomplete=True)
        raise
    except QABenchError as exc:
        if results:  # keep what was measured before the bad entry
            notes.append(f"stopped on bad input: {exc}")
            _finish(results, options, notes, incomplete=True)
        raise
    return _finish(results, options, notes, incomplete=False)


def run_entry_all_seeds(entry: Entry, options: RunOptions, notes: list[str]) -> RunResult:
    """One entry over every seed: merged, saved at once, and written as baseline if asked.

    The one per-entry flow of both front ends (``run_entries`` and the pytest session).
    """
    log.info("entry %s", entry.id)
    per_seed = _run_entry_seeds(entry, options, notes)
    result = aggregate_seeds(per_seed)
    save_result(result, options.out_dir, options.history_path)
    if options.update_baselines and result.status == "ok":
        paths = baselines.update_baseline(options.baselines_root, per_seed)
        notes.extend(f"baseline written: {p}" for p in paths)
    return result


def split_names(value: str | None) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; None or empty → None (comma-separated CLI/pytest options)."""
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    return names or None


def seed_list(count: int | None, default: list[int], sets: list[str] | None = None) -> list[int]:
    """``--seeds N`` → 42, 43, …; ``--set train.seed=S`` → [S]; neither → the profile's seeds."""
    chosen = [item for item in sets or [] if item.partition("=")[0].strip() == "train.seed"]
    if chosen and count is not None:
        raise QABenchError("use --seeds N or --set train.seed=S, not both")
    if chosen:
        return [apply_overrides(RunConfig(), chosen).train.seed]
    if count is None:
        return list(default)
    if count < 1:
        raise QABenchError("--seeds must be at least 1")
    return [42 + i for i in range(count)]


def check_entry_timeout(seconds: float | None) -> None:
    """``--entry-timeout`` must be positive when given."""
    if seconds is not None and seconds <= 0:
        raise QABenchError("--entry-timeout must be more than 0 seconds")


def _run_entry_seeds(entry: Entry, options: RunOptions, notes: list[str]) -> list[RunResult]:
    per_seed = []
    for seed in options.seeds:
        config = replace(entry.config, train=replace(entry.config.train, seed=seed))
        result = run_one(config, options)
        if options.repeat > 1 and result.status == "ok":
            notes.append(_check_repeat(entry, config, options, result))
        per_seed.append(result)
    return per_seed


def _check_repeat(entry: Entry, config: RunConfig, options: RunOptions,
                  first: RunResult) -> str:
    """Run the entry again and say whether EM/F1 are identical (reproducibility check)."""
    repeats = [run_one(config, options) for _ in range(options.repeat - 1)]
    same = all(r.status == "ok" and r.metrics.get("exact_match") == first.metrics.get(
        "exact_match") and r.metrics.get("f1") == first.metrics.get("f1") for r in repeats)
    values = ", ".join(f"EM {r.metrics.get('exact_match', float('nan')):.4f} / "
                       f"F1 {r.metrics.get('f1', float('nan')):.4f}" for r in [first, *repeats])
    first.timings["repeat"] = {"runs": options.repeat, "identical": same}
    verdict = "identical" if same else "DIFFERENT"
    return f"repeat check {entry.id} seed {config.train.seed}: {verdict} over " \
           f"{options.repeat} runs ({values})"


def _finish(results: list[RunResult], options: RunOptions, notes: list[str],
            incomplete: bool) -> RunSummary:
    verdicts: list[Any] = []
    for result in results:
        verdicts.extend(baselines.compare(result, baselines.load_baseline(
            options.baselines_root, result.key)))
    path = write_run_report(results, verdicts, options, notes, incomplete)
    return RunSummary(results, verdicts, path, incomplete, notes)


def write_run_report(results: list[RunResult], verdicts: list[Any], options: RunOptions,
                     notes: list[str], incomplete: bool) -> Path:
    """The run folder's report.md with the published references and the history's trend.

    Entries the folder's manifest assigned to it but no result delivered are named as missing.
    """
    from qa.manifest import assigned, missing, read_manifest
    from qa.results import read_history

    emulated = [r.entry_id for r in results if (r.hardware or {}).get("emulated")]
    if emulated:
        notes = [*notes, f"emulated hardware: {', '.join(emulated)} ran on an emulation on the "
                         "CPU: not hardware numbers; filed under their own key, so they never "
                         "gate real hardware or become its baseline"]
    references = baselines.load_references(options.references) \
        if Path(options.references).exists() else []
    history = read_history(options.history_path)
    manifest = read_manifest(options.out_dir)
    absent = missing(assigned(manifest), results) if manifest else []
    return report.write_report(options.out_dir, results, verdicts, references=references,
                               history=history, incomplete=incomplete, notes=notes,
                               missing=absent, baselines_root=options.baselines_root)
