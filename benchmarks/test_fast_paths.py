"""Training fast paths of the torch backend, each measured side by side in one run.

Same entry, same seed, same data; only the option under test changes. Rounds alternate
between the variants so machine noise hits both alike. The ratio of train samples/s is the
claim; EM/F1 are compared too (a fast path must not change what is learned beyond tolerance).
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest

from qa.config import RunConfig, apply_overrides
from qa.pipeline import run_entry

# A shortened smoke entry: full data preparation, a fixed number of steps.
BASE = ["data.synthetic_train_contexts=300", "data.synthetic_validation_contexts=50",
        "train.max_steps=60", "train.compile_eval=false", "hardware.device=cpu"]
ROUNDS = 3


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
def test_torch_compile_training_speed_and_first_step(tmp_path, record_property) -> None:
    eager = apply_overrides(RunConfig(), [*BASE, "train.dynamic_padding=false"])
    compiled = replace(eager, train=replace(eager.train, torch_compile=True))
    a, b = _pair(eager, compiled, tmp_path)
    ratio = _ratio(a, b)
    first = statistics.median(r.timings["first_step_s"] for r in b)
    record_property("compiled_over_eager", ratio)
    record_property("compiled_first_step_s", first)
    print(f"torch.compile / eager train samples/s: {ratio:.2f}x, first step {first:.1f} s")
    # A measurement, not a gate on speed: the default stays off unless this shows a gain.
    assert ratio > 0 and first > 0
