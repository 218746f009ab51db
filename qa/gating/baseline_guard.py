"""The one guarded way to write baselines: refuse unfit runs, keep the old file, show the diff.

A baseline is what every later run is judged against, so it is never replaced silently. Both
writers (``qa-bench run --update-baselines`` and the pytest front end through
``qa.run.runner``, and ``qa-bench baseline``) go through ``guarded_update``, which first decides
whether the candidate results are fit. They are not when:

- a result did not finish (status ``failed``, ``diverged``, ``timeout``, ``interrupted``);
- the run is incomplete (stopped before every entry ran);
- a result carries an injected fault (``environment.injected_fault``);
- a result is emulated while the baseline it would replace was measured on real hardware;
- judged against the CURRENT baseline, a result gets a ``fail`` or ``not_comparable`` verdict
  (a regression written as the baseline would make every later broken run pass).

Unfit: nothing is written (the decision is taken for every entry before any file is touched, so
a refusal leaves every baseline byte-identical) and each entry gets one line saying why. With
``force`` (``--force-update-baselines``, ``qa-bench baseline --force``) the baselines are
written anyway, from the finished, fault-free results only, and the lines say what was replaced.

Before any overwrite the old file's JSON is appended to ``<model>__<dataset>.previous.jsonl``
beside it (one object a line: ``replaced_at``, ``replaced_by`` {commit, forced, reason},
``baseline``), and the change is shown metric by metric: ``exact_match 99.47 → 98.90
(tolerance 1.00 → 1.00, n 20 → 5)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qa.errors import QABenchError
from qa.files import write_json_atomic
from qa.gating.baseline_build import baseline_from_results
from qa.gating.baselines import Baseline, baseline_path, load_baseline
from qa.gating.verdicts import Verdict, baseline_emulated, gate, is_emulated
from qa.measure.hardware import same_hardware
from qa.results.metricspec import METRICS
from qa.results.store import RunResult, entry_id

#: Verdict statuses that make a result unfit to become the baseline.
BLOCKING = ("fail", "not_comparable")
ARCHIVE_SUFFIX = ".previous.jsonl"


@dataclass
class Decision:
    """Whether one entry's candidate results may become its baseline, and from which runs."""

    entry: str
    path: Path
    previous: Baseline | None
    reasons: list[str] = field(default_factory=list)  # why unfit; empty: fit
    pooled: list[RunResult] = field(default_factory=list)  # finished, fault-free
    timed: list[RunResult] | None = None  # the timing runs, when given separately
    left_out: list[str] = field(default_factory=list)  # results never pooled, described


@dataclass
class GuardOutcome:
    """What ``guarded_update`` did: files written, and lines for the user (stdout and notes)."""

    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one line per refused entry


def archive_path(path: Path) -> Path:
    """``…/tiny-roformer__synthetic.json`` → ``…/tiny-roformer__synthetic.previous.jsonl``."""
    return path.with_name(path.name.removesuffix(".json") + ARCHIVE_SUFFIX)


def guarded_update(root: str | os.PathLike, results: Sequence[RunResult], *,
                   judged: Sequence[RunResult] | None = None, force: bool = False,
                   force_flag: str = "--force", incomplete: bool = False,
                   sources: Mapping[int, str] | None = None,
                   accuracy_tolerance: float | None = None,
                   timing_results: Sequence[RunResult] | None = None,
                   pool: bool = False) -> GuardOutcome:
    """Write the baseline of every entry in ``results`` if the run is fit (or ``force``).

    Args:
        root: the baselines folder.
        results: the runs to pool (e.g. per seed), of one or several entries.
        judged: the results judged against the current baseline (default: ``results``); a run
            passes its aggregated result, as its gates judged it.
        force: write even from an unfit run (never from a result that did not finish or carries
            a fault: those are left out and named).
        force_flag: the option that says ``force``, named in refusals.
        incomplete: the run stopped before every entry ran.
        sources: ``id(result)`` → where it was read from (a run folder), named in the lines.
        accuracy_tolerance, timing_results, pool: as in
            ``qa.gating.baseline_build.baseline_from_results``.

    Returns:
        The paths written and the lines to show. Unfit without ``force``: nothing written.

    Raises:
        QABenchError: an existing baseline file is invalid.
    """
    decisions = decide(root, results, judged=judged, incomplete=incomplete, sources=sources,
                       timing_results=timing_results)
    outcome = GuardOutcome()
    unfit = {d.entry for d in decisions if d.reasons or not d.pooled}
    if unfit and not force:
        for d in decisions:
            line = _refusal(d, force_flag) if d.entry in unfit else (
                f"baseline NOT written for {d.entry}: fit, but other entries of these runs are "
                f"not (nothing is written from a run that did not hold) — {_kept(d)}")
            outcome.refused.append(line)
        outcome.lines = list(outcome.refused)
        return outcome
    for d in decisions:
        if not d.pooled:
            line = _refusal(d, force_flag)
            outcome.refused.append(line)
            outcome.lines.append(line)
            continue
        outcome.written.append(_write(d, force_flag, accuracy_tolerance, outcome.lines, pool))
    return outcome


def decide(root: str | os.PathLike, results: Sequence[RunResult], *,
           judged: Sequence[RunResult] | None = None, incomplete: bool = False,
           sources: Mapping[int, str] | None = None,
           timing_results: Sequence[RunResult] | None = None) -> list[Decision]:
    """One Decision per entry of ``results``: the reasons it is unfit, and what may be pooled."""
    sources = sources or {}
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        groups.setdefault(entry_id(result.key), []).append(result)
    decisions = []
    for name, group in groups.items():
        previous = load_baseline(root, group[0].key)
        d = Decision(name, baseline_path(root, group[0].key), previous)
        timed = None if timing_results is None else [
            r for r in timing_results if entry_id(r.key) == name]
        if incomplete:
            d.reasons.append("the run is incomplete (stopped before every entry ran)")
        d.pooled = _usable(group, d, sources)
        if timed is not None:
            d.timed = _usable(timed, d, sources, what="timing run")
        if previous is not None and not baseline_emulated(previous):
            emulated = [r for r in [*d.pooled, *(d.timed or [])] if is_emulated(r.hardware)]
            if emulated:
                d.reasons.append("its results ran on emulated hardware and the baseline was "
                                 "measured on real hardware")
        if previous is not None:
            own = [r for r in (judged if judged is not None else group)
                   if entry_id(r.key) == name and r.status == "ok"]
            verdicts = [v for r in own for v in gate(r, previous)
                        if timing_results is None or not METRICS[v.metric].hardware_bound]
            verdicts += [v for r in d.timed or [] for v in gate(r, previous)
                         if METRICS[v.metric].hardware_bound]
            d.reasons += _gate_reasons(verdicts)
        decisions.append(d)
    return decisions


def _usable(results: list[RunResult], d: Decision, sources: Mapping[int, str],
            what: str = "result") -> list[RunResult]:
    """The finished, fault-free results; every other one becomes a reason and is left out."""
    usable = []
    for result in results:
        where = f" in {sources[id(result)]}" if id(result) in sources else ""
        fault = (result.environment or {}).get("injected_fault")
        if result.status != "ok":
            failure = result.failure or {}
            cause = f" in stage {failure.get('stage')}: {failure.get('cause')}" if failure else ""
            text = f"{what} {result.status}{cause}{where}"
        elif fault:
            text = f"{what} carries an injected fault ({fault}){where}"
        else:
            usable.append(result)
            continue
        d.reasons.append(text)
        d.left_out.append(text)
    return usable


def _gate_reasons(verdicts: list[Verdict]) -> list[str]:
    failed = [v for v in verdicts if v.status == "fail"]
    apart = [v for v in verdicts if v.status == "not_comparable"]
    reasons = []
    if failed:
        reasons.append("the run failed its gates (" + ", ".join(
            dict.fromkeys(_verdict_text(v) for v in failed)) + ")")
    if apart:
        reasons.append("it is not comparable with the baseline (" + "; ".join(
            dict.fromkeys(v.message or v.metric for v in apart)) + ")")
    return reasons


def _verdict_text(v: Verdict) -> str:
    if v.value is None:
        return f"{v.metric} not measured"
    tolerance = "" if v.tolerance is None else (
        f" ± {v.tolerance:.2f}" if v.unit == "points" else f" ± {100 * v.tolerance:.0f} %")
    return f"{v.metric} {_number(v.value, v.unit)} vs {_number(v.baseline, v.unit)}{tolerance}"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if unit == "points" else f"{value:.4g}"


def _kept(d: Decision) -> str:
    if d.previous is None:
        return "there is no baseline yet"
    return f"kept the baseline of {_describe(d.previous)}"


def _describe(baseline: Baseline) -> str:
    date = str(baseline.provenance.get("date", "?"))[:10]
    n = baseline.provenance.get("runs") or next(
        (m.n for m in baseline.metrics.values() if m.n), None)
    return f"{date} (n {n})" if n else date


def _refusal(d: Decision, force_flag: str) -> str:
    if not d.pooled:
        why = "; ".join(d.reasons) or "no result"
        return (f"baseline NOT written for {d.entry}: no finished, fault-free result to build "
                f"it from ({why}) — {_kept(d)}")
    verb = "replace it" if d.previous is not None else "write it"
    return (f"baseline NOT written for {d.entry}: {'; '.join(d.reasons)} — {_kept(d)}; pass "
            f"{force_flag} to {verb} anyway")


def _write(d: Decision, force_flag: str, accuracy_tolerance: float | None,
           lines: list[str], pool: bool = False) -> Path:
    """Archive the old file, write the new one, and say so (with the diff) in ``lines``."""
    data = baseline_from_results(d.pooled, d.previous, accuracy_tolerance, d.timed, pool)
    Baseline.from_dict(data, source=str(d.path))  # never write what load would reject
    forced = bool(d.reasons)
    if d.previous is not None:
        reason = "; ".join(d.reasons) if forced else "the run held every gate"
        commit = (d.pooled[-1].environment or {}).get("git_commit")
        kept = _archive(d.path, {"commit": commit, "forced": forced, "reason": reason})
    path = write_json_atomic(d.path, data)
    if forced:
        old = f"the baseline of {_describe(d.previous)}" if d.previous else "no baseline"
        lines.append(f"baseline REPLACED on purpose ({force_flag}) for {d.entry} although "
                     f"{'; '.join(d.reasons)}: {old} → the one just written to {path}")
    else:
        lines.append(f"baseline written: {path}")
    if d.left_out:
        lines.append(f"  left out (never pooled): {'; '.join(d.left_out)}")
    if d.previous is not None:
        lines.append(f"  the previous baseline ({_describe(d.previous)}) is kept in {kept}")
    lines.extend(f"  {line}" for line in diff_lines(d.previous, data, d.timed or d.pooled))
    return path


def _archive(path: Path, replaced_by: dict[str, Any]) -> Path:
    """Append the file's current JSON to its ``.previous.jsonl``: one whole line, fsynced."""
    archive = archive_path(path)
    record = {"replaced_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "replaced_by": replaced_by,
              "baseline": json.loads(path.read_text(encoding="utf-8"))}
    try:
        with open(archive, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise QABenchError(f"cannot keep the previous baseline in {archive}: "
                           f"{exc.strerror or exc}") from None
    return archive


def diff_lines(previous: Baseline | None, data: dict[str, Any],
               measured: Sequence[RunResult]) -> list[str]:
    """One line per metric, old → new: accuracy, and the timing sections just measured."""
    new = Baseline.from_dict(data)
    pairs = [(previous.metrics if previous else {}, new.metrics, "")]
    lines = []
    for section in new.timings:
        if not any(_same(section.hardware, r.hardware) for r in measured):
            continue  # a section of other hardware carried over unchanged
        old = previous.timing_for(section.hardware) if previous else None
        pairs.append((old.metrics if old else {}, section.metrics, " (this hardware)"))
    if len(pairs) == 1 and measured:
        lines.append("timings: none written for this hardware (every run was timed on a busy "
                     "machine or has no fingerprint); the sections of other hardware are kept")
    for old, now, where in pairs:
        for name in [*now, *(n for n in old if n not in now)]:
            lines.append(_metric_line(name, old.get(name), now.get(name)) + where)
    return lines


def _same(a: dict[str, Any], b: dict[str, Any] | None) -> bool:

    return same_hardware(a, b)


def _metric_line(name: str, old: Any, new: Any) -> str:
    def tol(m: Any) -> str:
        return f"{m.tolerance:.2f}" if m.unit == "points" else f"{100 * m.tolerance:.0f} %"

    if old is None:
        n = f", n {new.n}" if new.n else ""
        return f"{name} added: {_number(new.value, new.unit)} (tolerance {tol(new)}{n})"
    if new is None:
        return f"{name} removed (was {_number(old.value, old.unit)})"
    n = f", n {old.n or '—'} → {new.n or '—'}" if old.n or new.n else ""
    return (f"{name} {_number(old.value, old.unit)} → {_number(new.value, new.unit)} "
            f"(tolerance {tol(old)} → {tol(new)}{n})")
