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
