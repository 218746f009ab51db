"""The gates users rely on, pinned: which way each metric is better, the tolerances a baseline
gets when written, and the σ-gate from two seeds on.

A flipped direction would report an EM drop as "improved — update the baseline"; these tests say
the direction of every gated metric out loud, so changing one is a decision, not an accident.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.gating import HW, KEY, by_metric, make_result

from qa.gating.baseline_build import baseline_from_results, measured_tolerance
from qa.gating.baselines import Baseline
from qa.gating.verdicts import gate
from qa.reporting.compare import compare_runs
from qa.results.metricspec import ACCURACY_TOLERANCE, METRICS

# The direction users read every gated metric in.
HIGHER_IS_BETTER = {"exact_match": True, "f1": True, "train_samples_per_s": True,
                    "eval_samples_per_s": True, "compile_s": False, "compile_warm_s": False}
# (baseline value, much worse, much better) per metric.
VALUES = {"exact_match": (80.0, 70.0, 90.0), "f1": (88.0, 78.0, 98.0),
          "train_samples_per_s": (100.0, 50.0, 200.0),
          "eval_samples_per_s": (200.0, 100.0, 400.0),
          "compile_s": (10.0, 20.0, 5.0), "compile_warm_s": (1.0, 3.0, 0.2)}


def result_with(name: str, value: float) -> Any:
    """A result measuring every metric, ``name`` at ``value``."""
    result = make_result(timings={
        "train_samples_per_s": VALUES["train_samples_per_s"][0],
        "eval_samples_per_s": VALUES["eval_samples_per_s"][0],
        "compile": {"cold_s": VALUES["compile_s"][0], "warm_s": VALUES["compile_warm_s"][0]}})
    if name in ("exact_match", "f1"):
        result.metrics[name] = value
        result.seeds = [{"seed": 42, **result.metrics}]
    elif name.startswith("compile"):
        result.timings["compile"]["cold_s" if name == "compile_s" else "warm_s"] = value
    else:
        result.timings[name] = value
    return result


def baseline_for(name: str) -> Baseline:
    """A baseline file for ``name`` written with the direction users expect."""
    entry = {"value": VALUES[name][0], "tolerance": 0.1, "unit": METRICS[name].unit,
             "higher_is_better": HIGHER_IS_BETTER[name]}
    timing = METRICS[name].hardware_bound
    return Baseline.from_dict({
        "key": dict(KEY), "metrics": {} if timing else {name: entry},
        "timings": [{"hardware": dict(HW), "metrics": {name: entry}}] if timing else [],
        "provenance": {"measured_by": "test", "date": "2024-01-01"}})


def test_every_gated_metric_has_a_stated_direction() -> None:
    assert {name: spec.higher_is_better for name, spec in METRICS.items()} == HIGHER_IS_BETTER


@pytest.mark.parametrize("name", sorted(HIGHER_IS_BETTER))
def test_worse_fails_and_better_is_improved(name: str) -> None:
    baseline = baseline_for(name)
    _, worse, better = VALUES[name]
    assert by_metric(gate(result_with(name, worse), baseline))[name].status == "fail"
    assert by_metric(gate(result_with(name, better), baseline))[name].status == "improved"


@pytest.mark.parametrize("name", sorted(HIGHER_IS_BETTER))
def test_sdk_compare_calls_worse_a_regression(name: str) -> None:
    before, worse, better = VALUES[name]
    tolerance = {name: 0.1}
    _, regressions = compare_runs([result_with(name, before)], [result_with(name, worse)],
                                  tolerances=tolerance)
    assert [r.metric for r in regressions] == [name]
    _, regressions = compare_runs([result_with(name, before)], [result_with(name, better)],
                                  tolerances=tolerance)
    assert regressions == []


def test_written_baselines_get_the_documented_tolerances() -> None:
    """Accuracy: 1.0 point; timings: the floors 5 % (throughput), 25 % (cold compile) and 50 %
    (warm compile) when the measured spread is narrower."""
    steady = [result_with("f1", 88.0) for _ in range(3)]
    written = baseline_from_results(steady)
    assert ACCURACY_TOLERANCE == 1.0
    assert {n: m["tolerance"] for n, m in written["metrics"].items()} == {
        "exact_match": 1.0, "f1": 1.0}
    (section,) = written["timings"]
    assert {n: m["tolerance"] for n, m in section["metrics"].items()} == {
        "train_samples_per_s": 0.05, "eval_samples_per_s": 0.05, "compile_s": 0.25,
        "compile_warm_s": 0.5}
    assert measured_tolerance("eval_samples_per_s", steady) == 0.05


@pytest.mark.parametrize(("n", "width"), [(1, 0.5), (2, 3.0), (3, 3.0)])
def test_sigma_gate_widens_from_two_seeds_on(n: int, width: float) -> None:
    """std 1.0 over n seeds: from two seeds on the gate is 3σ = 3.0 points, not 0.5."""
    baseline = Baseline.from_dict({
        "key": dict(KEY), "metrics": {"f1": {"value": 88.0, "tolerance": 0.5, "unit": "points",
                                             "higher_is_better": True, "std": 1.0, "n": n}},
        "provenance": {"measured_by": "test", "date": "2024-01-01"}})
    verdict = by_metric(gate(make_result(f1=86.0), baseline))["f1"]
    assert verdict.tolerance == pytest.approx(width)
    assert verdict.status == ("fail" if n == 1 else "pass")
