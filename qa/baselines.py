"""Baselines: per-entry JSON files of expected metrics, each with a tolerance and a direction.

A baseline lives at ``<root>/<backend>/<pod-or-device>/<model>__<dataset>.json``, the entry's
``results.entry_id(key)`` plus ``.json``. The diff of a rewritten file is reviewed like code.

Gate rules (``compare``):

- ``"points"`` metrics (EM, F1) have an absolute tolerance: ``value - baseline``.
- ``"ratio"`` metrics (throughput, compile time) have a relative one: ``value / baseline - 1``.
- Worse than the tolerance in the metric's bad direction is ``"fail"``; better than it in the
  good direction is ``"improved"`` (update the baseline), never a failure. The boundary itself
  passes (``IMPRECISION`` absorbs float rounding such as ``95 / 100 - 1``).
- Multi-seed gate: where the baseline metric carries ``std`` with ``n > 1`` the effective
  tolerance is ``max(tolerance, SIGMA_GATE * std)``, so seed noise wider than the configured
  tolerance cannot fail a run on its own. For ratio metrics ``std`` is made relative first.

Tolerances written by ``update_baseline`` (why these numbers):

- Accuracy: ``ACCURACY_TOLERANCE`` = 1.0 point. Over SQuAD v1.1 dev (10,570 questions) the
  binomial standard error of EM near 80 % is about 0.4 points, and seed-to-seed spread of BERT
  fine-tuning is of the same order, so 1.0 point is about 2.5 standard errors: a real drop,
  not noise. A tolerance already in the file (set by hand) is kept on update, and multi-seed
  baselines widen it through the σ-gate above.
- Timings are derived from what was measured, not guessed: ``max(floor, IQR_K * IQR / median)``
  of the per-step times (and the range / median over repeated runs where there are several).
  ``IQR_K`` = 1.5 is Tukey's outlier fence: a mean throughput moving further than the fence of
  single steps is not step noise. The floors cover run-to-run noise that one run cannot see
  (host load, clocks, file cache): 5 % for throughput, 25 % for a cold compile (dominated by
  disk and CPU contention), 50 % for a warm compile (sub-second, so relatively noisy).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qa.errors import QABenchError, unknown
from qa.references import Reference as Reference  # re-exported: published numbers, never gates
from qa.references import load_references as load_references
from qa.results import RunResult, entry_id, read_json, write_json_atomic

UNITS = ("points", "ratio")
VERDICTS = ("pass", "fail", "improved", "missing")
ACCURACY_TOLERANCE = 1.0
IQR_K = 1.5
SIGMA_GATE = 3.0
IMPRECISION = 1e-9


@dataclass(frozen=True)
class MetricSpec:
    """One gated metric: where it sits in a RunResult, its unit, direction and default tolerance."""

    name: str
    unit: str
    higher_is_better: bool
    default_tolerance: float
    sources: tuple[str, ...]  # dotted paths into the RunResult; the first one present wins
    spread_key: str | None = None  # timings entry with median/iqr of the underlying step times

    def extract(self, result: RunResult) -> float | None:
        """The metric's value in ``result``, or None where it was not measured."""
        for source in self.sources:
            value: Any = result
            for part in source.split("."):
                value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
                if value is None:
                    break
            if _number(value):
                return float(value)
        return None


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        # SQuAD v2 results say "exact" where v1.1 says "exact_match": both gate as exact_match.
        MetricSpec("exact_match", "points", True, ACCURACY_TOLERANCE,
                   ("metrics.exact_match", "metrics.exact")),
        MetricSpec("f1", "points", True, ACCURACY_TOLERANCE, ("metrics.f1",)),
        # The spread is of seconds per padded token: with dynamic padding the raw step times
        # vary with batch length (workload), which is not noise.
        MetricSpec("train_samples_per_s", "ratio", True, 0.05, ("timings.train_samples_per_s",),
                   spread_key="train_token_s"),
        MetricSpec("eval_samples_per_s", "ratio", True, 0.05, ("timings.eval_samples_per_s",),
                   spread_key="eval_step_s"),
        # The cold compile gates; older results hold a single "compile_s".
        MetricSpec("compile_s", "ratio", False, 0.25, ("timings.compile.cold_s",
                                                        "timings.compile_s")),
        MetricSpec("compile_warm_s", "ratio", False, 0.5, ("timings.compile.warm_s",)),
    )
}


@dataclass(frozen=True)
class BaselineMetric:
    """Expected value of one metric with its tolerance (absolute points or relative ratio)."""

    value: float
    tolerance: float
    unit: str
    higher_is_better: bool
    std: float | None = None
    n: int | None = None

    def effective_tolerance(self) -> float:
        """The tolerance widened by the σ-gate where seed statistics exist."""
        if self.std is None or (self.n or 0) <= 1:
            return self.tolerance
        sigma = self.std if self.unit == "points" else self.std / abs(self.value)
        return max(self.tolerance, SIGMA_GATE * sigma)


@dataclass(frozen=True)
class Baseline:
    """A loaded, validated baseline file."""

    key: dict[str, str]
    metrics: dict[str, BaselineMetric]
    provenance: dict[str, Any]
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON form (``None`` std/n left out)."""
        metrics = {
            name: {k: v for k, v in asdict(m).items() if v is not None}
            for name, m in self.metrics.items()
        }
        return {"key": dict(self.key), "metrics": metrics, "provenance": dict(self.provenance)}

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
        metrics = {name: _metric(source, name, m) for name, m in raw["metrics"].items()}
        return cls(key=dict(key), metrics=metrics, provenance=dict(raw["provenance"]), path=path)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric(source: str, name: str, raw: Any) -> BaselineMetric:
    where = f"{source}: metrics.{name}"
    if name not in METRICS:
        raise QABenchError(f"{source}: {unknown('metric', name, METRICS)}")
    if not isinstance(raw, dict):
        raise QABenchError(f"{where} must be an object")
    for field_name in ("value", "tolerance", "unit", "higher_is_better"):
        if field_name not in raw:
            raise QABenchError(f"{where}: missing field {field_name!r}")
    spec = METRICS[name]
    if not _number(raw["value"]):
        raise QABenchError(f"{where}.value must be a finite number, got {raw['value']!r}")
    if not _number(raw["tolerance"]) or raw["tolerance"] < 0:
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
    if std is not None and (not _number(std) or std < 0):
        raise QABenchError(f"{where}.std must be a number >= 0, got {std!r}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise QABenchError(f"{where}.n must be an integer >= 1, got {n!r}")
    return BaselineMetric(float(raw["value"]), float(raw["tolerance"]), raw["unit"],
                          raw["higher_is_better"], None if std is None else float(std), n)


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

    @property
    def failed(self) -> bool:
        """True only for a regression beyond tolerance (or a gated metric not measured)."""
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as persisted in ``verdicts.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Verdict:
        """Inverse of ``to_dict``; unknown keys are ignored."""
        return cls(**{k: raw.get(k) for k in cls.__dataclass_fields__ if k in raw})


def judge(value: float, reference: float, tolerance: float, unit: str,
          higher_is_better: bool) -> tuple[float, str]:
    """Compare ``value`` with ``reference``: ``(delta, "pass" | "fail" | "improved")``.

    ``delta`` is ``value - reference`` for points and ``value / reference - 1`` for ratios.
    """
    if unit == "points":
        delta = value - reference
    elif reference == 0:
        delta = 0.0 if value == 0 else math.copysign(math.inf, value)
    else:
        delta = value / reference - 1.0
    gain = delta if higher_is_better else -delta
    if gain < -(tolerance + IMPRECISION):
        return delta, "fail"
    if gain > tolerance + IMPRECISION:
        return delta, "improved"
    return delta, "pass"


def compare(result: RunResult, baseline: Baseline | None) -> list[Verdict]:
    """Judge every measured or baselined metric of ``result`` against ``baseline``.

    A metric the run measured but the baseline lacks (or no baseline at all) is ``"missing"``;
    a metric the baseline gates but the run did not measure is ``"fail"``.
    """
    entry = entry_id(result.key)
    gated = dict(baseline.metrics) if baseline else {}
    if result.status != "ok":
        return [Verdict(entry, name, None, m.value, None, m.effective_tolerance(), m.unit, "fail",
                        m.higher_is_better, f"run {result.status}: not measured")
                for name, m in gated.items()]
    verdicts = []
    for name, spec in METRICS.items():
        value = spec.extract(result)
        expected = gated.get(name)
        if expected is None:
            if value is not None:
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
        verdicts.append(Verdict(entry, name, value, expected.value, delta, tolerance,
                                expected.unit, status, expected.higher_is_better, message))
    return verdicts


def accuracy_samples(result: RunResult, name: str) -> list[float]:
    """Per-seed values of an accuracy metric (the result's mean when it has no seed list)."""
    spec = METRICS[name]
    keys = [source.rsplit(".", 1)[-1] for source in spec.sources]
    per_seed = [next((s[k] for k in keys if s.get(k) is not None), None) for s in result.seeds]
    if per_seed and all(v is not None for v in per_seed):
        return [float(v) for v in per_seed]
    value = spec.extract(result)
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
    values = [v for v in (spec.extract(r) for r in results) if v is not None]
    if len(values) >= 2 and statistics.median(values) > 0:
        spreads.append((max(values) - min(values)) / statistics.median(values))
    return round(max(spreads), 4)


def baseline_from_results(results: list[RunResult], previous: Baseline | None = None,
                          accuracy_tolerance: float | None = None) -> dict[str, Any]:
    """Build a baseline dict for one entry from its ok results (repeats and seeds pooled).

    Accuracy: mean over all seeds, with ``std`` and ``n``. Timings: the median over results with
    a tolerance from the measured spread (``measured_tolerance``). An accuracy tolerance already
    in ``previous`` is kept unless ``accuracy_tolerance`` is given.

    Raises:
        QABenchError: no ok result, or results of different entries.
    """
    ok = [r for r in results if r.status == "ok"]
    if not ok:
        raise QABenchError("cannot build a baseline: no successful result")
    entries = {entry_id(r.key) for r in ok}
    if len(entries) > 1:
        raise QABenchError(f"cannot build one baseline from several entries: {sorted(entries)}")
    metrics: dict[str, dict[str, Any]] = {}
    for name, spec in METRICS.items():
        if spec.unit == "points":
            samples = [v for r in ok for v in accuracy_samples(r, name)]
            if not samples:
                continue
            kept = previous.metrics.get(name) if previous else None
            tolerance = accuracy_tolerance if accuracy_tolerance is not None else (
                kept.tolerance if kept else spec.default_tolerance)
            entry = {"value": round(statistics.fmean(samples), 4), "tolerance": tolerance,
                     "n": len(samples)}
            if len(samples) > 1:
                entry["std"] = round(statistics.stdev(samples), 4)
        else:
            values = [v for v in (spec.extract(r) for r in ok) if v is not None]
            if not values or statistics.median(values) <= 0:
                continue
            entry = {"value": round(statistics.median(values), 4),
                     "tolerance": measured_tolerance(name, ok)}
        metrics[name] = {**entry, "unit": spec.unit, "higher_is_better": spec.higher_is_better}
    return {"key": dict(ok[0].key), "metrics": metrics, "provenance": _provenance(ok)}


def _provenance(results: list[RunResult]) -> dict[str, Any]:
    env = results[-1].environment or {}
    versions = dict(env.get("versions") or {})
    hardware = {k: env[k] for k in ("cpu", "cores", "gpu", "cuda") if env.get(k) is not None}
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
        "hardware": hardware,
        "seeds": sorted(seeds),
        "runs": len(results),
        "dataset_fingerprint": results[-1].dataset_fingerprint,
    }


def _own_version() -> str:
    from qa import __version__

    return __version__


def update_baseline(root: str | os.PathLike, results: list[RunResult],
                    accuracy_tolerance: float | None = None) -> list[Path]:
    """Rewrite the baseline file of every entry that has an ok result; atomic per file.

    Entries whose results all failed are left untouched (a failure is no new baseline).

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
        data = baseline_from_results(group, previous, accuracy_tolerance)
        Baseline.from_dict(data, source=str(path))  # never write what load would reject
        written.append(write_json_atomic(path, data))
    return written
