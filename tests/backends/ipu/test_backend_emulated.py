"""The IPU path end to end: qa-bench's ipu backend, optimum-graphcore's real trainer, emulated IPUs.

Runs only in ``tox -e ipu-emulated`` (optimum-graphcore installed, ``tests/emulation`` on the
path, ``QA_BENCH_IPU_EMULATION`` set); elsewhere it is skipped with that reason. The poptorch
emulation stands in for the hardware; everything above it is the code under test: the
``ipu-emulated`` profile's pod4 and pod16 entries go through compile, train (with time-to-target
evaluations mid-training), predict, postprocess, score, RunResult and the report.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from qa.backends.ipu.backend import IPUBackend, emulated
from qa.run import profiles
from qa.run.runner import RunOptions, RunSummary, run_entries

READY = bool(os.environ.get("QA_BENCH_IPU_EMULATION")) and emulated() and \
    IPUBackend.available()[0]
if os.environ.get("QA_BENCH_REQUIRE_IPU_EMULATION") and not READY:
    # The tox env must never pass by skipping everything.
    raise RuntimeError(f"the IPU emulation is not usable here: {IPUBackend.available()[1]}")
pytestmark = pytest.mark.skipif(
    not READY, reason="needs the ipu-emulated tox env (optimum-graphcore over tests/emulation)")

#: Replicas per pod for the tiny BERT's 4-IPU pipeline (qa/backends/ipu/configs/tiny-bert.json);
#: the profile's gradient accumulation (8) is at least its 7 training pipeline stages.
REPLICAS = {"pod4": 1, "pod16": 4}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("QA_BENCH_EMULATED_OUT")  # tox keeps the run folder for the log
    return Path(keep) if keep else tmp_path_factory.mktemp("ipu-emulated")


@pytest.fixture(scope="module")
def run(out_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunSummary:
    profile = profiles.load_profile("ipu-emulated")
    entries = profiles.expand(profile)
    options = RunOptions(out_dir=out_dir / "trained", progress=False,
                         cache_dir=tmp_path_factory.mktemp("cache"),
                         baselines_root=tmp_path_factory.mktemp("baselines"))
    return run_entries(entries, options)


@pytest.fixture(scope="module")
def untrained(out_dir: Path, run: RunSummary) -> dict:
    """The pod4 entry with learning rate 0 (weights never move: two steps say it all)."""
    profile = profiles.select(profiles.load_profile("ipu-emulated"), pods=["pod4"])
    entries = profiles.expand(profile, overrides=["train.learning_rate=0", "train.max_steps=2",
                                                  "target.every=0"])
    summary = run_entries(entries, RunOptions(out_dir=out_dir / "lr0", progress=False))
    return summary.results[0].metrics


@pytest.fixture(scope="module")
def half(out_dir: Path, run: RunSummary) -> object:
    """The pod4 entry in fp16 (the seed's precision path: loss scaling 64, fp16 weights and
    accumulators, stochastic rounding), short: fp16 is software-emulated on a CPU."""
    profile = profiles.select(profiles.load_profile("ipu-emulated"), pods=["pod4"])
    entries = profiles.expand(profile, overrides=["ipu.fp32=false", "train.max_steps=24",
                                                  "target.every=0"])
    summary = run_entries(entries, RunOptions(out_dir=out_dir / "fp16", progress=False))
    return summary.results[0]


def test_fp16_path_runs_and_learns(half: object) -> None:
    assert half.status == "ok", half.failure
    assert half.config["ipu"]["fp32"] is False and half.config["train"]["loss_scaling"] == 64
    curve = half.timings["loss"]["curve"]
    assert len(curve) == 24 and all(math.isfinite(v) for v in curve)
    # Lost updates (fp16 underflow without loss scaling, round-to-nearest) would keep it flat.
    assert sum(curve[-6:]) / 6 < sum(curve[:6]) / 6 - 0.2, curve


def _by_pod(run: RunSummary) -> dict:
    return {r.config["hardware"]["pod"]: r for r in run.results}


def test_both_pods_run_ok_and_are_marked_emulated(run: RunSummary) -> None:
    results = _by_pod(run)
    assert sorted(results) == ["pod16", "pod4"]
    for pod, result in results.items():
        assert result.status == "ok", result.failure
        assert result.key["pod"] == f"{pod}-emulated"
        assert result.hardware["emulated"] is True and result.hardware["kind"] == "ipu"
        assert result.hardware["replication"] == REPLICAS[pod]
        assert result.hardware["optimum_graphcore"] and result.hardware["ipu_version"] == 2


def test_global_batch_and_steps_follow_the_ipu_rules(run: RunSummary) -> None:
    for pod, result in _by_pod(run).items():
        train = result.config["train"]
        global_batch = (train["micro_batch_size"] * train["gradient_accumulation_steps"]
                        * REPLICAS[pod])
        assert result.timings["samples_per_step"] == global_batch
        # poptorch's DataLoader drops the incomplete last batch of every epoch.
        per_epoch = result.timings["features"]["train"] // global_batch
        assert result.timings["train_steps"] == math.ceil(per_epoch * train["num_train_epochs"])


def test_compile_is_cold_then_cached(run: RunSummary) -> None:
    for result in run.results:
        compile_ = result.timings["compile"]
        assert compile_["cache_hit"] is True and "emulated" in compile_["what"]
        assert compile_["warm_s"] < compile_["cold_s"]


def test_time_to_target_evaluates_mid_training(run: RunSummary) -> None:
    for result in run.results:
        curve = result.timings["time_to_target"]["curve"]
        assert len(curve) >= 4 and curve[-1]["fraction"] == 1.0
        # The evaluations' time is not training time.
        assert curve[-1]["train_s"] <= result.timings["train_total_s"] + 1e-6


#: Learning, judged by the scores against the untrained (lr-0) run of the same profile. Measured
#: over 4 `tox -e ipu-emulated` runs of the same tree (2026-12-08): the emulated training is not
#: reproducible run to run; pod4's F1 came out 8.6, 9.0, 29.6 and 36.5 (pod16 16.5 to 24.1; EM at
#: least 5.3) against the untrained 3.6 to 3.7 (EM 0). Its loss fell to 0.37 to 0.89 of its first
#: tenth (the lr-0 run: 0.96 to 0.98), too close to judge by. The old "+10 F1" rule failed a CI
#: run that had learned (pod4 F1 9.0).
F1_GAIN, EM_GAIN = 3.0, 2.0


def test_training_learns(run: RunSummary, untrained: dict) -> None:
    for result in run.results:
        assert result.metrics["f1"] >= untrained["f1"] + F1_GAIN, (result.metrics, untrained)
        assert result.metrics["exact_match"] >= untrained["exact_match"] + EM_GAIN


def test_the_report_says_emulated(run: RunSummary) -> None:
    text = Path(run.report_path).read_text(encoding="utf-8")
    assert "pod16-emulated" in text and "pod4-emulated" in text
    assert "not hardware numbers" in text


def test_results_on_disk_say_emulated(run: RunSummary, out_dir: Path) -> None:
    files = sorted((out_dir / "trained").rglob("tiny-bert__synthetic.json"))
    assert len(files) == 2
    for path in files:
        assert json.loads(path.read_text(encoding="utf-8"))["hardware"]["emulated"] is True


def test_no_host_flops_probe_stands_for_the_ipu(run: RunSummary) -> None:
    """The host CPU is not the IPU: no probe during training, no MFU against the host's peak."""
    for result in run.results:
        assert "probe_during_training" not in result.timings
        assert "train_samples_per_probe_gflop" not in result.timings
        assert result.efficiency["mfu"] is None and result.efficiency["probe"] == {}
