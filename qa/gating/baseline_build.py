"""Building baselines from runs: accuracy pooled over seeds, machines and builds; timing
sections per hardware fingerprint with tolerances from the measured spread (the rules are in
``qa.gating.baselines``' docstring). ``update_baseline`` is the unguarded writer; the suite's
writers go through ``qa.gating.baseline_guard``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qa import __version__
from qa.errors import QABenchError
from qa.files import write_json_atomic
from qa.gating.baselines import (
    IQR_K,
    MIN_TIMING_PROCESSES,
    Baseline,
    baseline_path,
    load_baseline_file,
)
from qa.gating.comparability import recorded
from qa.measure.contention import busy
from qa.measure.hardware import same_hardware
from qa.results.metricspec import METRICS, is_number
from qa.results.store import RunResult, entry_id


def accuracy_samples(result: RunResult, name: str) -> list[float]:
    """Per-seed values of an accuracy metric (the result's mean when it has no seed list)."""
    spec = METRICS[name]
    keys = [source.rsplit(".", 1)[-1] for source in spec.sources]
    per_seed = [next((s[k] for k in keys if s.get(k) is not None), None) for s in result.seeds]
    if per_seed and all(v is not None for v in per_seed):
        return [float(v) for v in per_seed]
    value = spec.extract(result)
    return [] if value is None else [float(value)]


def timing_samples(result: RunResult, name: str) -> list[float]:
    """Per-run values of a timing metric: one per seed where each seed kept its own timings."""
    per_seed = [(s.get("timings") or {}).get(name) for s in result.seeds]
    if per_seed and all(is_number(v) for v in per_seed):
        return [float(v) for v in per_seed]
    value = METRICS[name].extract(result)
    return [] if value is None else [float(value)]


def measured_tolerance(name: str, results: Iterable[RunResult]) -> float:
    """A ratio metric's tolerance from measured spread: ``max(floor, IQR_K·IQR/median, range)``."""
    spec = METRICS[name]
    results = list(results)
    spreads = [spec.default_tolerance]
    for result in results:
        dist = result.timings.get(spec.spread_key) if spec.spread_key else None
        if isinstance(dist, dict) and dist.get("median") and dist.get("iqr") is not None:
            spreads.append(IQR_K * float(dist["iqr"]) / float(dist["median"]))
    values = [v for r in results for v in timing_samples(r, name)]
    if len(values) >= 2 and statistics.median(values) > 0:
        spreads.append((max(values) - min(values)) / statistics.median(values))
    return round(max(spreads), 4)


def _accuracy_metrics(ok: list[RunResult], previous: Baseline | None,
                      accuracy_tolerance: float | None,
                      pool: bool) -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = {}
    for name, spec in METRICS.items():
        if spec.hardware_bound:
            continue
        samples = [v for r in ok for v in accuracy_samples(r, name)]
        if not samples:
            continue
        kept = previous.metrics.get(name) if previous else None
        tolerance = accuracy_tolerance if accuracy_tolerance is not None else (
            kept.tolerance if kept else spec.default_tolerance)
        n, mean, std, low, high = _summary(samples)
        if pool and kept is not None and kept.n:
            n, mean, std, low, high = _pooled((kept.n, kept.value, kept.std or 0.0,
                                               kept.min if kept.min is not None else kept.value,
                                               kept.max if kept.max is not None else kept.value),
                                              (n, mean, std, low, high))
        entry: dict[str, Any] = {"value": round(mean, 4), "tolerance": tolerance, "n": n,
                                 "min": round(low, 4), "max": round(high, 4)}
        if n > 1:
            entry["std"] = round(std, 4)
        metrics[name] = {**entry, "unit": spec.unit, "higher_is_better": spec.higher_is_better}
    return metrics


Summary = tuple[int, float, float, float, float]  # n, mean, sample std, min, max


def _summary(samples: list[float]) -> Summary:
    std = statistics.stdev(samples) if len(samples) > 1 else 0.0
    return len(samples), statistics.fmean(samples), std, min(samples), max(samples)


def _pooled(a: Summary, b: Summary) -> Summary:
    """Two pools of runs as one: the mean and sample std of their union, from their summaries
    (the runs behind a committed baseline are not kept, their n, mean, std, min and max are).
    Each pool holds at least one run, so ``n >= 2`` and the sample std is defined."""
    (na, ma, sa, lo_a, hi_a), (nb, mb, sb, lo_b, hi_b) = a, b
    n = na + nb
    mean = (na * ma + nb * mb) / n
    squares = (na - 1) * sa ** 2 + (nb - 1) * sb ** 2 + na * (ma - mean) ** 2 \
        + nb * (mb - mean) ** 2
    return n, mean, (squares / (n - 1)) ** 0.5, min(lo_a, lo_b), max(hi_a, hi_b)


def _timing_section_from(results: list[RunResult]) -> dict[str, Any]:
    metrics: dict[str, dict[str, Any]] = {}
    for name, spec in METRICS.items():
        if not spec.hardware_bound:
            continue
        values = [v for r in results for v in timing_samples(r, name)]
        if not values or statistics.median(values) <= 0:
            continue
        metrics[name] = {"value": round(statistics.median(values), 4),
                         "tolerance": measured_tolerance(name, results), "unit": spec.unit,
                         "higher_is_better": spec.higher_is_better}
    processes = sum(max(1, len(r.seeds)) for r in results)
    provenance = {**_provenance(results), "processes": processes}
    if processes < MIN_TIMING_PROCESSES:
        provenance["note"] = (f"timing spread from {processes} run(s); at least "
                              f"{MIN_TIMING_PROCESSES} separate runs give a trustworthy tolerance")
    return {"hardware": dict(results[0].hardware), "metrics": metrics, "provenance": provenance}


def baseline_from_results(results: list[RunResult], previous: Baseline | None = None,
                          accuracy_tolerance: float | None = None,
                          timing_results: list[RunResult] | None = None,
                          pool: bool = False) -> dict[str, Any]:
    """Build a baseline dict for one entry from its ok results (repeats, seeds, machines pooled).

    Accuracy: mean over every run, with ``std``, ``n``, ``min`` and ``max``. Timings: one
    section per hardware fingerprint among the results (median over its runs, tolerance from
    the measured spread); ``previous`` sections of other hardware are kept, the section of a
    re-measured fingerprint is replaced. An accuracy tolerance already in ``previous`` is kept
    unless ``accuracy_tolerance`` is given. ``timing_results``, when given, are the only runs
    the timing sections come from (e.g. runs on a quiet machine, while ``results`` is an
    accuracy sweep run under load); they must be of the same entry. With ``pool`` the accuracy
    of ``results`` is added to the pool ``previous`` was measured from (its n, mean, std, min and
    max: e.g. runs on another CPU model, where float rounding moves when the tiny model learns),
    and the provenance keeps both: the previous hardware and runs, and ``pooled_with``.

    Raises:
        QABenchError: no ok result, or results of different entries.
    """
    ok = [r for r in results if r.status == "ok"]
    if not ok:
        raise QABenchError("cannot build a baseline: no successful result")
    _refuse_faults(ok)
    if len({bool((r.hardware or {}).get("emulated")) for r in ok}) > 1:
        raise QABenchError("cannot build one baseline from emulated and real hardware results: "
                           "emulated numbers never stand for hardware")
    entries = {entry_id(r.key) for r in ok}
    if len(entries) > 1:
        raise QABenchError(f"cannot build one baseline from several entries: {sorted(entries)}")
    timed = ok if timing_results is None else [r for r in timing_results if r.status == "ok"]
    if timing_results is not None:
        _refuse_faults(timed)
        if {entry_id(r.key) for r in timed} - entries:
            raise QABenchError("the timing runs are of another entry than the accuracy runs")
    # A run timed while other processes shared the CPUs measured the neighbour, not the code.
    timed = [r for r in timed if not busy(r.timings.get("contention"))]
    groups: list[list[RunResult]] = []
    for result in timed:
        if not result.hardware:
            continue  # a result without a fingerprint cannot found a timing baseline
        group = next((g for g in groups if same_hardware(g[0].hardware, result.hardware)), None)
        if group is None:
            groups.append([result])
        else:
            group.append(result)
    sections = [_timing_section_from(g) for g in groups]
    if previous is not None:
        sections += [t.to_dict() for t in previous.timings
                     if not t.hardware.get("legacy")
                     and not any(same_hardware(t.hardware, g[0].hardware) for g in groups)]
    provenance = {**_provenance(ok), **recorded(ok)}
    if pool and previous is not None:
        old = previous.provenance
        pooled = [str(r.started_at) for r in ok]
        again = sorted(set(pooled) & set(old.get("pooled_results") or []))
        if again:
            raise QABenchError(f"cannot pool runs already pooled into this baseline (started at "
                               f"{', '.join(again[:3])}): each run counts once")
        provenance["pooled_results"] = [*(old.get("pooled_results") or []), *pooled]
        settings = [old.get("settings") or {}, provenance.get("settings") or {}]
        if any(settings):  # every judged setting's values over both pools, the old ones first
            provenance["settings"] = {
                key: [*dict.fromkeys([*settings[0].get(key, []), *settings[1].get(key, [])])]
                for key in sorted({*settings[0], *settings[1]})}
        provenance["hardware"] = _distinct([*(old.get("hardware") or []),
                                            *provenance["hardware"]])
        provenance["seeds"] = sorted({*(old.get("seeds") or []), *provenance["seeds"]})
        provenance["runs"] = int(old.get("runs") or 0) + provenance["runs"]
        provenance["pooled_with"] = {k: old.get(k) for k in ("date", "commit", "runs")}
        if "workload_source" in old:
            provenance["workload_source"] = old["workload_source"]
    return {"key": dict(ok[0].key), "metrics": _accuracy_metrics(ok, previous,
                                                                 accuracy_tolerance, pool),
            "timings": sections, "provenance": provenance}


def _refuse_faults(results: list[RunResult]) -> None:
    faulty = sorted({f for r in results if (f := (r.environment or {}).get("injected_fault"))})
    if faulty:
        raise QABenchError(f"cannot build a baseline from a run with an injected fault "
                           f"({', '.join(faulty)})")


def _provenance(results: list[RunResult]) -> dict[str, Any]:
    env = results[-1].environment or {}
    versions = dict(env.get("versions") or {})
    seeds = {s["seed"] for r in results for s in r.seeds if s.get("seed") is not None}
    if not seeds:  # single-seed runs: the seed is in the config
        seeds = {r.config.get("train", {}).get("seed") for r in results} - {None}
    finished = max((r.finished_at for r in results if r.finished_at), default="")
    return {
        "measured_by": f"qa-bench {versions.get('qa-bench', _own_version())}",
        "date": finished or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": env.get("git_commit"),
        "versions": versions,
        "python": env.get("python"),
        "hardware": [dict(h) for h in _distinct(r.hardware for r in results)],
        "seeds": sorted(seeds),
        "runs": sum(max(1, len(r.seeds)) for r in results),
        "dataset_fingerprint": results[-1].dataset_fingerprint,
    }


def _distinct(fingerprints: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for fp in fingerprints:
        if fp and not any(same_hardware(fp, s) for s in seen):
            seen.append(fp)
    return seen


def _own_version() -> str:

    return __version__


def update_baseline(root: str | os.PathLike, results: list[RunResult],
                    accuracy_tolerance: float | None = None,
                    timing_results: list[RunResult] | None = None) -> list[Path]:
    """Rewrite the baseline file of every entry that has an ok result; atomic per file.

    The unguarded primitive: it neither judges the results against the current baseline nor
    keeps the old file. The suite's writers go through ``qa.gating.baseline_guard.guarded_update``.
    Entries whose results all failed are left untouched (a failure is no new baseline).
    ``timing_results``: where given, the timing sections come from these runs only.

    Returns:
        The paths written.
    """
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        groups.setdefault(entry_id(result.key), []).append(result)
    written = []
    for group in groups.values():
        if not any(r.status == "ok" for r in group):
            continue
        path = baseline_path(root, group[0].key)
        previous = load_baseline_file(path) if path.exists() else None
        timed = None if timing_results is None else [
            r for r in timing_results if entry_id(r.key) == entry_id(group[0].key)]
        data = baseline_from_results(group, previous, accuracy_tolerance, timed)
        Baseline.from_dict(data, source=str(path))  # never write what load would reject
        written.append(write_json_atomic(path, data))
    return written


