"""Every field of a verdict, on every path of ``qa.gating.verdicts.compare``.

The report and ``verdicts.json`` show each verdict's entry, value, baseline, delta, tolerance,
unit, direction and message; a verdict with the right status but a lost baseline value or
tolerance would print a wrong row. So these tests compare whole ``Verdict`` objects.
"""

from __future__ import annotations

import pytest
from helpers.gating import BASE, HW, KEY, make_baseline, make_result, provenance, timings

from qa.gating.baselines import Baseline
from qa.gating.verdicts import IMPRECISION, Verdict, gate, judge
from qa.measure.hardware import describe
from qa.results.store import entry_id

ENTRY = entry_id(KEY)
def test_judged_metrics_carry_value_baseline_delta_tolerance_and_message() -> None:
    result = make_result(em=79.0, f1=89.0, seeds=[{"seed": 42, "exact_match": 79.0, "f1": 89.0}],
                         timings=timings(train_samples_per_s=100.0, eval_samples_per_s=150.0,
                                         compile_s=10.0))
    assert gate(result, make_baseline(**BASE)) == [
        Verdict(ENTRY, "exact_match", 79.0, 80.0, -1.0, 0.5, "points", "fail", True,
                "worse than the baseline beyond tolerance"),
        Verdict(ENTRY, "f1", 89.0, 88.0, 1.0, 0.5, "points", "improved", True,
                "improved — update the baseline"),
        Verdict(ENTRY, "train_samples_per_s", 100.0, 100.0, 0.0, 0.05, "ratio", "pass", True, ""),
        Verdict(ENTRY, "eval_samples_per_s", 150.0, None, None, None, "ratio", "missing", True,
                "not in the baseline"),
        Verdict(ENTRY, "compile_s", 10.0, 10.0, 0.0, 0.25, "ratio", "pass", False, ""),
    ]


def test_a_metric_neither_measured_nor_gated_skips_only_itself() -> None:
    """No eval throughput in run or baseline: the compile time after it is still judged."""
    result = make_result(timings=timings(train_samples_per_s=100.0, compile_s=20.0))
    statuses = {v.metric: v.status for v in gate(result, make_baseline(**BASE))}
    assert statuses == {"exact_match": "pass", "f1": "pass", "train_samples_per_s": "pass",
                        "compile_s": "fail"}


def test_gated_but_not_measured_fails_with_the_baseline_shown() -> None:
    """...and the metrics after it are still judged."""
    result = make_result(timings=timings(compile_s=10.0))
    verdicts = {v.metric: v for v in gate(result, make_baseline(**BASE))}
    assert verdicts["train_samples_per_s"] == Verdict(
        ENTRY, "train_samples_per_s", None, 100.0, None, 0.05, "ratio", "fail", True,
        "gated by the baseline but not measured")
    assert verdicts["compile_s"].status == "pass"


def test_an_accuracy_only_baseline_reports_measured_timings_as_missing() -> None:
    """No timing section at all is not "other hardware": there is nothing to compare with."""
    baseline = Baseline.from_dict({
        "key": dict(KEY), "metrics": {"f1": {"value": 88.0, "tolerance": 0.5, "unit": "points",
                                             "higher_is_better": True}},
        "provenance": provenance()})
    assert baseline.timings == ()
    result = make_result(timings=timings(compile_s=9.0))
    verdicts = {v.metric: v for v in gate(result, baseline)}
    assert verdicts["compile_s"] == Verdict(ENTRY, "compile_s", 9.0, None, None, None, "ratio",
                                            "missing", False, "not in the baseline")


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_the_tolerance_edge_with_its_float_slack_passes(higher_is_better: bool) -> None:
    """A gain of exactly the tolerance plus IMPRECISION (the slack for float arithmetic) is
    inside the band, whichever way: neither a failure nor an improvement."""
    edge = 0.5 + IMPRECISION
    for value in (edge, -edge):
        assert judge(value, 0.0, 0.5, "points", higher_is_better) == (value, "pass")
    assert judge(-2 * edge, 0.0, 0.5, "points", True)[1] == "fail"


def test_a_failed_run_fails_every_gated_metric_with_its_baseline() -> None:
    result = make_result(status="failed")
    assert gate(result, make_baseline(**BASE)) == [
        Verdict(ENTRY, "exact_match", None, 80.0, None, 0.5, "points", "fail", True,
                "run failed: not measured"),
        Verdict(ENTRY, "f1", None, 88.0, None, 0.5, "points", "fail", True,
                "run failed: not measured"),
        Verdict(ENTRY, "train_samples_per_s", None, 100.0, None, 0.05, "ratio", "fail", True,
                "run failed: not measured"),
        Verdict(ENTRY, "compile_s", None, 10.0, None, 0.25, "ratio", "fail", False,
                "run failed: not measured"),
    ]


def test_without_a_baseline_file_everything_measured_is_missing() -> None:
    result = make_result(timings=timings(compile_s=3.0))
    assert gate(result, None) == [
        Verdict(ENTRY, "exact_match", 80.0, None, None, None, "points", "missing", True,
                "no baseline file"),
        Verdict(ENTRY, "f1", 88.0, None, None, None, "points", "missing", True,
                "no baseline file"),
        Verdict(ENTRY, "compile_s", 3.0, None, None, None, "ratio", "missing", False,
                "no baseline file"),
    ]


def test_timings_from_other_hardware_name_both_machines_and_every_difference() -> None:
    first = {**HW, "cpu": "Other CPU", "cpu_id": "Other/1/1/1"}
    second = {**HW, "cores": 2, "threads": 2}
    accuracy = make_baseline(**{k: v for k, v in BASE.items() if k in ("exact_match", "f1")})
    section = {"metrics": {"compile_s": {"value": 12.0, "tolerance": 0.25, "unit": "ratio",
                                         "higher_is_better": False}}}
    baseline = Baseline.from_dict({
        "key": dict(KEY), "metrics": {n: {"value": m.value, "tolerance": m.tolerance,
                                          "unit": m.unit, "higher_is_better": m.higher_is_better}
                                      for n, m in accuracy.metrics.items()},
        "timings": [{"hardware": first, **section},
                    {"hardware": second, "metrics": {
                        "train_samples_per_s": {"value": 50.0, "tolerance": 0.05,
                                                "unit": "ratio", "higher_is_better": True}}}],
        "provenance": provenance()})
    result = make_result(timings=timings(train_samples_per_s=100.0, eval_samples_per_s=200.0,
                                         compile_s=10.0))
    why = (f"other hardware — baseline: {describe(first)} (and 1 more); this run: "
           f"{describe(HW)} (cpu: Other CPU -> Test CPU; cpu_id: Other/1/1/1 -> Test/25/1/1)")
    verdicts = gate(result, baseline)
    assert [v.status for v in verdicts] == ["pass", "pass", "other_hardware", "other_hardware",
                                            "other_hardware"]
    assert verdicts[2:] == [
        Verdict(ENTRY, "train_samples_per_s", 100.0, 50.0, None, None, "ratio",
                "other_hardware", True, why),
        Verdict(ENTRY, "eval_samples_per_s", 200.0, None, None, None, "ratio",
                "other_hardware", True, why),
        Verdict(ENTRY, "compile_s", 10.0, 12.0, None, None, "ratio", "other_hardware", False,
                why),
    ]


def test_one_other_machine_is_named_without_a_count() -> None:
    other = {**HW, "cores": 2, "threads": 2}
    baseline = make_baseline(hardware=other, compile_s={"value": 10.0, "tolerance": 0.25})
    (verdict,) = gate(make_result(metrics={}, seeds=[], timings=timings(compile_s=9.0)),
                         baseline)
    assert verdict.message == (f"other hardware — baseline: {describe(other)}; this run: "
                               f"{describe(HW)} (cores: 2 -> 8; threads: 2 -> 8)")


def test_a_timing_without_any_fingerprint_says_so() -> None:
    """A file from before fingerprints, judged for a run that has none: no field to compare."""
    legacy = Baseline.from_dict({
        "key": dict(KEY), "metrics": {"compile_s": {"value": 10.0, "tolerance": 0.25,
                                                    "unit": "ratio", "higher_is_better": False}},
        "provenance": provenance()})
    result = make_result(metrics={}, seeds=[], timings=timings(compile_s=9.0), hardware={})
    (verdict,) = gate(result, legacy)
    assert verdict.status == "other_hardware"
    assert verdict.message.endswith("this run: unknown hardware (no fingerprint)")
    assert " more)" not in verdict.message


def test_not_comparable_shows_every_metric_beside_this_hardwares_baseline() -> None:
    """A baseline of other data judges nothing, but the report still shows each metric measured
    or baselined beside the baseline's number — for a timing, the number of the run's own
    hardware where the file has one (the first section is another machine's)."""
    other = {**HW, "cpu_id": "Other/1/1/1"}
    ratio = {"unit": "ratio", "higher_is_better": True}
    baseline = Baseline.from_dict({
        "key": dict(KEY),
        "metrics": {n: {"value": m["value"], "tolerance": m["tolerance"], "unit": "points",
                        "higher_is_better": True} for n, m in BASE.items()
                    if n in ("exact_match", "f1")},
        "timings": [
            {"hardware": other, "metrics": {
                "train_samples_per_s": {"value": 50.0, "tolerance": 0.05, **ratio},
                "compile_warm_s": {"value": 2.0, "tolerance": 0.5, "unit": "ratio",
                                   "higher_is_better": False}}},
            {"hardware": dict(HW), "metrics": {
                "train_samples_per_s": {"value": 100.0, "tolerance": 0.05, **ratio}}}],
        "provenance": provenance()})
    # eval measured but never baselined; compile_s neither (skipped, and only it);
    # compile_warm_s baselined on the other machine only, not measured.
    result = make_result(em=79.0, f1=89.0, dataset_fingerprint="fp2",
                         timings=timings(train_samples_per_s=90.0, eval_samples_per_s=150.0))
    why = "not comparable — dataset fingerprint: fp1 -> fp2"
    assert gate(result, baseline) == [
        Verdict(ENTRY, "exact_match", 79.0, 80.0, None, None, "points", "not_comparable", True,
                why),
        Verdict(ENTRY, "f1", 89.0, 88.0, None, None, "points", "not_comparable", True, why),
        Verdict(ENTRY, "train_samples_per_s", 90.0, 100.0, None, None, "ratio",
                "not_comparable", True, why),
        Verdict(ENTRY, "eval_samples_per_s", 150.0, None, None, None, "ratio", "not_comparable",
                True, why),
        Verdict(ENTRY, "compile_warm_s", None, 2.0, None, None, "ratio", "not_comparable",
                False, why),
    ]
