"""A backend from outside qa-bench, registered only through the ``qa_bench.backends`` entry point.

It implements the contract (``qa.backends.base.Backend``) and uses nothing else of ``qa.backends``:
it "compiles" nothing, trains with a few real AdamW steps on the CPU and predicts the model's
logits. Its pods, cost, hardware line and reported version are its own, so that
``tests/test_outside_backend.py`` can see each of them reach the sharding plan, the result and
the report.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from qa.backends.base import Backend, CompileTiming, Diverged, Predictions, TrainTiming

INPUTS = ("input_ids", "token_type_ids", "attention_mask")
LABELS = ("start_positions", "end_positions")
#: The toy's own price of an entry, per pod: whole hours, easy to read in ``run --list``.
COST_S = {"toy1": 3600.0, "toy2": 7200.0}


def _tensors(features: Any, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    present = [n for n in names if n in features.column_names]
    table = features.with_format("numpy", columns=present)
    return {n: torch.from_numpy(np.asarray(table[n], dtype=np.int64)) for n in present}


class ToyBackend(Backend):
    """Trains and predicts on the CPU, pretending to be a rack of toy accelerators."""

    NAME = "toy"
    SLOT_KIND = "rack"
    SLOTS = ("toy1", "toy2")

    @classmethod
    def available(cls, config: Any = None) -> tuple[bool, str]:
        return True, ""

    @classmethod
    def fingerprint(cls, config: Any) -> dict[str, Any]:
        return {"kind": "toy", "pod": config.hardware.pod or cls.SLOTS[0],
                "cores": os.cpu_count(), "threads": torch.get_num_threads()}

    @classmethod
    def describe(cls, fingerprint: dict[str, Any]) -> str:
        return f"Toy accelerator rack {fingerprint.get('pod')} (CPU stand-in)"

    @classmethod
    def cost_seconds(cls, config: Any, flops: float, params: float) -> float:
        scale = config.section("toy").price_scale  # its own settings, from its own entry point
        return scale * COST_S.get(config.hardware.pod or cls.SLOTS[0], 60.0)

    def compile(self, model: Any, features: Any, config: Any) -> CompileTiming:
        return CompileTiming(what="nothing to compile (toy)")

    def train(self, model: Any, features: Any, config: Any, progress: bool = True,
              monitor: Any = None) -> TrainTiming:
        data = _tensors(features, INPUTS + LABELS)
        n, size = len(features), config.train.micro_batch_size
        steps = config.train.max_steps if config.train.max_steps > 0 else max(1, n // size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate)
        model.train()
        timing = TrainTiming(samples_per_step=size)
        began = time.perf_counter()
        for step in range(1, steps + 1):
            rows = torch.arange((step - 1) * size, step * size) % n
            start = time.perf_counter()
            loss = model(**{k: v[rows] for k, v in data.items()}).loss
            if not torch.isfinite(loss):
                raise Diverged(f"loss is {loss.item()} at step {step}")
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            timing.step_times.append(time.perf_counter() - start)
            timing.loss_curve.append(loss.item())
            timing.tokens_per_step.append(int(data["attention_mask"][rows].sum()))
            if monitor is not None and monitor.due(step, steps):
                monitor.record(model, step, sum(timing.step_times), steps)
        timing.total_s = time.perf_counter() - began
        timing.steps = steps
        train_s = sum(timing.step_times) or 1e-9
        timing.samples_per_s = steps * size / train_s
        timing.tokens_per_s = sum(timing.tokens_per_step) / train_s
        return timing

    def predict(self, model: Any, features: Any, config: Any,
                progress: bool = True) -> Predictions:
        data = _tensors(features, INPUTS)
        model.eval()
        began = time.perf_counter()
        starts, ends = [], []
        with torch.inference_mode():
            for lo in range(0, len(features), config.train.eval_batch_size):
                out = model(**{k: v[lo:lo + config.train.eval_batch_size]
                               for k, v in data.items()})
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        total = time.perf_counter() - began
        return Predictions(np.concatenate(starts), np.concatenate(ends),
                           len(features) / total if total else 0.0, total)
