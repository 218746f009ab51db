"""Training fast paths of the torch backend, each measured side by side in one run.

Same entry, same seed, same data; only the option under test changes. Rounds alternate
between the variants so machine noise hits both alike; the ratio of median train samples/s is
the claim. Each fast path is also checked not to change what is learned:

- options that leave every batch's math the same (torch.compile, thread count, SDPA attention)
  must give the same loss curve within float tolerance;
- dynamic padding with length grouping changes the batches (grouping reorders them) and even
  the loss (transformers' QA heads do not mask padding logits, so padding to 384 adds terms to
  the softmax's normaliser: measured, the loss curves of static and dynamic padding over the
  same batches part by more than 2e-3), so its EM/F1 after a full smoke-length run must lie
  within the committed baseline's seed-to-seed tolerance of static padding's.

Run: ``pytest benchmarks/test_fast_paths.py -s`` (ratios are printed and recorded as
``record_property`` in the JUnit XML). The full-length grouping check takes ~6 min on 2 cores.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from qa.config.schema import RunConfig, apply_overrides
from qa.gating.baselines import load_baseline
from qa.run.pipeline import result_key, run_entry
from qa.run.profiles import expand, load_profile

# A claim about the suite itself, run when asked: `pytest benchmarks -m perf` or by its file.
pytestmark = pytest.mark.perf
ROOT = Path(__file__).resolve().parents[1]
# A shortened smoke entry: full data preparation, a fixed number of steps.
BASE = ["data.synthetic_train_contexts=300", "data.synthetic_validation_contexts=50",
        "train.max_steps=60", "train.compile_eval=false", "torch.device=cpu"]
ROUNDS = 3
# Same math in another kernel or shape: losses agree to float rounding, amplified a little by
# 60 optimizer steps. A real change (another batch, a lost mask) moves them by 1e-2 or more.
LOSS_RTOL = 2e-3


def _pair(base: RunConfig, variant: RunConfig, cache) -> tuple[list, list]:
    a, b = [], []
    for _ in range(ROUNDS):
        a.append(run_entry(base, cache_dir=cache, progress=False))
        b.append(run_entry(variant, cache_dir=cache, progress=False))
    for result in a + b:
        assert result.status == "ok", result.failure
    return a, b


def _ratio(a: list, b: list) -> float:
    return statistics.median(r.timings["train_samples_per_s"] for r in b) / statistics.median(
        r.timings["train_samples_per_s"] for r in a)


def _assert_same_losses(reference: list[float], variant: list[float]) -> float:
    """The variant's loss curve equals the reference's within LOSS_RTOL; returns the max gap."""
    ref, got = np.asarray(reference), np.asarray(variant)
    assert ref.shape == got.shape
    gap = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3)))
    assert gap <= LOSS_RTOL, f"loss curves differ by {gap:.2e} (relative) > {LOSS_RTOL}"
    return gap


def _curve(result) -> list[float]:
    """The loss curve of a RunResult (first round of a pair)."""
    return result.timings["loss"]["curve"]


@pytest.mark.slow
def test_dynamic_padding_with_length_grouping_is_at_least_1_5x_static(tmp_path,
                                                                       record_property) -> None:
    static = apply_overrides(RunConfig(), [*BASE, "train.dynamic_padding=false",
                                           "train.group_by_length=false"])
    dynamic = replace(static, train=replace(static.train, dynamic_padding=True,
                                            group_by_length=True))
    a, b = _pair(static, dynamic, tmp_path)
    ratio = _ratio(a, b)
    record_property("dynamic_over_static", ratio)
    print(f"dynamic padding + length grouping / static padding: {ratio:.2f}x")
    assert ratio >= 1.5


@pytest.mark.slow
def test_dynamic_padding_and_grouping_keep_em_f1_of_static(tmp_path, record_property) -> None:
    """Full smoke-length training both ways; EM/F1 within the baseline's seed tolerance."""
    (entry,) = expand(load_profile("smoke"), overrides=["train.compile_eval=false"])
    fast = entry.config
    assert fast.train.dynamic_padding and fast.train.group_by_length
    static = replace(fast, train=replace(fast.train, dynamic_padding=False,
                                         group_by_length=False))
    baseline = load_baseline(ROOT / "baselines", result_key(fast))
    if baseline is None:
        pytest.skip("no committed baseline for the smoke entry (its seed spread sets the "
                    "tolerance): run `qa-bench run --update-baselines --seeds 3`")
    results = {}
    for name, config in (("fast", fast), ("static", static)):
        results[name] = run_entry(config, cache_dir=tmp_path, progress=False)
        assert results[name].status == "ok", results[name].failure
    ratio = (results["fast"].timings["train_samples_per_s"]
             / results["static"].timings["train_samples_per_s"])
    record_property("full_run_dynamic_grouped_over_static", ratio)
    for metric in ("exact_match", "f1"):
        tolerance = baseline.metrics[metric].effective_tolerance()
        gap = results["fast"].metrics[metric] - results["static"].metrics[metric]
        record_property(f"{metric}_fast_minus_static", gap)
        print(f"{metric}: grouped {results['fast'].metrics[metric]:.2f}, static "
              f"{results['static'].metrics[metric]:.2f} (gap {gap:+.2f}, tolerance "
              f"±{tolerance:.2f}); samples/s ratio {ratio:.2f}x")
        assert abs(gap) <= tolerance, f"{metric} moved by {gap:+.2f} > ±{tolerance:.2f}"


def _cli_run(out: Path, overrides: list[str], env: dict[str, str]) -> dict:
    """``qa-bench run`` in a fresh process; returns the entry's RunResult JSON."""
    command = [sys.executable, "-m", "qa.frontends.cli", "run", "--no-progress", "--out", str(out),
               "--baselines", str(out / "no-baselines")]
    for item in overrides:
        command += ["--set", item]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = (out / "results").rglob("*.json")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_torch_compile_cold_and_warm_in_fresh_processes(tmp_path, record_property) -> None:
    """Cold: a new process with an empty inductor cache. Warm: a new process reusing it.

    Each run is its own process so that nothing compiled earlier in this one (dynamo's
    in-memory caches, imported kernels) makes "cold" look warm.
    """
    overrides = [*BASE, "train.dynamic_padding=false", "train.group_by_length=false"]
    env = {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
           "QA_BENCH_CACHE": str(tmp_path / "cache")}
    eager = _cli_run(tmp_path / "eager", overrides, env)
    cold = _cli_run(tmp_path / "cold", [*overrides, "train.torch_compile=true"], env)
    warm = _cli_run(tmp_path / "warm", [*overrides, "train.torch_compile=true"], env)
    first = {name: r["timings"]["first_step_s"] for name, r in
             (("eager", eager), ("cold", cold), ("warm", warm))}
    ratio = (statistics.median([cold["timings"]["train_samples_per_s"],
                                warm["timings"]["train_samples_per_s"]])
             / eager["timings"]["train_samples_per_s"])
    for name, value in first.items():
        record_property(f"first_step_s_{name}", value)
    record_property("compiled_over_eager", ratio)
    print(f"first step: eager {first['eager']:.2f} s, compiled cold {first['cold']:.1f} s, "
          f"warm {first['warm']:.1f} s; compiled/eager samples/s {ratio:.2f}x")
    # Compiling costs the first step something, and the cache must make it cheaper.
    assert first["cold"] > first["eager"]
    assert first["warm"] < first["cold"]
    _assert_same_losses(eager["timings"]["loss"]["curve"], cold["timings"]["loss"]["curve"])


@pytest.mark.slow
def test_thread_count_speed_and_same_losses(tmp_path, record_property) -> None:
    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("one core: nothing to compare")
    before = torch.get_num_threads()
    try:
        one = apply_overrides(RunConfig(), [*BASE, "hardware.threads=1"])
        many = replace(one, hardware=replace(one.hardware, threads=cores))
        a, b = _pair(one, many, tmp_path)
    finally:
        torch.set_num_threads(before)
    ratio, gap = _ratio(a, b), _assert_same_losses(_curve(a[0]), _curve(b[0]))
    record_property(f"threads_{cores}_over_1", ratio)
    print(f"{cores} threads / 1 thread: {ratio:.2f}x, loss gap {gap:.1e}")
    assert ratio > 1.0


@pytest.mark.slow
def test_sdpa_attention_on_cpu(tmp_path, record_property) -> None:
    """tiny-bert (RoFormer has no SDPA path in transformers): SDPA vs eager attention."""
    eager = apply_overrides(RunConfig(), [*BASE, "model.name=tiny-bert",
                                          "model.attn_implementation=eager"])
    sdpa = replace(eager, model=replace(eager.model, attn_implementation="sdpa"))
    a, b = _pair(eager, sdpa, tmp_path)
    ratio, gap = _ratio(a, b), _assert_same_losses(_curve(a[0]), _curve(b[0]))
    record_property("sdpa_over_eager_cpu", ratio)
    print(f"SDPA / eager attention (CPU, tiny-bert): {ratio:.2f}x, loss gap {gap:.1e}")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_bert_base_bf16_sdpa_on_cuda(tmp_path, record_property) -> None:
    """BERT-base's shape (random weights) at 384 on the suite's CUDA path: samples/s and MFU.

    Side by side: fp32 + eager attention vs bf16 autocast + SDPA. Goal on an H100: MFU ≥ 45 %.
    """
    common = ["model.name=bert-base-random", "model.vocab_size=30522", "torch.device=cuda",
              "train.max_steps=60", "train.micro_batch_size=32", "train.compile_eval=false",
              "train.dynamic_padding=false", "train.group_by_length=false",
              "data.synthetic_train_contexts=600", "data.synthetic_validation_contexts=20"]
    vocab = os.environ.get("QA_BENCH_VOCAB")
    if vocab:
        common.append(f"model.vocab_file={vocab}")
    slow = apply_overrides(RunConfig(), [*common, "model.attn_implementation=eager"])
    fast = apply_overrides(RunConfig(), [*common, "model.attn_implementation=sdpa",
                                         "torch.bf16=true"])
    results = {name: run_entry(c, cache_dir=tmp_path, progress=False)
               for name, c in (("fp32_eager", slow), ("bf16_sdpa", fast))}
    for name, result in results.items():
        assert result.status == "ok", result.failure
        record_property(f"{name}_samples_per_s", result.timings["train_samples_per_s"])
        record_property(f"{name}_mfu", result.efficiency["mfu"])
        print(f"{name}: {result.timings['train_samples_per_s']:.1f} samples/s, "
              f"MFU {result.efficiency['mfu']:.1%}, "
              f"max allocated {result.memory.get('cuda_peak_allocated_mb')} MB")
    ratio = (results["bf16_sdpa"].timings["train_samples_per_s"]
             / results["fp32_eager"].timings["train_samples_per_s"])
    record_property("bf16_sdpa_over_fp32_eager", ratio)
    assert ratio > 1.0
    if "H100" in torch.cuda.get_device_name():
        assert results["bf16_sdpa"].efficiency["mfu"] >= 0.45
