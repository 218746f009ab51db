"""Gating: one run's metrics judged against its baseline, metric by metric.

Rules:

- ``"points"`` metrics (EM, F1) have an absolute tolerance: ``value - baseline``; they are
  judged on every machine.
- ``"ratio"`` metrics (throughput, compile time) have a relative one: ``value / baseline - 1``,
  and are judged only against the baseline's timing section of the run's own hardware
  fingerprint. A baseline that has timings, none of them from this hardware, gives
  ``"other_hardware"`` — reported with both fingerprints, never a failure nor an improvement.
- Worse than the tolerance in the metric's bad direction is ``"fail"``; better than it in the
  good direction is ``"improved"`` (update the baseline), never a failure. The boundary itself
  passes (``IMPRECISION`` absorbs float rounding such as ``95 / 100 - 1``).
- A run whose timed window was shared with other processes (``qa.measure.contention``: more than
  ``BUSY_SHARE`` of the machine's CPU used by others or stolen by the hypervisor) gets
  ``"busy"`` for its timings — shown with the share, never a failure nor an improvement;
  accuracy is judged as usual.
- Emulated and real hardware never judge each other: a baseline measured on emulated hardware
  (``emulated`` in its provenance's fingerprints) against a run on real hardware, or the
  reverse, gives ``"other_hardware"`` for every metric, accuracy included. (Result keys already
  file emulated entries apart, e.g. ``pod16-emulated``; this holds even for a copied file.)
- Like against like (``qa.gating.comparability``): a baseline measured on another workload (a
  differing workload config field or dataset fingerprint) gives ``"not_comparable"`` for every
  metric, value and baseline shown, the differing fields in the message — never a pass, never a
  failure. Judged settings that differ (e.g. ``train.learning_rate``) are judged as usual, with
  a caveat in ``note``; so is a legacy baseline without a recorded workload (fingerprint only).
- Multi-run gate: where the baseline metric carries ``std`` with ``n > 1`` the effective
  tolerance is ``max(tolerance, SIGMA_GATE * std)`` (``BaselineMetric.effective_tolerance``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from qa import shapes
from qa.errors import QABenchError
from qa.gating import comparability
from qa.measure.contention import busy
from qa.measure.hardware import describe, differences
from qa.results.metricspec import METRICS
from qa.results.store import RunResult, entry_id

if TYPE_CHECKING:
    from qa.gating.baselines import Baseline, BaselineMetric

VERDICTS = ("pass", "fail", "improved", "missing", "other_hardware", "busy", "not_comparable")
IMPRECISION = 1e-9


@dataclass(frozen=True)
class Verdict:
    """One metric of one entry judged against its baseline."""

    entry: str
    metric: str
    value: float | None
    baseline: float | None
    delta: float | None  # absolute for "points", relative (value / baseline - 1) for "ratio"
    tolerance: float | None  # the effective tolerance, σ-gate included
    unit: str
    status: str  # one of VERDICTS
    higher_is_better: bool = True
    message: str = ""
    note: str = ""  # a caveat on a judged verdict, e.g. "judged with other settings: ..."

    @property
    def failed(self) -> bool:
        """True only for a regression beyond tolerance (or a gated metric not measured)."""
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as persisted in ``verdicts.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "verdict") -> Verdict:
        """Inverse of ``to_dict``; unknown keys are ignored.

        Raises:
            QABenchError: a field of the wrong type, an unknown status, a score outside
                0 .. 100 (``source`` and the field named).
        """
        shapes.obj(source, raw)
        for name in ("entry", "metric", "unit", "status"):
            shapes.text(f"{source}.{name}", raw.get(name), empty=False)
        if raw["status"] not in VERDICTS:
            raise QABenchError(f"{source}.status must be one of {', '.join(VERDICTS)}, got "
                               f"{shapes.shown(raw['status'])}")
        score = raw["unit"] == "points" and shapes.is_score(raw["metric"])
        for name in ("value", "baseline"):
            if score:
                shapes.number(f"{source}.{name}", raw.get(name), 0, 100, optional=True)
            else:
                shapes.number(f"{source}.{name}", raw.get(name), optional=True)
        shapes.number(f"{source}.delta", raw.get("delta"), optional=True)
        shapes.number(f"{source}.tolerance", raw.get("tolerance"), 0, optional=True)
        shapes.flag(f"{source}.higher_is_better", raw.get("higher_is_better", True))
        for name in ("message", "note"):
            shapes.text(f"{source}.{name}", raw.get(name, ""))
        return cls(**{k: raw.get(k) for k in cls.__dataclass_fields__ if k in raw})


def check_verdicts_file(raw: Any, source: str) -> dict[str, Any]:
    """A ``verdicts.json`` as written by ``qa.report.write_report``: its fields' shapes.

    Raises:
        QABenchError: ``<file>: field 'notes' must be a list, got 3`` and the like.
    """
    where = f"{source}: field"
    shapes.obj(source, raw)
    shapes.text(f"{where} 'title'", raw.get("title", ""))
    shapes.flag(f"{where} 'incomplete'", raw.get("incomplete", False))
    for name in ("notes", "missing"):
        for index, item in enumerate(shapes.array(f"{where} {name!r}", raw.get(name, []))):
            shapes.text(f"{where} '{name}[{index}]'", item)
    for entry, why in shapes.obj(f"{where} 'skipped'", raw.get("skipped", {})).items():
        shapes.text(f"{where} 'skipped.{entry}'", why)
    for index, item in enumerate(shapes.array(f"{where} 'verdicts'", raw.get("verdicts", []))):
        Verdict.from_dict(item, f"{where} 'verdicts[{index}]'")
    return raw


def judge(value: float, baseline: float, tolerance: float, unit: str,
          higher_is_better: bool) -> tuple[float, str]:
    """Compare ``value`` with ``baseline``: ``(delta, "pass" | "fail" | "improved")``.

    ``delta`` is ``value - baseline`` for points and ``value / baseline - 1`` for ratios.
    """
    if unit == "points":
        delta = value - baseline
    elif baseline == 0:
        delta = 0.0 if value == 0 else math.copysign(math.inf, value)
    else:
        delta = value / baseline - 1.0
    gain = delta if higher_is_better else -delta
    if gain < -(tolerance + IMPRECISION):
        return delta, "fail"
    if gain > tolerance + IMPRECISION:
        return delta, "improved"
    return delta, "pass"


def is_emulated(hardware: dict[str, Any] | None) -> bool:
    """Whether a hardware fingerprint describes an emulation (``"emulated": true``)."""
    return bool((hardware or {}).get("emulated"))


def baseline_emulated(baseline: Baseline) -> bool:
    """Whether ``baseline`` was measured on emulated hardware (any fingerprint says so)."""
    prints = [*(baseline.provenance.get("hardware") or []), *(t.hardware for t in baseline.timings)]
    return any(is_emulated(h) for h in prints if isinstance(h, dict))


def _gated(result: RunResult, baseline: Baseline | None) -> tuple[dict[str, BaselineMetric], str]:
    """The baseline metrics that judge this run, and why its timings are not judged (or '')."""
    if baseline is None:
        return {}, ""
    if baseline_emulated(baseline) != is_emulated(result.hardware):
        which = "emulated" if baseline_emulated(baseline) else "real"
        return {}, (f"other hardware — the baseline was measured on {which} hardware, this run "
                    f"on {'emulated' if is_emulated(result.hardware) else 'real'} hardware: "
                    "never judged against each other")
    gated = dict(baseline.metrics)
    section = baseline.timing_for(result.hardware)
    if section is not None:
        gated.update(section.metrics)
        return gated, ""
    if not baseline.timings:
        return gated, ""
    other = baseline.timings[0].hardware
    changed = "; ".join(differences(other, result.hardware)) or "no fingerprint"
    more = f" (and {len(baseline.timings) - 1} more)" if len(baseline.timings) > 1 else ""
    return gated, (f"other hardware — baseline: {describe(other)}{more}; this run: "
                   f"{describe(result.hardware)} ({changed})")


def gate(result: RunResult, baseline: Baseline | None) -> list[Verdict]:
    """Judge every measured or baselined metric of ``result`` against ``baseline``.

    A metric the run measured but the baseline lacks (or no baseline at all) is ``"missing"``;
    a timing whose baseline was measured on other hardware only is ``"other_hardware"``; a
    metric the baseline gates but the run did not measure is ``"fail"``; a baseline of another
    workload (``qa.gating.comparability.check``) gives ``"not_comparable"`` for every metric of an
    ok
    run, and a caveat from that check goes into each verdict's ``note``.
    """
    entry = entry_id(result.key)
    apart, note = comparability.check(result, baseline) if baseline is not None else ([], "")
    if apart and result.status == "ok":
        return _not_comparable(entry, result, baseline, apart)
    verdicts = _judged(entry, result, baseline)
    return [replace(v, note=note) for v in verdicts] if note else verdicts


def _not_comparable(entry: str, result: RunResult, baseline: Baseline,
                    apart: list[str]) -> list[Verdict]:
    """Every metric measured or baselined, shown beside the baseline's value, not judged."""
    message = "not comparable — " + comparability.summarise(apart)
    sections = [s for s in (baseline.timing_for(result.hardware), *baseline.timings) if s]
    verdicts = []
    for name, spec in METRICS.items():
        value = spec.extract(result)
        reference = baseline.metrics.get(name) or next(
            (s.metrics[name] for s in sections if name in s.metrics), None)
        if value is None and reference is None:
            continue
        verdicts.append(Verdict(entry, name, value, reference.value if reference else None, None,
                                None, spec.unit, "not_comparable", spec.higher_is_better,
                                message))
    return verdicts


def _judged(entry: str, result: RunResult, baseline: Baseline | None) -> list[Verdict]:
    gated, other_hardware = _gated(result, baseline)
    shared = busy(result.timings.get("contention"))
    emulation_apart = baseline is not None and (
        baseline_emulated(baseline) != is_emulated(result.hardware))
    if result.status != "ok":
        return [Verdict(entry, name, None, m.value, None, m.effective_tolerance(), m.unit, "fail",
                        m.higher_is_better, f"run {result.status}: not measured")
                for name, m in gated.items()]
    verdicts = []
    for name, spec in METRICS.items():
        value = spec.extract(result)
        expected = gated.get(name)
        if expected is None:
            if value is None:
                continue
            if other_hardware and (spec.hardware_bound or emulation_apart):
                reference = (baseline.metrics.get(name) or next(
                    (t.metrics[name] for t in baseline.timings if name in t.metrics), None)
                ) if baseline else None
                verdicts.append(Verdict(entry, name, value,
                                        reference.value if reference else None, None, None,
                                        spec.unit, "other_hardware", spec.higher_is_better,
                                        other_hardware))
                continue
            why = "no baseline file" if baseline is None else "not in the baseline"
            verdicts.append(Verdict(entry, name, value, None, None, None, spec.unit,
                                    "missing", spec.higher_is_better, why))
            continue
        tolerance = expected.effective_tolerance()
        if value is None:
            verdicts.append(Verdict(entry, name, None, expected.value, None, tolerance,
                                    expected.unit, "fail", expected.higher_is_better,
                                    "gated by the baseline but not measured"))
            continue
        delta, status = judge(value, expected.value, tolerance, expected.unit,
                              expected.higher_is_better)
        message = {"improved": "improved — update the baseline",
                   "fail": "worse than the baseline beyond tolerance"}.get(status, "")
        if spec.hardware_bound and shared:
            status, message = "busy", shared
        verdicts.append(Verdict(entry, name, value, expected.value, delta, tolerance,
                                expected.unit, status, expected.higher_is_better, message))
    return verdicts
