"""What ``qa-bench compare`` says before it compares: runs with nothing in common
(``nothing_shared``: exit 5 in the CLI, never a pass) and runs measured on other hardware
(a refusal unless ``--force``), each in words that name the entries or fields involved."""

from __future__ import annotations

import pytest
from helpers.compare import ENTRY, KEY, make_result

from qa.errors import QABenchError
from qa.reporting.compare import compare_runs, nothing_shared

CPU = {"kind": "cpu", "cpu": "AMD EPYC", "cpu_id": "AuthenticAMD/25/1/1", "cores": 2,
       "threads": 2, "torch_build": "cpu"}


def _models(*names: str, status: str = "ok", pod: str = "pod16") -> list:
    return [make_result(key={**KEY, "model": name, "pod": pod}, status=status) for name in names]


def test_runs_that_share_a_finished_entry_have_something_to_compare() -> None:
    assert nothing_shared([make_result()], [make_result(status="failed"), make_result()]) is None


def test_an_entry_finished_on_one_side_only_is_nothing_to_compare() -> None:
    """Finished in A, failed in B (or the reverse): no measurement on both sides."""
    why = f"no entry finished in both runs ({ENTRY} did not): there is no measurement to compare"
    assert nothing_shared([make_result()], [make_result(status="failed")]) == why
    assert nothing_shared([make_result(status="failed")], [make_result()]) == why


def test_unfinished_shared_entries_are_named_three_at_most() -> None:
    """Only the entries in both runs are named (not one that is in B alone)."""
    a = _models("m1", "m2", "m3", "m4", status="failed")
    b = [*_models("m1", "m2", "m3", "m4", status="failed"), *_models("a0")]
    assert nothing_shared(a, b) == (
        "no entry finished in both runs (ipu/pod16/m1__squad, ipu/pod16/m2__squad, "
        "ipu/pod16/m3__squad did not): there is no measurement to compare")


def test_real_and_emulated_twins_are_named_two_pairs_at_most() -> None:
    real = _models("m1", "m2", "m3")
    emulated = _models("m1", "m2", "m3", pod="pod16-emulated")
    assert nothing_shared(real, emulated) == (
        "real and emulated hardware are not compared (ipu/pod16/m1__squad vs "
        "ipu/pod16-emulated/m1__squad; ipu/pod16/m2__squad vs ipu/pod16-emulated/m2__squad); "
        "use --force to compare anyway")


def test_runs_without_a_common_entry_name_three_of_each_side() -> None:
    assert nothing_shared(_models("m1", "m2", "m3", "m4"), _models("x")) == (
        "the runs share no entry (A: ipu/pod16/m1__squad, ipu/pod16/m2__squad, "
        "ipu/pod16/m3__squad; B: ipu/pod16/x__squad)")
    assert nothing_shared([], _models("x")) == (
        "the runs share no entry (A: none; B: ipu/pod16/x__squad)")
    assert nothing_shared(_models("x"), []) == (
        "the runs share no entry (A: ipu/pod16/x__squad; B: none)")


def test_a_run_without_a_fingerprint_is_not_compared_with_one_that_has_one() -> None:
    """Timings of an unknown machine cannot stand beside a known one's: refused (three of the
    differing fields named, the rest elided), and either way round."""
    fingerprinted, bare = [make_result(hardware=dict(CPU))], [make_result(hardware={})]
    for a, b, line in ((fingerprinted, bare, "kind: cpu -> None; cpu: AMD EPYC -> None; "
                                             "cpu_id: AuthenticAMD/25/1/1 -> None; ..."),
                       (bare, fingerprinted, "kind: None -> cpu; cpu: None -> AMD EPYC; "
                                             "cpu_id: None -> AuthenticAMD/25/1/1; ...")):
        with pytest.raises(QABenchError) as info:
            compare_runs(a, b)
        assert str(info.value) == (f"runs are not comparable: {ENTRY}: hardware differs "
                                   f"({line}); use --force to compare anyway")
    # Two runs without any fingerprint compare as before (nothing to tell them apart).
    assert compare_runs(bare, bare)[1] == []


def test_a_fingerprint_without_identity_fields_says_no_fingerprint() -> None:
    """A fingerprint that records no identity field (e.g. an outside backend's) against none:
    still not the same machine, and the refusal says there is nothing to tell."""
    with pytest.raises(QABenchError) as info:
        compare_runs([make_result(hardware={"replicas": 1})], [make_result(hardware={})])
    assert str(info.value) == (f"runs are not comparable: {ENTRY}: hardware differs "
                               "(no fingerprint); use --force to compare anyway")


def test_entries_in_one_run_only_are_listed_with_the_default_labels() -> None:
    """An entry of A alone and one of B alone: no metric, no unit, named by the run's label
    ("A"/"B" unless the caller names them)."""
    from qa.reporting.compare import Comparison, comparisons_of

    comparisons, problems = comparisons_of(_models("m1"), _models("m2"))
    assert problems == []
    assert comparisons == [
        Comparison("ipu/pod16/m1__squad", "—", None, None, None, None, "", "only in A"),
        Comparison("ipu/pod16/m2__squad", "—", None, None, None, None, "", "only in B")]


def test_comparisons_of_refuses_other_hardware_unless_forced() -> None:
    """``force`` defaults to off: other hardware is a refusal, not a silent comparison."""
    from qa.reporting.compare import comparisons_of

    fingerprinted, bare = [make_result(hardware=dict(CPU))], [make_result(hardware={})]
    with pytest.raises(QABenchError, match="hardware differs"):
        comparisons_of(fingerprinted, bare)
    assert comparisons_of(fingerprinted, bare, force=True)[1] != []


def test_grouping_keeps_the_emulated_pod_unless_asked_to_fold_it() -> None:
    from qa.reporting.compare import _group

    emulated = _models("m1", pod="pod16-emulated")
    assert list(_group(emulated)) == ["ipu/pod16-emulated/m1__squad"]
    assert list(_group(emulated, fold_emulated=True)) == ["ipu/pod16/m1__squad"]


def test_forced_comparison_pairs_real_with_emulated_either_way_round() -> None:
    """With ``force`` both sides fold the ``-emulated`` suffix, so real A meets emulated B (and
    emulated A meets real B) as one entry; not forced, they share nothing."""
    from qa.reporting.compare import comparisons_of

    real, emulated = _models("m1"), _models("m1", pod="pod16-emulated")
    for a, b in ((real, emulated), (emulated, real)):
        assert nothing_shared(a, b, force=True) is None
        assert nothing_shared(a, b) is not None
        comparisons, _ = comparisons_of(a, b, force=True)
        assert {c.entry for c in comparisons} == {"ipu/pod16/m1__squad"}
        assert not any(c.change.startswith("only in") for c in comparisons)


def test_compare_runs_applies_tolerance_overrides() -> None:
    """An 8-point F1 drop is a regression under the default tolerance; a 20-point override
    makes it noise (the override reaches the judgement)."""
    a, b = [make_result(f1=88.0)], [make_result(f1=80.0)]
    assert [c.metric for c in compare_runs(a, b)[1]] == ["f1"]
    assert compare_runs(a, b, tolerances={"f1": 20.0})[1] == []
