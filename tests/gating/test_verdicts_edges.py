"""Verdict paths the field tests do not reach: a busy machine's timings, and emulated against
real hardware (in both directions, and from a fingerprint kept only in the provenance)."""

from __future__ import annotations

from helpers.gating import BASE, HW, KEY, make_baseline, make_result, provenance, timings

from qa.gating.baselines import Baseline
from qa.gating.verdicts import Verdict, gate
from qa.measure.contention import busy
from qa.results.store import entry_id

ENTRY = entry_id(KEY)
EMULATED = {**HW, "emulated": True}


def test_a_busy_machine_turns_judged_timings_into_busy_and_still_judges_accuracy() -> None:
    """Half the CPUs taken by others while the run was timed: a slow throughput is neither a
    failure nor an improvement, its verdict carries the busy share; EM and F1 are judged."""
    contention = {"other_cpu_share": 0.5, "steal_share": 0.0}
    why = busy(contention)
    assert why.startswith("busy machine — other processes used 50 %")
    result = make_result(em=79.0, timings=timings(train_samples_per_s=50.0, compile_s=10.0,
                                                  contention=contention))
    assert gate(result, make_baseline(**BASE)) == [
        Verdict(ENTRY, "exact_match", 79.0, 80.0, -1.0, 0.5, "points", "fail", True,
                "worse than the baseline beyond tolerance"),
        Verdict(ENTRY, "f1", 88.0, 88.0, 0.0, 0.5, "points", "pass", True, ""),
        Verdict(ENTRY, "train_samples_per_s", 50.0, 100.0, -0.5, 0.05, "ratio", "busy", True,
                why),
        Verdict(ENTRY, "compile_s", 10.0, 10.0, 0.0, 0.25, "ratio", "busy", False, why),
    ]


def test_a_quiet_machine_is_judged_as_usual() -> None:
    """Contention under the limit changes nothing: the slow throughput fails."""
    result = make_result(timings=timings(train_samples_per_s=50.0, compile_s=10.0,
                                         contention={"other_cpu_share": 0.01}))
    statuses = {v.metric: v.status for v in gate(result, make_baseline(**BASE))}
    assert statuses == {"exact_match": "pass", "f1": "pass", "train_samples_per_s": "fail",
                        "compile_s": "pass"}


def test_a_real_baseline_does_not_judge_an_emulated_run_and_says_which_is_which() -> None:
    result = make_result(timings=timings(compile_s=10.0), hardware=dict(EMULATED))
    verdicts = gate(result, make_baseline(**BASE))
    assert {v.status for v in verdicts} == {"other_hardware"}
    assert verdicts[0].message == (
        "other hardware — the baseline was measured on real hardware, this run on emulated "
        "hardware: never judged against each other")
    # Accuracy too, with the baseline's value shown.
    assert verdicts[0].metric == "exact_match" and verdicts[0].baseline == 80.0


def test_an_emulated_fingerprint_in_the_provenance_alone_marks_the_baseline_emulated() -> None:
    """An accuracy-only baseline (no timing sections) written on an emulator: its provenance
    lists the fingerprints, and a run on real hardware is not judged against it."""
    baseline = Baseline.from_dict({
        "key": dict(KEY),
        "metrics": {"f1": {"value": 88.0, "tolerance": 0.5, "unit": "points",
                           "higher_is_better": True}},
        "provenance": provenance(hardware=[dict(EMULATED)])})
    assert baseline.timings == ()
    result = make_result(metrics={"f1": 70.0}, seeds=[], timings=timings())
    assert gate(result, baseline) == [
        Verdict(ENTRY, "f1", 70.0, 88.0, None, None, "points", "other_hardware", True,
                "other hardware — the baseline was measured on emulated hardware, this run on "
                "real hardware: never judged against each other")]
