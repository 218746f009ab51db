"""Models built from a config: specs, attention implementation choice, clear errors."""

from __future__ import annotations

import pytest
import torch

from qa.config.schema import TrainConfig
from qa.errors import QABenchError
from qa.task.models import TINY_MODELS, build_tiny_model


def test_tiny_bert_takes_sdpa_and_eager_with_equal_outputs() -> None:
    ids = torch.randint(5, 90, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    outputs = {}
    for impl in ("eager", "sdpa"):
        model = build_tiny_model("tiny-bert", 100, TrainConfig(seed=3), 64, impl).eval()
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            outputs[impl] = model(input_ids=ids, attention_mask=mask).start_logits
    torch.testing.assert_close(outputs["sdpa"], outputs["eager"], rtol=1e-4, atol=1e-5)


def test_unsupported_attention_is_a_one_line_error() -> None:
    with pytest.raises(QABenchError) as info:
        build_tiny_model("tiny-roformer", 100, TrainConfig(), 64, "sdpa")
    message = str(info.value)
    assert "tiny-roformer" in message and "sdpa" in message and "\n" not in message


def test_bert_base_random_has_bert_base_shape() -> None:
    spec = TINY_MODELS["bert-base-random"]
    assert (spec.hidden_size, spec.num_hidden_layers, spec.num_attention_heads,
            spec.intermediate_size) == (768, 12, 12, 3072)
    model = build_tiny_model("bert-base-random", 30522, TrainConfig(), 384)
    # BERT-base's encoder and embeddings (the 0.6 M pooler is not part of a QA model).
    assert 108_000_000 < sum(p.numel() for p in model.parameters()) < 109_000_000
