"""End to end: a tiny model trained on synthetic data through the real pipeline and CLI."""

from __future__ import annotations

import json

import pytest

from qa.config.schema import RunConfig, apply_overrides
from qa.frontends.cli import main
from qa.run.pipeline import run_entry

# Small enough for CI (about 25 s on 2 cores). Measured (generator v7): this config reaches EM
# 10.0 (seed 42) and 11.0 (seed 7); the same pipeline with learning_rate=0 (an untrained model)
# scores EM 0.0 and 0.5, and so would a pipeline whose labels or offsets are off by a token (every
# answer span wrong). The floor sits between. At 128 tokens most contexts overflow into several
# features, so the overflow path is trained and evaluated too.
E2E = [
    "data.synthetic_train_contexts=200", "data.synthetic_validation_contexts=50",
    "data.max_length=128", "data.doc_stride=64",
    "model.vocab_size=2000", "train.num_train_epochs=3", "train.learning_rate=1e-3",
    "train.micro_batch_size=8", "train.dynamic_padding=true", "train.group_by_length=true",
    "train.compile_eval=false", "torch.device=cpu",
]
EM_FLOOR = 5.0
SHORT = ["train.max_steps=30"]

pytestmark = pytest.mark.e2e  # every test here trains (the module fixture)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    config = apply_overrides(RunConfig(), E2E)
    return run_entry(config, cache_dir=cache, progress=False), config, cache


def test_tiny_model_learns_the_task(trained) -> None:
    result, _, _ = trained
    assert result.status == "ok", result.failure
    assert result.metrics["exact_match"] >= EM_FLOOR
    assert result.metrics["f1"] >= result.metrics["exact_match"]
    timings = result.timings
    assert timings["train_samples_per_s"] > 0 and timings["eval_samples_per_s"] > 0
    assert timings["train_step_s"]["rounds"] == len(timings["train_step_times"]) > 10
    assert result.timings["loss"]["last"] < result.timings["loss"]["first"]
    assert result.efficiency["mfu"] > 0
    assert result.memory["peak_rss_mb"] > 0
    # long contexts overflowed into several features
    assert timings["features"]["validation"] > timings["features"]["validation_examples"]


def test_synthetic_features_never_leave_the_fast_path(trained) -> None:
    """Every batch of the embedded default's data is assembled from pieces: a rejected fast path
    (correct features, several times slower) is a failure here, not a silent slowdown."""
    result, _, _ = trained
    for split in ("train", "validation"):
        counts = result.timings["features"]["fast_path"][split]
        assert counts["batches"] > 0, split
        assert (counts["fallbacks"], counts["reasons"]) == (0, {}), split


def test_time_to_target_is_recorded_and_does_not_touch_training(trained) -> None:
    result, _, cache = trained
    ttt = result.timings["time_to_target"]
    steps = [p["step"] for p in ttt["curve"]]
    assert steps == sorted(steps) and steps[-1] == result.timings["train_steps"]
    assert len(steps) == ttt["evaluations"] >= 10
    assert ttt["metric"] == "exact_match" and ttt["examples"] == 100
    # The crossing, when there is one, is the first curve point at or above the target.
    first = next((p for p in ttt["curve"] if p["exact_match"] >= ttt["target"]), None)
    assert ttt["steps"] == (first["step"] if first else None)
    # Evaluating between steps must not change what training does (no RNG draws, no mode leak).
    base = apply_overrides(RunConfig(), E2E + SHORT + ["target.every=0.2", "target.value=0"])
    watched = run_entry(base, cache_dir=cache, progress=False)
    unwatched = run_entry(apply_overrides(base, ["target.every=0"]), cache_dir=cache,
                          progress=False)
    assert watched.timings["loss"]["curve"] == unwatched.timings["loss"]["curve"]
    assert watched.metrics == unwatched.metrics
    assert "time_to_target" not in unwatched.timings
    assert [p["step"] for p in watched.timings["time_to_target"]["curve"]] == [6, 12, 18, 24, 30]
    assert watched.timings["time_to_target"]["steps"] == 6  # target 0: reached at once


def test_same_seed_same_scores(trained) -> None:
    _, _, cache = trained
    config = apply_overrides(RunConfig(), E2E + SHORT + ["train.seed=7"])
    first = run_entry(config, cache_dir=cache, progress=False)
    again = run_entry(config, cache_dir=cache, progress=False)
    assert first.status == again.status == "ok"
    assert again.metrics == first.metrics
    assert again.timings["loss"]["curve"] == first.timings["loss"]["curve"]
    assert again.dataset_fingerprint == first.dataset_fingerprint


def test_learning_rate_zero_is_caught_by_the_cli_gate(tmp_path, trained, monkeypatch) -> None:
    """A baseline from the good run, then a broken run: exit 1 and EM/F1 marked failed.

    The broken run changes only a judged setting (``qa.gating.comparability``). ``trained`` is
    built on
    ``RunConfig()`` while ``run`` starts from the smoke profile, whose 5 % long contexts (not
    25 %) are other data: the run says so; with fewer steps too (``train.max_steps``, workload)
    it would be "not comparable" to this baseline as well."""
    result, _, cache = trained
    from qa.gating.baseline_build import update_baseline

    update_baseline(tmp_path / "baselines", [result])
    monkeypatch.setenv("QA_BENCH_CACHE", str(cache))
    sets = [arg for item in E2E for arg in ("--set", item)]
    out = tmp_path / "run"
    code = main(["run", "--out", str(out), "--baselines", str(tmp_path / "baselines"),
                 "--no-progress", *sets, "--set", "data.synthetic_long_fraction=0.25",
                 "--set", "train.learning_rate=0"])
    assert code == 1
    verdicts = json.loads((out / "verdicts.json").read_text())["verdicts"]
    failed = {v["metric"] for v in verdicts if v["status"] == "fail"}
    assert {"exact_match", "f1"} <= failed
    report = (out / "report.md").read_text()
    assert "❌" in report
    assert "judged with other settings: train.learning_rate 0.001 -> 0.0" in report


def test_mfu_peak_is_probed_in_the_training_dtype(trained) -> None:
    """A bf16 run is measured against the bf16 matmul peak, an fp32 run against fp32's."""
    result, _, cache = trained
    assert result.efficiency["probe"]["dtype"] == "float32"
    config = apply_overrides(RunConfig(), E2E + SHORT + ["torch.bf16=true"])
    bf16 = run_entry(config, cache_dir=cache, progress=False)
    assert bf16.status == "ok", bf16.failure
    assert bf16.efficiency["probe"]["dtype"] == "bfloat16"
    assert bf16.efficiency["fast_paths"]["bf16"] is True
