"""Model FLOPs, a matmul peak probe, MFU and peak memory for a benchmark run.

**Model FLOPs** follow the PaLM/Megatron convention: count the matmuls the model needs, at
``2·m·n·k`` each, and nothing else. For an encoder QA model with hidden size ``h``, attention
width ``a`` (heads x head size, ``= h`` for BERT-like models), FFN size ``i``, ``L`` layers and a
sample of ``s`` tokens, one forward pass costs::

    L · (2·s·h·3a  +  2·s·a·h   # Q, K, V and output projections
         + 2·s²·a  +  2·s²·a    # scores Q·Kᵀ and the weighted sum P·V, over all heads
         + 2·2·s·h·i)           # the two FFN matmuls
    + 2·s·h·2                   # QA head: start and end logits
    + 2·s·e·h                   # only where embeddings of size e are projected to h

Training is 3x forward: the backward pass of every matmul computes one gradient for its input and
one for its weight, each as costly as the forward product. Left out on purpose:

* embedding lookups (gathers, no arithmetic);
* softmax, layernorm, GELU, dropout, rotary position mixing (RoFormer) and bias adds — O(s·h)
  or O(s²·heads) elementwise work, well under 1 % of the total at BERT sizes;
* activation recomputation (gradient checkpointing, or the fused SDPA backward recomputing
  ``Q·Kᵀ``): that is hardware FLOPs, not model FLOPs, so MFU stays comparable across kernels;
* DeBERTa's disentangled-attention position terms (its relative-position projections), so the
  count is a slight undercount for DeBERTa.

``torch.utils.flop_counter.FlopCounterMode`` on an eager-attention model counts exactly these
matmuls (``tests/measure/test_efficiency.py`` checks agreement). With SDPA it differs: the fused
CUDA backward is counted as 2.5x its forward (the recompute), and the fused CPU kernel is not
counted.

**Peak** comes from a probe: best-of-rounds square matmuls at the thread count torch runs with
(``measure_peak_flops``), so MFU = achieved model FLOP/s / what this machine's matmul reaches.
"""

from __future__ import annotations

import math
import numbers
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa.errors import QABenchError

if TYPE_CHECKING:
    import torch

MB = 1024.0 * 1024.0
QA_HEAD_OUTPUTS = 2  # start and end logits
# Model types whose embeddings are always projected to the hidden size (ALBERT's
# embedding_hidden_mapping_in); others (RoFormer, ELECTRA) project only when the sizes differ.
ALWAYS_PROJECTED = ("albert",)


@dataclass(frozen=True)
class EncoderShape:
    """The sizes that determine an encoder QA model's matmul FLOPs."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    embedding: int
    projected: bool

    @property
    def attention(self) -> int:
        """Width of Q, K and V: heads x head size (``hidden`` when heads divide it)."""
        return self.heads * (self.hidden // self.heads)


def _read(config: Any, *names: str) -> Any:
    """The first of ``names`` set on a config object or mapping, else None."""
    for name in names:
        value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
        if value is not None:
            return value
    return None


def encoder_shape(config: Any) -> EncoderShape:
    """Read an :class:`EncoderShape` from a transformers config (or its ``to_dict()``).

    Understands BERT/RoBERTa/RoFormer/ELECTRA/ALBERT/DeBERTa names and DistilBERT's
    ``dim``/``n_layers``/``hidden_dim``/``n_heads``.

    Raises:
        QABenchError: the config lacks one of the sizes.
    """
    sizes = {
        "hidden": _read(config, "hidden_size", "dim"),
        "layers": _read(config, "num_hidden_layers", "n_layers"),
        "intermediate": _read(config, "intermediate_size", "hidden_dim"),
        "heads": _read(config, "num_attention_heads", "n_heads"),
    }
    missing = [name for name, value in sizes.items() if value is None]
    if missing:
        model_type = _read(config, "model_type") or type(config).__name__
        raise QABenchError(
            f"cannot count FLOPs for {model_type!r}: its config has no {', '.join(missing)} size"
        )
    hidden = int(sizes["hidden"])
    embedding = int(_read(config, "embedding_size") or hidden)
    projected = embedding != hidden or _read(config, "model_type") in ALWAYS_PROJECTED
    return EncoderShape(
        hidden=hidden,
        layers=int(sizes["layers"]),
        intermediate=int(sizes["intermediate"]),
        heads=int(sizes["heads"]),
        embedding=embedding,
        projected=projected,
    )


def forward_flop_coefficients(shape: EncoderShape) -> tuple[float, float]:
    """Forward FLOPs of one sample as ``linear·s + quadratic·s²``; returns (linear, quadratic)."""
    h, a, i = shape.hidden, shape.attention, shape.intermediate
    per_layer_linear = 2 * h * 3 * a + 2 * a * h + 2 * 2 * h * i
    linear = shape.layers * per_layer_linear + 2 * h * QA_HEAD_OUTPUTS
    if shape.projected:
        linear += 2 * shape.embedding * h
    quadratic = shape.layers * (2 * a + 2 * a)
    return float(linear), float(quadratic)


def _length_sums(seq_len: float | Iterable[int]) -> tuple[int, float, float]:
    """(samples, Σs, Σs²) of one length or of per-sample lengths."""
    values = [seq_len] if isinstance(seq_len, numbers.Real) else list(seq_len)
    lengths = [float(s) for s in values]
    if not lengths:
        raise ValueError("seq_len is an empty list of lengths")
    if any(s <= 0 or not math.isfinite(s) for s in lengths):
        raise ValueError("sequence lengths must be positive and finite")
    return len(lengths), math.fsum(lengths), math.fsum(s * s for s in lengths)


def model_flops_per_sample(
    config: Any, seq_len: float | Iterable[int], training: bool = True
) -> float:
    """Model FLOPs of one sample (forward, or forward + backward = 3x forward when training).

    Args:
        config: a transformers config of an encoder QA model, or its ``to_dict()``.
        seq_len: the tokens each sample ran with: ``max_length`` under static padding, or the
            per-sample lengths (the attention term is quadratic, so lengths are averaged as
            FLOPs, not as lengths). Under dynamic padding pass the batch-padded lengths the
            model actually computed; unpadded lengths give the useful-token FLOPs instead.
        training: count the backward pass too.

    Returns:
        FLOPs per sample, averaged over the samples given.
    """
    linear, quadratic = forward_flop_coefficients(encoder_shape(config))
    samples, total, total_sq = _length_sums(seq_len)
    forward = (linear * total + quadratic * total_sq) / samples
    return 3.0 * forward if training else forward


def flops_per_token(config: Any, seq_len: float | Iterable[int], training: bool = True) -> float:
    """Model FLOPs per token: total FLOPs of the samples over their total tokens."""
    samples, total, _ = _length_sums(seq_len)
    return model_flops_per_sample(config, seq_len, training) * samples / total


def _torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    aliases = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
    resolved = getattr(torch, aliases.get(dtype, dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise QABenchError(f"unknown dtype {dtype!r} (use float32, bfloat16 or float16)")
    return resolved


def measure_peak_flops(
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    size: int | None = None,
    seconds: float = 1.0,
    min_rounds: int = 3,
) -> dict[str, Any]:
    """Time square ``size x size`` matmuls and report the best FLOP/s reached.

    Two warm-up products are excluded (allocator, cuBLAS/oneDNN setup, clock ramp). Each round
    then runs enough products to last about ``seconds / 10`` and is timed as a whole (CUDA
    events on GPU, ``perf_counter`` on CPU); rounds continue until ``seconds`` have passed and
    at least ``min_rounds`` ran. The peak is the *best* round — interference from other
    processes only ever slows a round — and the median is reported beside it. CPU runs use
    ``torch.get_num_threads()``, the thread count the benchmark itself trains with.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: the training dtype, e.g. ``"float32"`` or ``"bfloat16"``.
        size: matrix side; 1024 on CPU (about 2 GFLOP a product), 8192 on CUDA.
        seconds: time budget for the timed rounds.
        min_rounds: rounds to run even past the budget.

    Returns:
        ``{"peak_flops", "median_flops", "dtype", "size", "threads", "rounds",
        "products_per_round", "best_s", "median_s", "device", "method"}``; the ``_s`` values are
        seconds per product.
    """
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch_dtype = _torch_dtype(dtype)
    size = size or (8192 if cuda else 1024)
    a = torch.randn(size, size, device=dev).to(torch_dtype)
    b = torch.randn(size, size, device=dev).to(torch_dtype)
    out = torch.empty(size, size, device=dev, dtype=torch_dtype)

    def run_round(products: int) -> float:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(products):
                torch.mm(a, b, out=out)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        began = time.perf_counter()
        for _ in range(products):
            torch.mm(a, b, out=out)
        return time.perf_counter() - began

    run_round(1)
    estimate = max(run_round(1), 1e-7)
    products = max(1, round(seconds / 10 / estimate))
    per_product: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(per_product) < min_rounds or time.perf_counter() < deadline:
        per_product.append(run_round(products) / products)
    flops = 2.0 * size**3
    best, median = min(per_product), statistics.median(per_product)
    result: dict[str, Any] = {
        "peak_flops": flops / best,
        "median_flops": flops / median,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "size": size,
        "threads": torch.get_num_threads(),
        "rounds": len(per_product),
        "products_per_round": products,
        "best_s": best,
        "median_s": median,
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "method": "matmul probe",
    }
    if cuda:
        result["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    return result


def mfu(achieved_flops_per_s: float, peak: float | Mapping[str, Any]) -> float:
    """Model FLOPs utilisation as a fraction (0.42, not 42 %).

    Args:
        achieved_flops_per_s: model FLOPs per second the run reached.
        peak: peak FLOP/s, or a probe result holding ``"peak_flops"``.
    """
    peak_flops = float(peak["peak_flops"] if isinstance(peak, Mapping) else peak)
    if not peak_flops > 0 or not math.isfinite(peak_flops):
        raise ValueError(f"peak FLOP/s must be positive and finite, got {peak_flops}")
    return achieved_flops_per_s / peak_flops


def efficiency_summary(
    model_config: Any,
    seq_lens: float | Iterable[int],
    train_samples_per_s: float,
    peak_probe: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``RunResult.efficiency`` block of a training run.

    Args:
        model_config: the model's transformers config (or its dict).
        seq_lens: ``max_length`` under static padding, else the per-sample lengths computed.
        train_samples_per_s: training throughput.
        peak_probe: a ``measure_peak_flops`` result (or any dict with ``"peak_flops"``, e.g. a
            spec-sheet figure); None leaves the peak and MFU unset.
    """
    per_sample = model_flops_per_sample(model_config, seq_lens, training=True)
    achieved = per_sample * train_samples_per_s
    peak = float(peak_probe["peak_flops"]) if peak_probe else None
    return {
        "flops_per_sample": per_sample,
        "flops_per_token": flops_per_token(model_config, seq_lens, training=True),
        "achieved_flops_per_s": achieved,
        "peak_flops_per_s": peak,
        "mfu": mfu(achieved, peak) if peak else None,
        "probe": dict(peak_probe) if peak_probe else {},
        "counting": "model FLOPs: matmuls at 2mnk, training = 3x forward, no recompute",
    }


def _proc_status_kib(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (Linux), or None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _cuda_in_use() -> bool:
    """Whether this process has touched CUDA (never initialises it, never imports torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()


def peak_memory() -> dict[str, float]:
    """Peak and current host memory of this process, plus CUDA peaks where CUDA is in use.

    ``peak_rss_mb`` is Linux's ``VmHWM`` (which :func:`reset_peak_memory` can reset), else
    ``ru_maxrss`` (KiB on Linux, bytes on macOS: the whole process lifetime). Child processes
    (dataloader workers) are not included.

    Returns:
        ``{"peak_rss_mb", "rss_mb"}`` and, with CUDA, ``"cuda_peak_allocated_mb"`` and
        ``"cuda_peak_reserved_mb"``; all in MiB.
    """
    peak_kib = _proc_status_kib("VmHWM")
    if peak_kib is None:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_kib = maxrss / 1024.0 if sys.platform == "darwin" else float(maxrss)
    memory = {"peak_rss_mb": peak_kib / 1024.0}
    try:
        import psutil

        memory["rss_mb"] = psutil.Process().memory_info().rss / MB
    except ImportError:
        current_kib = _proc_status_kib("VmRSS")
        if current_kib is not None:
            memory["rss_mb"] = current_kib / 1024.0
    if _cuda_in_use():
        import torch

        memory["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / MB
        memory["cuda_peak_reserved_mb"] = torch.cuda.max_memory_reserved() / MB
    return memory


def reset_peak_memory() -> bool:
    """Reset the CUDA peak statistics and, on Linux, the process's peak RSS (``VmHWM``).

    Returns:
        Whether the host peak was reset (writing ``5`` to ``/proc/self/clear_refs``); where it
        cannot be, ``peak_rss_mb`` stays the lifetime peak.
    """
    if _cuda_in_use():
        import torch

        torch.cuda.reset_peak_memory_stats()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


@contextmanager
def memory_window() -> Iterator[dict[str, float]]:
    """Measure peak memory over a block: resets the peaks, fills the yielded dict on exit.

    Usage::

        with memory_window() as memory:
            timing = backend.train(...)
        result.memory = memory
    """
    memory: dict[str, float] = {}
    reset_peak_memory()
    try:
        yield memory
    finally:
        memory.update(peak_memory())
