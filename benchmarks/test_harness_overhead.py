"""Harness overhead: the torch backend's reported throughput vs a bare loop over the same batches.

Both train the same tiny model from the same initial weights on the same batches in the same
order (AdamW, same learning-rate schedule shape); the suite's loop adds step timing, token
counting, the divergence check and the progress bar. Rounds alternate bare/suite so that machine
noise hits both alike; the ratio of medians must be ≥ 0.98.
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np
import pytest
import torch
from datasets import Dataset

from qa.backends.torch import TorchBackend
from qa.backends.torch.batching import BatchPlan, FeatureTensors, global_order
from qa.config.schema import RunConfig, apply_overrides
from qa.task.models import build_tiny_model

# A claim about the suite itself, run when asked: `pytest benchmarks -m perf` or by its file.
pytestmark = pytest.mark.perf
STEPS, ROUNDS, FLOOR = 40, 5, 0.98


def _features(n: int = 400, max_length: int = 128, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(24, max_length + 1, size=n)
    ids = np.zeros((n, max_length), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(5, 900, size=length)
        mask[row, :length] = 1
    starts = rng.integers(1, 20, size=n)
    return Dataset.from_dict({
        "input_ids": ids.tolist(), "token_type_ids": np.zeros_like(ids).tolist(),
        "attention_mask": mask.tolist(), "start_positions": starts.tolist(),
        "end_positions": (starts + 2).tolist()})


def _bare_loop(model: torch.nn.Module, data: FeatureTensors, config: RunConfig) -> float:
    """samples/s of the simplest loop that trains on the same batches."""
    cfg = config.train
    plan = BatchPlan(cfg.micro_batch_size, True, cfg.group_by_length, cfg.seed)
    batches = global_order(data.lengths, plan, 0)
    # Same math as the suite's loop (AdamW, linear schedule, clipping): only the harness differs.
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * STEPS), STEPS)
    model.train()
    times = []
    for step in range(STEPS):
        start = time.perf_counter()
        batch = data.batch(batches[step % len(batches)], cfg.dynamic_padding, True)
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    measured = times[cfg.timing_warmup_steps:]
    return cfg.micro_batch_size * len(measured) / sum(measured)


@pytest.mark.slow
def test_harness_overhead_is_under_two_percent(record_property) -> None:
    config = apply_overrides(RunConfig(), [
        f"train.max_steps={STEPS}", "train.micro_batch_size=16", "train.dynamic_padding=true",
        "train.group_by_length=true", "torch.device=cpu", "data.max_length=128"])
    features = _features()
    data = FeatureTensors(features)
    initial = build_tiny_model("tiny-roformer", 1000, config.train, 128)
    backend = TorchBackend()
    bare, suite = [], []
    for _ in range(ROUNDS):
        bare.append(_bare_loop(copy.deepcopy(initial), data, config))
        suite.append(backend.train(copy.deepcopy(initial), features, config,
                                   progress=False).samples_per_s)
    ratio = statistics.median(suite) / statistics.median(bare)
    record_property("bare_samples_per_s", bare)
    record_property("suite_samples_per_s", suite)
    record_property("ratio", ratio)
    print(f"harness overhead: suite {statistics.median(suite):.1f} / bare "
          f"{statistics.median(bare):.1f} samples/s = {ratio:.3f}")
    assert ratio >= FLOOR, f"suite/bare throughput {ratio:.3f} < {FLOOR}"
