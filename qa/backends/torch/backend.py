"""The torch backend: CPU or CUDA, one process or several under torchrun (DDP).

A plain training loop rather than transformers' Trainer: the suite must see every batch (real
tokens per step, dynamic padding, length grouping), time every optimizer step on its own, stop
on a non-finite loss, and be comparable with a bare loop over the same batches (the harness
overhead benchmark). DDP, autocast and AdamW come from torch itself.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from typing import Any

import numpy as np

from qa import progress as progress_report
from qa.backends.base import Backend, CompileTiming, Diverged, Predictions, TrainTiming
from qa.backends.torch.batching import BatchPlan, FeatureTensors, global_order, iterate_eval, shard
from qa.backends.torch.devices import (
    DEVICES,
    auto_device,
    dist_info,
    init_distributed,
    resolve_device,
)
from qa.backends.torch.lazy import lazy_torch
from qa.errors import QABenchError
from qa.launchers.torchrun import run_under_torchrun
from qa.measure.convergence import ConvergenceMonitor
from qa.measure.hardware import cpu_info, host_line, torch_build

torch = lazy_torch()  # imported on first use (qa.backends.torch.lazy)

__all__ = ["Diverged", "TorchBackend"]  # Diverged: the contract's failure kind, raised here

#: Effective training FLOP/s of one device, for the sharding estimate: rough orders of magnitude
#: (only the ratios inside one matrix matter).
DEVICE_RATE = {"cpu": 2e10, "cuda": 4e13, "auto": 2e10}


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (data order is seeded separately from the same seed)."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # No decay on biases and LayerNorm weights, as in BERT's fine-tuning recipe.
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates every tensor in one pass: measured on 2 CPU cores with the tiny
    # model, the optimizer step falls from ~15 ms to ~6 ms of a ~70 ms step. Same algorithm.
    return torch.optim.AdamW(groups, lr=lr, fused=True)


class TorchBackend(Backend):
    """Fine-tuning and prediction with PyTorch on CPU or CUDA."""

    NAME = "torch"
    SLOT_KIND = "device"
    SLOTS = DEVICES
    MARKS = {"cuda": "needs a CUDA GPU"}

    @classmethod
    def available(cls, config: Any = None) -> tuple[bool, str]:
        """Always, except a CUDA entry on a machine without a CUDA device."""
        if config is not None and config.torch.device == "cuda" and \
                not torch.cuda.is_available():
            return False, "no CUDA device on this machine"
        return True, ""

    @classmethod
    def probe_device(cls, config: Any) -> str | None:
        """The device the steps run on: CUDA when the entry uses it, else the CPU."""
        return "cuda" if auto_device() == "cuda" and config.torch.device != "cpu" else "cpu"

    @classmethod
    def slot_overrides(cls, pod: str) -> list[str]:
        """A torch entry's "pod" is its device."""
        return [f"torch.device={pod}"]

    @classmethod
    def result_slot(cls, config: Any) -> str:
        """The device (``auto`` resolved), ``x<replicas>`` for a torchrun entry,
        ``x<replicas>n<nodes>`` across hosts."""
        hw = config.torch
        device = hw.device if hw.device != "auto" else auto_device()
        if hw.nodes > 1:
            return f"{device}x{hw.replicas}n{hw.nodes}"
        return device if hw.replicas <= 1 else f"{device}x{hw.replicas}"

    @classmethod
    def entry_marks(cls, pod: str) -> tuple[str, ...]:
        return ("cuda",) if pod == "cuda" else ()

    @classmethod
    def launch(cls, config: Any, options: Any, worker: Any) -> Any:
        """In this process, or under torchrun when ``torch.replicas`` or ``.nodes`` > 1."""
        if config.torch.world_size > 1:
            return run_under_torchrun(config, options, worker)
        return super().launch(config, options, worker)

    @classmethod
    def fingerprint(cls, config: Any) -> dict[str, Any]:
        """CPU (name, id, flags, cores, threads) or GPU (name, count), and the torch build."""

        hw = config.torch
        device = "cuda" if hw.device == "cuda" or (
            hw.device == "auto" and torch.cuda.is_available()) else "cpu"
        fp: dict[str, Any] = {"kind": device, "torch_build": torch_build(),
                              "torch": torch.__version__, "replicas": hw.replicas}
        if hw.nodes > 1:
            fp["nodes"] = hw.nodes
        if device == "cuda" and torch.cuda.is_available():
            fp.update(gpu=torch.cuda.get_device_name(0),
                      gpus=max(hw.replicas, 1), cuda=torch.version.cuda)
        else:
            # Under torchrun each replica gets its share of the threads (see launcher.py).
            threads = config.hardware.threads or torch.get_num_threads()
            fp.update(cpu_info(), threads=threads)
        return fp

    @classmethod
    def data_parallel(cls, config: Any) -> int:
        """``torch.replicas`` processes per node share a step."""
        return max(config.torch.replicas, 1)

    @classmethod
    def compute_dtype(cls, config: Any) -> str:
        """bf16 under ``torch.bf16`` (autocast), else fp32."""
        return "bfloat16" if config.torch.bf16 else "float32"

    @classmethod
    def cost_seconds(cls, config: Any, flops: float, params: float) -> float:
        """The work at the device's rate, over the replicas; no compile time."""
        hw = config.torch
        return flops / (DEVICE_RATE.get(hw.device, DEVICE_RATE["cpu"]) * max(hw.replicas, 1))

    @classmethod
    def describe(cls, fingerprint: dict[str, Any]) -> str:
        """``2× NVIDIA H100, torch cuda12.1`` or ``AMD EPYC [..] 2 cores, 2 threads, torch cpu``
        (the host's line, ``qa.measure.hardware.host_line``)."""
        return host_line(fingerprint)

    # -- compile -------------------------------------------------------------------------
    def compile(self, model: Any, features: Any, config: Any) -> CompileTiming:
        """Time ``torch.compile`` of the eval model: cold (empty cache), then warm (cached).

        ``fresh_cache`` gives the pt2 caches an empty folder and clears their in-memory
        copies, so "cold" means cold even in a process (or on a machine) that compiled this model
        before; the second compile, after a dynamo reset, loads what the first one left in that
        folder (the cached case).
        """
        if not config.train.compile_eval:
            return CompileTiming(what="off")
        device = resolve_device(config.torch.device)
        data = FeatureTensors(features, self.padding_side)
        batch = {k: v.to(device) for k, v in data.batch(
            np.arange(min(len(data), config.train.eval_batch_size)), False, False).items()}
        model = model.to(device).eval()
        from torch._inductor.utils import fresh_inductor_cache

        times = []
        try:
            # One-time costs of the first compile in a process (importing inductor, probing the
            # C++ toolchain) are not this model's compile: pay them on a trivial graph first.
            with fresh_inductor_cache():
                torch.compile(lambda x: torch.relu(x) + 1)(torch.ones(4, device=device))
            with fresh_inductor_cache():
                for _ in range(2):
                    torch._dynamo.reset()
                    compiled = torch.compile(model, dynamic=False)
                    start = time.perf_counter()
                    with torch.no_grad(), _autocast(device, config.torch.bf16):
                        compiled(**batch)
                    _sync(device)
                    times.append(time.perf_counter() - start)
        finally:
            torch._dynamo.reset()
        return CompileTiming(cold_s=times[0], warm_s=times[1], cache_hit=times[1] < times[0],
                             what="torch.compile (eval forward)")

    # -- train ---------------------------------------------------------------------------
    def train(self, model: Any, features: Any, config: Any, progress: bool = True,
              monitor: ConvergenceMonitor | None = None) -> TrainTiming:
        """Fine-tune ``model`` in place; time each optimizer step (warm-up steps excluded).

        ``monitor`` (time-to-target) evaluates the model between steps when it is due; its
        time counts neither in the step times nor in ``total_s``.
        """
        train_cfg, hw = config.train, config.torch
        device = resolve_device(hw.device)
        init_distributed(device)
        rank, world = dist_info()
        if config.hardware.threads:
            torch.set_num_threads(config.hardware.threads)
        seed_everything(train_cfg.seed)
        data = FeatureTensors(features, self.padding_side)
        global_batch = train_cfg.micro_batch_size * world
        plan = BatchPlan(global_batch, True, train_cfg.group_by_length, train_cfg.seed)
        per_epoch = math.ceil(len(data) / global_batch)
        total_steps = train_cfg.max_steps if train_cfg.max_steps > 0 else math.ceil(
            per_epoch * train_cfg.num_train_epochs / train_cfg.gradient_accumulation_steps)
        if total_steps <= 0:
            raise QABenchError("training would run 0 steps (check epochs / max_steps / data)")

        model = model.to(device).train()
        optimizer = _optimizer(model, train_cfg.learning_rate, train_cfg.weight_decay)
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(train_cfg.warmup_ratio * total_steps), total_steps)
        step_model = model
        if world > 1:
            step_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        if train_cfg.torch_compile:
            step_model = torch.compile(step_model)

        micro_batches = self._micro_batches(data, plan, rank, world)
        timing = TrainTiming(samples_per_step=global_batch * train_cfg.gradient_accumulation_steps)
        bar = _progress(total_steps, "train", progress and rank == 0)
        padded_per_step: list[int] = []
        train_s = 0.0  # optimizer steps only, warm-up included (time-to-target's clock)
        started = time.perf_counter()
        for step in range(total_steps):
            step_start = time.perf_counter()
            loss_sum, tokens, padded = 0.0, 0, 0
            for _ in range(train_cfg.gradient_accumulation_steps):
                indices = next(micro_batches)
                batch = {k: v.to(device, non_blocking=True) for k, v in data.batch(
                    indices, train_cfg.dynamic_padding, True).items()}
                with _autocast(device, hw.bf16):
                    loss = step_model(**batch).loss / train_cfg.gradient_accumulation_steps
                loss.backward()
                loss_sum += float(loss.detach())
                tokens += data.real_tokens(indices)
                padded += batch["input_ids"].numel()
            if not math.isfinite(loss_sum):
                raise Diverged(f"loss is {loss_sum} at step {step + 1} of {total_steps}")
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            _sync(device)
            elapsed = time.perf_counter() - step_start
            train_s += elapsed
            timing.loss_curve.append(loss_sum)
            if step == 0:
                first_step_s = elapsed  # includes torch.compile's tracing when it is on
            warm = train_cfg.timing_warmup_steps
            if step >= warm or total_steps <= warm:
                timing.step_times.append(elapsed)
                timing.tokens_per_step.append(tokens * world)
                padded_per_step.append(padded)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}", refresh=False)
            if monitor is not None and monitor.due(step + 1, total_steps):
                monitor.record(model, step + 1, train_s, total_steps)
                model.train()
        bar.close()
        timing.total_s = time.perf_counter() - started - (monitor.eval_s if monitor else 0.0)
        timing.steps = total_steps
        measured = sum(timing.step_times)
        timing.samples_per_s = timing.samples_per_step * len(timing.step_times) / measured
        timing.tokens_per_s = sum(timing.tokens_per_step) / measured
        timing.extra = {"world_size": world, "device": str(device),
                        "global_batch": timing.samples_per_step, "first_step_s": first_step_s,
                        "padded_tokens_per_step": padded_per_step}
        model.eval()
        return timing

    @staticmethod
    def _micro_batches(data: FeatureTensors, plan: BatchPlan, rank: int, world: int):
        epoch = 0
        while True:
            for batch in global_order(data.lengths, plan, epoch):
                part = shard(batch, rank, world)
                if len(part):
                    yield part
            epoch += 1

    # -- predict -------------------------------------------------------------------------
    def predict(self, model: Any, features: Any, config: Any,
                progress: bool = True) -> Predictions:
        """Start/end logits for every feature, in feature order.

        Only the model inputs are passed to the model (never example_id / offset_mapping).
        Under torchrun every rank predicts a contiguous shard and the shards are gathered, so
        all ranks take part in the collective (rank-0-only prediction hangs or crashes).

        Timing: the first pass is the warm-up (new shapes, allocator); ``eval_timing_rounds``
        further passes are timed and eval samples/s is taken from their median.
        """
        device = resolve_device(config.torch.device)
        rank, world = dist_info()
        data = FeatureTensors(features, self.padding_side)
        n = len(data)
        bounds = np.linspace(0, n, world + 1).astype(int)
        lo, hi = bounds[rank], bounds[rank + 1]
        model = model.to(device).eval()
        rounds = 1 + max(0, config.train.eval_timing_rounds)
        bar = _progress(rounds * math.ceil((hi - lo) / config.train.eval_batch_size), "predict",
                        progress and rank == 0)
        round_times = []
        for _ in range(rounds):
            _sync(device)
            began = time.perf_counter()
            starts, ends = self._predict_pass(model, data, lo, hi, config, device, bar)
            _sync(device)
            round_times.append(time.perf_counter() - began)
        bar.close()
        start_logits, end_logits = starts, ends
        if world > 1:
            gathered: list[Any] = [None] * world
            torch.distributed.all_gather_object(gathered, (start_logits, end_logits))
            start_logits = np.concatenate([g[0] for g in gathered])
            end_logits = np.concatenate([g[1] for g in gathered])
        timed = round_times[1:] or round_times
        median = float(np.median(timed))
        q1, q3 = np.percentile(timed, [25, 75])
        # hi - lo features per pass on this rank; all ranks run concurrently, so n is global.
        return Predictions(start_logits, end_logits, n / median if median else 0.0, median,
                           {"median": median, "iqr": float(q3 - q1), "rounds": len(timed),
                            "warmup_s": round_times[0]})

    def _predict_pass(self, model: Any, data: FeatureTensors, lo: int, hi: int, config: Any,
                      device: torch.device, bar: Any) -> tuple[np.ndarray, np.ndarray]:
        """Logits of features ``lo..hi`` in feature order.

        With dynamic padding the features are batched longest first, so that one long feature
        does not pad a whole batch of short ones to its length (attention is quadratic in it),
        and the rows are put back in feature order afterwards.
        """
        n = hi - lo
        dynamic = config.train.dynamic_padding
        order = np.argsort(-data.lengths[lo:hi], kind="stable") if dynamic else np.arange(n)
        starts = np.zeros((n, data.max_length), dtype=np.float32)
        ends = np.zeros((n, data.max_length), dtype=np.float32)
        with torch.inference_mode(), _autocast(device, config.torch.bf16):
            for indices in iterate_eval(n, config.train.eval_batch_size):
                rows = order[indices]
                batch = {k: v.to(device) for k, v in data.batch(rows + lo, dynamic,
                                                                  False).items()}
                out = model(**batch)
                starts[rows] = self._pad(out.start_logits, data)
                ends[rows] = self._pad(out.end_logits, data)
                bar.update(1)
        return starts, ends

    def _pad(self, logits: torch.Tensor, data: FeatureTensors) -> np.ndarray:
        """Logits back to max_length columns (a dynamically padded batch is shorter)."""
        array = logits.float().cpu().numpy()
        missing = data.max_length - array.shape[1]
        if missing:
            filler = np.full((array.shape[0], missing), -1e4, dtype=array.dtype)
            parts = (array, filler) if self.padding_side == "right" else (filler, array)
            array = np.concatenate(parts, axis=1)
        return array


def _progress(total: int, desc: str, enabled: bool) -> progress_report.Counter:
    """The count of a stage, shown by the run's reporter (``qa.progress``): a bar on a terminal,
    an occasional line in a log."""
    return progress_report.counter(total, desc, enabled)
