"""Baselines: per-entry JSON files of expected metrics, each with a tolerance and a direction.

A baseline lives at ``<root>/<backend>/<pod-or-device>/<model>__<dataset>.json``, the entry's
``results.entry_id(key)`` plus ``.json``. The diff of a rewritten file is reviewed like code::

    {"key": {...},
     "metrics": {"exact_match": {...}, "f1": {...}},           # accuracy: gates on any machine
     "timings": [{"hardware": {fingerprint}, "metrics": {...}, "provenance": {...}}, ...],
     "provenance": {...}}

Accuracy is one set of numbers per entry; timings are one section per hardware fingerprint
(``qa.measure.hardware``), so baselines measured on several machines live side by side in one file
and
a run is timed only against the section of its own hardware. Files written before timing
sections existed (timing metrics beside EM/F1) load with their timings in a section whose
fingerprint is the old, partial ``provenance.hardware``: it matches no machine, so those timings
are reported as "other hardware" until ``--update-baselines`` measures them again.

Tolerances written by ``update_baseline`` (why these numbers):

- Accuracy: ``ACCURACY_TOLERANCE`` = 1.0 point is the floor. The gate's real width comes from
  the measured spread: with ``std`` over ``n > 1`` runs (seeds, thread counts, torch builds —
  float rounding moves when a tiny model learns) the effective tolerance is
  ``max(tolerance, SIGMA_GATE * std)`` (``qa.gating.verdicts``). A tolerance already in the file
  (set
  by hand) is kept on update.
- Timings are derived from what was measured, not guessed: ``max(floor, IQR_K * IQR / median,
  range / median)`` — the per-step IQR of each run and the range over the runs (separate
  processes) of that hardware. ``IQR_K`` = 1.5 is Tukey's outlier fence. The floors cover
  run-to-run noise that few runs cannot see (host load, clocks, file cache): 5 % for throughput,
  25 % for a cold compile, 50 % for a warm compile (sub-second, so relatively noisy). Fewer than
  ``MIN_TIMING_PROCESSES`` runs are recorded as such in the section's provenance.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa import shapes
from qa.errors import QABenchError, unknown
from qa.files import read_json
from qa.measure.hardware import same_hardware
from qa.results.metricspec import ACCURACY_TOLERANCE, METRICS, is_number
from qa.results.store import entry_id

#: The baselines folder of a checkout, and the published numbers' file inside it.
ROOT = Path("baselines")
REFERENCES_FILE = "reference.toml"
REFERENCES = ROOT / REFERENCES_FILE


def references_path(root: str | os.PathLike = ROOT) -> Path:
    """Where the published numbers of the baselines folder ``root`` are."""
    return Path(root) / REFERENCES_FILE


UNITS = ("points", "ratio")
IQR_K = 1.5
SIGMA_GATE = 3.0
MIN_TIMING_PROCESSES = 3


@dataclass(frozen=True)
class BaselineMetric:
    """Expected value of one metric with its tolerance (absolute points or relative ratio)."""

    value: float
    tolerance: float
    unit: str
    higher_is_better: bool
    std: float | None = None
    n: int | None = None
    min: float | None = None  # the range of the runs the value is the mean of (accuracy)
    max: float | None = None

    def effective_tolerance(self) -> float:
        """The tolerance widened by the measured spread where several runs were pooled.

        ``max(tolerance, 3σ)``, and for points metrics never less than the distance from the
        mean to the worst run pooled (``value - min``, or ``max - value`` where lower is
        better): a run as good as the worst one the baseline was measured from passes.
        """
        if self.std is None or (self.n or 0) <= 1:
            return self.tolerance
        sigma = self.std if self.unit == "points" else self.std / abs(self.value)
        widest = max(self.tolerance, SIGMA_GATE * sigma)
        worst = self.min if self.higher_is_better else self.max
        if self.unit == "points" and worst is not None:
            widest = max(widest, abs(self.value - worst))
        return widest


def _metrics_dict(metrics: dict[str, BaselineMetric]) -> dict[str, Any]:
    return {name: {k: v for k, v in asdict(m).items() if v is not None}
            for name, m in metrics.items()}


@dataclass(frozen=True)
class TimingBaseline:
    """The timing metrics of one entry as measured on one hardware fingerprint."""

    hardware: dict[str, Any]
    metrics: dict[str, BaselineMetric]
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"hardware": dict(self.hardware), "metrics": _metrics_dict(self.metrics),
                "provenance": dict(self.provenance)}


@dataclass(frozen=True)
class Baseline:
    """A loaded, validated baseline file."""

    key: dict[str, str]
    metrics: dict[str, BaselineMetric]  # accuracy: judged everywhere
    provenance: dict[str, Any]
    path: Path | None = None
    timings: tuple[TimingBaseline, ...] = ()  # one section per hardware fingerprint

    def timing_for(self, hardware: dict[str, Any] | None) -> TimingBaseline | None:
        """The timing section measured on ``hardware``, or None (other or unknown hardware)."""
        return next((t for t in self.timings if same_hardware(t.hardware, hardware)), None)

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON form (``None`` std/n left out)."""
        return {"key": dict(self.key), "metrics": _metrics_dict(self.metrics),
                "timings": [t.to_dict() for t in self.timings],
                "provenance": dict(self.provenance)}

    @classmethod
    def from_dict(cls, raw: Any, source: str = "baseline", path: Path | None = None) -> Baseline:
        """Validate a baseline dict; every problem is one QABenchError naming file and field."""
        if not isinstance(raw, dict):
            raise QABenchError(f"{source}: a baseline must be a JSON object")
        for section in ("key", "metrics", "provenance"):
            if section not in raw:
                raise QABenchError(f"{source}: missing field {section!r}")
            if not isinstance(raw[section], dict):
                raise QABenchError(f"{source}: field {section!r} must be an object")
        key = raw["key"]
        for name in ("backend", "model", "dataset"):
            if not isinstance(key.get(name), str) or not key[name]:
                raise QABenchError(f"{source}: missing field 'key.{name}'")
        for name in ("measured_by", "date"):
            if name not in raw["provenance"]:
                raise QABenchError(f"{source}: missing field 'provenance.{name}'")
        _check_provenance(f"{source}: field 'provenance", raw["provenance"])
        metrics = {name: _metric(f"{source}: metrics.{name}", name, m)
                   for name, m in raw["metrics"].items()}
        accuracy = {n: m for n, m in metrics.items() if not METRICS[n].hardware_bound}
        legacy = {n: m for n, m in metrics.items() if METRICS[n].hardware_bound}
        timings = [_timing_section(source, i, t) for i, t in enumerate(_list(
            raw.get("timings", []), f"{source}: field 'timings'"))]
        if legacy:  # written before timing sections: a partial fingerprint that matches nothing
            old = raw["provenance"].get("hardware") or {}
            timings.append(TimingBaseline({**old, "legacy": True}, legacy,
                                          {"note": "timings from a file without a fingerprint"}))
        return cls(key=dict(key), metrics=accuracy, provenance=dict(raw["provenance"]),
                   path=path, timings=tuple(timings))


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise QABenchError(f"{where} must be a list")
    return value


def _timing_section(source: str, index: int, raw: Any) -> TimingBaseline:
    where = f"{source}: timings[{index}]"
    if not isinstance(raw, dict):
        raise QABenchError(f"{where} must be an object")
    hardware, metrics = raw.get("hardware"), raw.get("metrics")
    if not isinstance(hardware, dict) or not hardware:
        raise QABenchError(f"{where}: missing field 'hardware' (the fingerprint it was "
                           "measured on)")
    if not isinstance(metrics, dict):
        raise QABenchError(f"{where}: missing field 'metrics'")
    parsed = {name: _metric(f"{where}.metrics.{name}", name, m) for name, m in metrics.items()}
    accuracy = [n for n in parsed if not METRICS[n].hardware_bound]
    if accuracy:
        raise QABenchError(f"{where}.metrics.{accuracy[0]}: accuracy is not per hardware; "
                           "it belongs in the top-level 'metrics'")
    provenance = shapes.obj(f"{where}.provenance", raw.get("provenance"), optional=True)
    return TimingBaseline(dict(hardware), parsed, dict(provenance))


def _check_provenance(where: str, provenance: dict[str, Any]) -> None:
    """The provenance fields that judging reads: what the baseline was measured on."""
    shapes.text(f"{where}.dataset_fingerprint'", provenance.get("dataset_fingerprint"),
                optional=True)
    if "workload" in provenance:  # absent: a legacy baseline, judged by fingerprint only
        shapes.obj(f"{where}.workload'", provenance["workload"])
    for key, values in shapes.obj(f"{where}.settings'", provenance.get("settings"),
                                  optional=True).items():
        shapes.array(f"{where}.settings.{key}'", values)
    hardware = provenance.get("hardware")  # a list of fingerprints; older files: one or text
    if not isinstance(hardware, (list, dict, str, type(None))):
        raise QABenchError(f"{where}.hardware' must be a list of hardware fingerprints, got "
                           f"{shapes.shown(hardware)}")
    runs = provenance.get("runs")
    if runs is not None and (not isinstance(runs, int) or isinstance(runs, bool) or runs < 1):
        raise QABenchError(f"{where}.runs' must be an integer >= 1, got {shapes.shown(runs)}")


def _metric(where: str, name: str, raw: Any) -> BaselineMetric:
    if name not in METRICS:
        raise QABenchError(f"{where.rsplit('.', 1)[0]}: {unknown('metric', name, METRICS)}")
    if not isinstance(raw, dict):
        raise QABenchError(f"{where} must be an object")
    for field_name in ("value", "tolerance", "unit", "higher_is_better"):
        if field_name not in raw:
            raise QABenchError(f"{where}: missing field {field_name!r}")
    spec = METRICS[name]
    if not is_number(raw["value"]):
        raise QABenchError(f"{where}.value must be a finite number, got {raw['value']!r}")
    if not is_number(raw["tolerance"]) or raw["tolerance"] < 0:
        raise QABenchError(f"{where}.tolerance must be a number >= 0, got {raw['tolerance']!r}")
    if raw["unit"] not in UNITS:
        raise QABenchError(f"{where}.unit must be 'points' or 'ratio', got {raw['unit']!r}")
    if raw["unit"] != spec.unit:
        raise QABenchError(f"{where}.unit: {name} is measured in {spec.unit}, not {raw['unit']}")
    if not isinstance(raw["higher_is_better"], bool):
        raise QABenchError(f"{where}.higher_is_better must be true or false")
    if raw["higher_is_better"] != spec.higher_is_better:
        raise QABenchError(f"{where}.higher_is_better: {name} is "
                           f"{'higher' if spec.higher_is_better else 'lower'}-is-better")
    if spec.unit == "ratio" and raw["value"] <= 0:
        raise QABenchError(f"{where}.value must be > 0 for a ratio tolerance")
    std, n = raw.get("std"), raw.get("n")
    if std is not None and (not is_number(std) or std < 0):
        raise QABenchError(f"{where}.std must be a number >= 0, got {std!r}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise QABenchError(f"{where}.n must be an integer >= 1, got {n!r}")
    bounds = [raw.get("min"), raw.get("max")]
    if any(b is not None and not is_number(b) for b in bounds):
        raise QABenchError(f"{where}.min/max must be numbers, got {bounds!r}")
    if spec.unit == "points":  # a score in points lies in 0 .. 100, and so does its spread
        scores = {"value": raw["value"], "tolerance": raw["tolerance"], "std": std,
                  "min": bounds[0], "max": bounds[1]}
        for label, score in scores.items():
            if score is not None and not 0 <= score <= 100:
                raise QABenchError(f"{where}.{label} must be in 0 .. 100 points for {name}, "
                                   f"got {score!r}")
    return BaselineMetric(float(raw["value"]), float(raw["tolerance"]), raw["unit"],
                          raw["higher_is_better"], None if std is None else float(std), n,
                          *(None if b is None else float(b) for b in bounds))


def baseline_path(root: str | os.PathLike, key: dict[str, str]) -> Path:
    """Where the baseline of ``key`` lives under ``root``."""
    return Path(root) / f"{entry_id(key)}.json"


def load_baseline_file(path: str | os.PathLike) -> Baseline:
    """Load and validate one baseline file.

    Raises:
        QABenchError: unreadable file, bad JSON or a schema problem (file and field named).
    """
    return Baseline.from_dict(read_json(path), source=str(path), path=Path(path))


def load_baseline(root: str | os.PathLike, key: dict[str, str]) -> Baseline | None:
    """The baseline of ``key`` under ``root``, or None when there is none yet.

    Raises:
        QABenchError: the file exists but is invalid, or its key belongs to another entry.
    """
    path = baseline_path(root, key)
    if not path.exists():
        return None
    baseline = load_baseline_file(path)
    if entry_id(baseline.key) != entry_id(key):
        raise QABenchError(f"{path}: field 'key' names {entry_id(baseline.key)}, "
                           f"not the entry at this path ({entry_id(key)})")
    return baseline


__all__ = ["ACCURACY_TOLERANCE", "METRICS", "Baseline", "BaselineMetric", "TimingBaseline",
           "baseline_path", "load_baseline", "load_baseline_file"]
