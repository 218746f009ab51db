"""SDK before/after comparison: verdicts, refusals (fingerprint, config) and --force."""

from __future__ import annotations

import pytest
from helpers.compare import KEY, make_result, verdicts

from qa.config.schema import RunConfig, config_hash
from qa.errors import QABenchError
from qa.reporting.compare import compare_runs, config_differences


def test_identical_runs_are_within_noise() -> None:
    table, regressions = compare_runs([make_result()], [make_result()])
    assert regressions == []
    assert set(verdicts(table).values()) == {"✅ within noise"}
    assert "| A " in table and "| B " in table


def test_regressions_and_improvements_are_flagged() -> None:
    before = [make_result()]
    after = [make_result(f1=86.5, sps=340.0, compile_cold=20.0)]  # -1.5 pt, -15 %, faster
    table, regressions = compare_runs(before, after, a_label="SDK 3.2", b_label="SDK 3.3")
    found = verdicts(table)
    assert found["f1"] == "❌ regression" and found["train_samples_per_s"] == "❌ regression"
    assert found["compile_s"] == "⬆️ improvement"
    assert found["exact_match"] == "✅ within noise"
    assert {r.metric for r in regressions} == {"f1", "train_samples_per_s"}
    f1 = next(r for r in regressions if r.metric == "f1")
    assert f1.delta == pytest.approx(-1.5) and f1.relative == pytest.approx(86.5 / 88 - 1)
    assert "SDK 3.2 → SDK 3.3" in table and "-15.0%" in table


def test_timing_tolerance_comes_from_each_runs_spread() -> None:
    noisy = dict(iqr=0.04)  # 1.5 × IQR/median = 15 %: a 10 % drop is noise
    _, regressions = compare_runs([make_result(**noisy)], [make_result(sps=360.0, **noisy)])
    assert regressions == []
    _, regressions = compare_runs([make_result()], [make_result(sps=360.0)])
    assert [r.metric for r in regressions] == ["train_samples_per_s"]


def test_seed_spread_widens_the_accuracy_gate() -> None:
    seeds = [{"seed": s, "exact_match": 81.0, "f1": f} for s, f in ((1, 87.0), (2, 89.0))]
    _, regressions = compare_runs([make_result(seeds=seeds)], [make_result(f1=86.0)])
    assert regressions == []  # 3σ = 4.2 points > the 2-point drop


def test_refuses_different_dataset_fingerprints_unless_forced() -> None:
    before, after = [make_result()], [make_result(dataset_fingerprint="fp2")]
    with pytest.raises(QABenchError, match="dataset fingerprints differ.*--force"):
        compare_runs(before, after)
    table, _ = compare_runs(before, after, force=True)
    assert "Forced comparison" in table and "fp1 vs fp2" in table
    assert verdicts(table)["f1"] == "✅ within noise"


def test_refuses_different_configs_unless_forced() -> None:
    changed = RunConfig().to_dict()
    changed["train"]["learning_rate"] = 5e-5
    with pytest.raises(QABenchError, match="train.learning_rate: 0.001 -> 5e-05"):
        compare_runs([make_result()], [make_result(config=changed)])
    table, _ = compare_runs([make_result()], [make_result(config=changed)], force=True)
    assert "configs differ" in table


def test_hardware_and_local_paths_may_differ() -> None:
    moved = RunConfig().to_dict()
    moved["hardware"].update(threads=8, replicas=4, pod="pod64")
    moved["data"]["squad_dir"] = "/elsewhere"
    assert config_hash(moved) == config_hash(RunConfig().to_dict())
    assert config_differences(moved, RunConfig().to_dict()) == []
    _, regressions = compare_runs([make_result()], [make_result(config=moved)])
    assert regressions == []


def test_entries_in_one_run_only_are_listed() -> None:
    other = make_result(key={**KEY, "model": "roberta-base"})
    table, regressions = compare_runs([make_result(), other], [make_result()])
    assert "`ipu/pod16/roberta-base__squad` — only in A" in table
    table, _ = compare_runs([make_result()], [make_result(), other])
    assert "only in B" in table
    assert regressions == []


def test_a_run_that_now_fails_is_a_regression() -> None:
    table, regressions = compare_runs([make_result()], [make_result(status="failed")])
    (regression,) = regressions
    assert regression.metric == "status" and "failed at compile" in regression.note
    assert "❌ regression" in table
    _, regressions = compare_runs([make_result(status="failed")], [make_result()])
    assert regressions == []
