"""Model FLOPs against torch's own FLOP counter, the peak probe, MFU and peak memory."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    BertConfig,
    BertForQuestionAnswering,
    DistilBertConfig,
    RoFormerConfig,
    RoFormerForQuestionAnswering,
)

from qa.errors import QABenchError
from qa.measure.efficiency import (
    efficiency_summary,
    encoder_shape,
    flops_per_token,
    measure_peak_flops,
    memory_window,
    mfu,
    model_flops_per_sample,
    peak_memory,
)

SIZES = dict(
    vocab_size=97,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=160,
    max_position_embeddings=256,
)


def bert_config(**overrides: int) -> BertConfig:
    # Eager attention: its matmuls are plain bmm, counted once each by FlopCounterMode. The
    # fused SDPA kernels are counted differently (see the qa.measure.efficiency docstring).
    return BertConfig(**{**SIZES, **overrides}, attn_implementation="eager")


def roformer_config() -> RoFormerConfig:
    # embedding_size != hidden_size, so the embeddings_project matmul is exercised too.
    return RoFormerConfig(**SIZES, embedding_size=48, attn_implementation="eager")


def counted_flops(model: torch.nn.Module, batch: int, seq_len: int) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one training step, as torch counts them."""
    torch.manual_seed(0)
    ids = torch.randint(1, SIZES["vocab_size"], (batch, seq_len))
    positions = torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        loss = model(input_ids=ids, start_positions=positions, end_positions=positions).loss
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        loss.backward()
    return forward, forward + counter.get_total_flops()


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: BertForQuestionAnswering(bert_config()),
        lambda: RoFormerForQuestionAnswering(roformer_config()),
    ],
    ids=["bert", "roformer"],
)
@pytest.mark.parametrize("seq_len", [32, 96])
def test_formula_matches_flop_counter(make_model, seq_len: int) -> None:
    model = make_model()
    batch = 2
    forward, training = counted_flops(model, batch, seq_len)
    # Both count the same matmuls at 2mnk; elementwise ops are free in both. rel=1e-3 is
    # tighter than the QA head's share (~0.2 %), so a missing term would fail.
    assert model_flops_per_sample(model.config, seq_len, training=False) == pytest.approx(
        forward / batch, rel=1e-3
    )
    assert model_flops_per_sample(model.config, seq_len) == pytest.approx(
        training / batch, rel=1e-3
    )


def test_dynamic_lengths_average_flops_not_lengths() -> None:
    config = bert_config()
    model = BertForQuestionAnswering(config)
    lengths = [16, 80]
    counted = sum(counted_flops(model, 1, s)[1] for s in lengths) / len(lengths)
    assert model_flops_per_sample(config, lengths) == pytest.approx(counted, rel=1e-3)
    # The attention term is quadratic, so the FLOPs of the mean length undercount.
    assert model_flops_per_sample(config, 48) < model_flops_per_sample(config, lengths)
    total_tokens = sum(lengths)
    assert flops_per_token(config, lengths) == pytest.approx(counted * 2 / total_tokens)


def test_linear_in_layers_and_quadratic_attention_term() -> None:
    def forward(s: float, layers: int = 2) -> float:
        return model_flops_per_sample(bert_config(num_hidden_layers=layers), s, training=False)

    head = 2 * 64 * 2 * 32  # the QA head does not grow with depth
    assert forward(32, layers=4) - head == pytest.approx(2 * (forward(32) - head))
    # f(s) = a·s + b·s²: the second difference isolates 2·b·Δ², b = L·4·h (scores + sum).
    second_difference = forward(128) - 2 * forward(96) + forward(64)
    assert second_difference == pytest.approx(2 * 2 * 4 * 64 * 32**2)
    assert model_flops_per_sample(bert_config(), 32) == pytest.approx(3 * forward(32))


def test_distilbert_names_and_bad_configs() -> None:
    distil = DistilBertConfig(dim=64, n_layers=2, hidden_dim=160, n_heads=4)
    assert model_flops_per_sample(distil, 32) == pytest.approx(
        model_flops_per_sample(bert_config(), 32)
    )
    as_dict = {"dim": 64, "n_layers": 2, "hidden_dim": 160, "n_heads": 4}
    assert encoder_shape(as_dict) == encoder_shape(distil)
    with pytest.raises(QABenchError, match="intermediate"):
        model_flops_per_sample(
            {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}, 8
        )
    with pytest.raises(ValueError):
        model_flops_per_sample(bert_config(), [])


def test_mfu_and_summary_arithmetic() -> None:
    assert mfu(25e9, 100e9) == pytest.approx(0.25)
    assert mfu(25e9, {"peak_flops": 50e9}) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        mfu(1.0, 0.0)
    config = bert_config()
    probe = {"peak_flops": 1e12, "method": "matmul probe"}
    summary = efficiency_summary(config, 64, train_samples_per_s=10.0, peak_probe=probe)
    per_sample = model_flops_per_sample(config, 64)
    assert summary["flops_per_sample"] == per_sample
    assert summary["achieved_flops_per_s"] == pytest.approx(10 * per_sample)
    assert summary["peak_flops_per_s"] == 1e12
    assert summary["mfu"] == pytest.approx(10 * per_sample / 1e12)
    assert summary["probe"] == probe
    assert efficiency_summary(config, [32, 64], 10.0, None)["mfu"] is None


def test_peak_probe_is_quick_and_positive() -> None:
    result = measure_peak_flops(size=128, seconds=0.05)
    assert result["peak_flops"] > 0 and math.isfinite(result["peak_flops"])
    assert result["peak_flops"] >= result["median_flops"]
    assert result["rounds"] >= 3
    assert result["threads"] == torch.get_num_threads()
    assert (result["dtype"], result["size"], result["method"]) == ("float32", 128, "matmul probe")
    assert measure_peak_flops(dtype="bf16", size=64, seconds=0.01)["dtype"] == "bfloat16"
    with pytest.raises(QABenchError, match="dtype"):
        measure_peak_flops(dtype="float7")


def test_peak_memory_reports_rss() -> None:
    memory = peak_memory()
    assert memory["peak_rss_mb"] > 0
    assert memory["rss_mb"] > 0
    with memory_window() as window:
        block = torch.ones(16 * 1024 * 1024 // 4)  # 16 MiB, touched
    assert window["peak_rss_mb"] >= window["rss_mb"] - 1
    assert window["peak_rss_mb"] > 0
    del block
