"""SDK before/after: two runs compared entry by entry with the baseline tolerance rules.

Run A is the reference (before), run B the candidate (after). Accuracy tolerances are absolute
points (``ACCURACY_TOLERANCE``, widened to ``SIGMA_GATE·σ`` of A's seeds), timing tolerances
relative and taken from each run's own measured spread (``measured_tolerance``), exactly as a
baseline written from A would gate B. Two runs are only comparable when they trained on the
same data (``dataset_fingerprint``) with the same model and settings: their configs must agree
outside ``hardware`` and local paths. ``force=True`` compares anyway and says so in the output.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from qa.config.schema import config_hash
from qa.errors import QABenchError
from qa.gating.baseline_build import accuracy_samples, measured_tolerance
from qa.gating.baselines import SIGMA_GATE
from qa.gating.comparability import config_differences as config_differences  # re-exported
from qa.gating.verdicts import judge
from qa.measure.hardware import differences as hardware_differences
from qa.measure.hardware import same_hardware
from qa.reporting.report import format_delta, format_tolerance, format_value
from qa.results.metricspec import ACCURACY_TOLERANCE, METRICS
from qa.results.store import RunResult, entry_id

CHANGES = {"regression": "❌ regression", "improvement": "⬆️ improvement",
          "within noise": "✅ within noise", "not measured": "— not measured"}
_CHANGE_OF = {"fail": "regression", "improved": "improvement", "pass": "within noise"}


@dataclass(frozen=True)
class Comparison:
    """One metric of one entry in run A against run B."""

    entry: str
    metric: str
    a: float | None
    b: float | None
    delta: float | None  # points: b - a; ratio: b / a - 1
    tolerance: float | None
    unit: str
    # Run-to-run words, kept apart from gating's pass/fail/improved (``qa.gating.verdicts``):
    change: str  # regression | improvement | within noise | not measured | only in A | only in B
    note: str = ""

    @property
    def relative(self) -> float | None:
        """``b / a - 1`` whatever the unit, or None where it is undefined."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a - 1.0


#: The pod suffix an emulated result's key carries (the IPU backend's ``EMULATED_SUFFIX``):
#: emulated and real results of the same work are filed apart and compared only when forced.
EMULATED_POD_SUFFIX = "-emulated"


def _group(results: Sequence[RunResult], fold_emulated: bool = False) -> dict[str, list[RunResult]]:
    """Results by entry; ``fold_emulated`` files an emulated entry under its real pod (the
    ``--force`` comparison of emulated against real hardware)."""
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        key = dict(result.key)
        pod = str(key.get("pod", ""))
        if fold_emulated and pod.endswith(EMULATED_POD_SUFFIX):
            key["pod"] = pod[: -len(EMULATED_POD_SUFFIX)]
        groups.setdefault(entry_id(key), []).append(result)
    return groups


def _problems(entry: str, a: list[RunResult], b: list[RunResult]) -> list[str]:
    """Why two entries are not comparable (empty when they are)."""
    problems = []
    prints_a = {r.dataset_fingerprint for r in a if r.dataset_fingerprint}
    prints_b = {r.dataset_fingerprint for r in b if r.dataset_fingerprint}
    if prints_a and prints_b and prints_a != prints_b:
        problems.append(f"{entry}: dataset fingerprints differ "
                        f"({', '.join(sorted(prints_a))} vs {', '.join(sorted(prints_b))})")
    if config_hash(a[0].config) != config_hash(b[0].config):
        diff = config_differences(a[0].config, b[0].config)
        problems.append(f"{entry}: configs differ ({'; '.join(diff[:3])}"
                        f"{'; ...' if len(diff) > 3 else ''})")
    if (a[0].hardware or b[0].hardware) and not same_hardware(a[0].hardware, b[0].hardware):
        diff = hardware_differences(a[0].hardware, b[0].hardware) or ["no fingerprint"]
        problems.append(f"{entry}: hardware differs ({'; '.join(diff[:3])}"
                        f"{'; ...' if len(diff) > 3 else ''})")
    return problems


def nothing_shared(a_results: Sequence[RunResult], b_results: Sequence[RunResult],
                   force: bool = False) -> str | None:
    """Why runs A and B have nothing to compare (no entry in both), or None when they share one.

    Entries that are the same work on real and on emulated hardware (keys that differ only by
    the ``-emulated`` pod suffix) are named: they are compared with each other only when
    ``force`` is set (and then as a forced comparison: their hardware differs).
    """
    groups_a, groups_b = _group(a_results, force), _group(b_results, force)
    a, b = set(groups_a), set(groups_b)
    finished = [e for e in a & b if any(r.status == "ok" for r in groups_a[e])
                and any(r.status == "ok" for r in groups_b[e])]
    if finished:
        return None
    if a & b:
        return (f"no entry finished in both runs ({', '.join(sorted(a & b)[:3])} did not): "
                "there is no measurement to compare")
    def real(entry: str) -> str:
        return entry.replace("-emulated/", "/")
    pairs = [f"{x} vs {y}" for x in sorted(a) for y in sorted(b) if x != y and real(x) == real(y)]
    if pairs:
        return (f"real and emulated hardware are not compared ({'; '.join(pairs[:2])}); "
                "use --force to compare anyway")
    return (f"the runs share no entry (A: {', '.join(sorted(a)[:3]) or 'none'}; "
            f"B: {', '.join(sorted(b)[:3]) or 'none'})")


def _value(results: list[RunResult], name: str) -> float | None:
    """Accuracy: mean over every seed; timings: median over repeated results."""
    spec = METRICS[name]
    if spec.unit == "points":
        samples = [v for r in results for v in accuracy_samples(r, name)]
        return statistics.fmean(samples) if samples else None
    values = [v for v in (spec.extract(r) for r in results) if v is not None]
    return statistics.median(values) if values else None


def _tolerance(name: str, a: list[RunResult], b: list[RunResult],
               overrides: dict[str, float]) -> float:
    spec = METRICS[name]
    if name in overrides:
        return overrides[name]
    if spec.unit == "points":
        samples = [v for r in a for v in accuracy_samples(r, name)]
        sigma = statistics.stdev(samples) if len(samples) > 1 else 0.0
        return max(ACCURACY_TOLERANCE, SIGMA_GATE * sigma)
    # Each run's own spread: pooling A and B would count the A→B change itself as noise.
    return max(measured_tolerance(name, a), measured_tolerance(name, b))


def _compare_entry(entry: str, a: list[RunResult], b: list[RunResult],
                   overrides: dict[str, float]) -> list[Comparison]:
    ok_a = [r for r in a if r.status == "ok"]
    ok_b = [r for r in b if r.status == "ok"]
    if not ok_a or not ok_b:
        status_a, status_b = a[-1].status, b[-1].status
        change = ("regression" if ok_a else "improvement" if ok_b else "not measured")
        failed = b[-1] if not ok_b else a[-1]
        why = (failed.failure or {}).get("stage") or failed.status
        return [Comparison(entry, "status", None, None, None, None, "", change,
                           f"A {status_a}, B {status_b} (failed at {why})")]
    rows = []
    for name, spec in METRICS.items():
        value_a, value_b = _value(ok_a, name), _value(ok_b, name)
        if value_a is None and value_b is None:
            continue
        tolerance = _tolerance(name, ok_a, ok_b, overrides)
        if value_a is None or value_b is None:
            side = "A" if value_a is None else "B"
            rows.append(Comparison(entry, name, value_a, value_b, None, tolerance, spec.unit,
                                   "not measured", f"not measured in {side}"))
            continue
        delta, status = judge(value_b, value_a, tolerance, spec.unit, spec.higher_is_better)
        rows.append(Comparison(entry, name, value_a, value_b, delta, tolerance, spec.unit,
                               _CHANGE_OF[status]))
    return rows


def compare_runs(a_results: Sequence[RunResult], b_results: Sequence[RunResult],
                 force: bool = False, a_label: str = "A", b_label: str = "B",
                 tolerances: dict[str, float] | None = None) -> tuple[str, list[Comparison]]:
    """Compare run B against run A entry by entry (matched by key).

    Args:
        a_results: the reference run (e.g. the old SDK).
        b_results: the candidate run (e.g. the new SDK).
        force: compare even where dataset fingerprints or configs differ (warned in the output).
        a_label: how run A is named in the output.
        b_label: how run B is named in the output.
        tolerances: per-metric tolerance overrides (points absolute, ratio relative).

    Returns:
        The markdown (tables and any warnings) and the comparisons that are regressions.

    Raises:
        QABenchError: the runs are not comparable and ``force`` is False.
    """
    comparisons, problems = comparisons_of(a_results, b_results, force, a_label, b_label,
                                           tolerances)
    regressions = [c for c in comparisons if c.change == "regression"]
    return _markdown(comparisons, regressions, problems, a_label, b_label), regressions


def comparisons_of(a_results: Sequence[RunResult], b_results: Sequence[RunResult],
                   force: bool = False, a_label: str = "A", b_label: str = "B",
                   tolerances: dict[str, float] | None = None
                   ) -> tuple[list[Comparison], list[str]]:
    """Every comparison of ``compare_runs`` (and the comparability problems), for callers that
    judge a subset of the metrics (the emulated SDK A/B judges accuracy only)."""
    groups_a, groups_b = _group(a_results, force), _group(b_results, force)
    shared = sorted(set(groups_a) & set(groups_b))
    problems = [p for e in shared for p in _problems(e, groups_a[e], groups_b[e])]
    if problems and not force:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise QABenchError(f"runs are not comparable: {problems[0]}{more}; "
                           "use --force to compare anyway")
    comparisons = [c for e in shared for c in _compare_entry(e, groups_a[e], groups_b[e],
                                                             tolerances or {})]
    comparisons += [Comparison(e, "—", None, None, None, None, "", f"only in {a_label}")
                    for e in sorted(set(groups_a) - set(groups_b))]
    comparisons += [Comparison(e, "—", None, None, None, None, "", f"only in {b_label}")
                    for e in sorted(set(groups_b) - set(groups_a))]
    return comparisons, problems


def _markdown(comparisons: list[Comparison], regressions: list[Comparison],
              problems: list[str], a_label: str, b_label: str) -> str:
    from tabulate import tabulate

    lines = [f"## {a_label} → {b_label}", ""]
    if problems:
        lines += ["> ⚠️ **Forced comparison** — these runs are not like for like:"]
        lines += [f"> - {p}" for p in problems] + [""]
    lines += [f"{len(regressions)} regression(s) in {len(comparisons)} comparison(s). Accuracy "
              "tolerances are absolute points, timing tolerances relative.", ""]
    judged = [c for c in comparisons if not c.change.startswith("only in")]
    if judged:
        rows = [[c.entry, c.metric, format_value(c.a), format_value(c.b),
                 format_delta(c.delta, c.unit) if c.unit else "—",
                 "—" if c.relative is None else f"{c.relative * 100:+.1f}%",
                 format_tolerance(c.tolerance, c.unit) if c.unit else "—",
                 CHANGES.get(c.change, c.change) + (f" ({c.note})" if c.note else "")]
                for c in judged]
        headers = ["Entry", "Metric", a_label, b_label, "Δ", "Δ rel", "Tolerance", "Change"]
        lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    alone = [c for c in comparisons if c.change.startswith("only in")]
    if alone:
        lines += ["Entries present in only one run:", ""]
        lines += [f"- `{c.entry}` — {c.change}" for c in alone] + [""]
    return "\n".join(lines).rstrip() + "\n"
