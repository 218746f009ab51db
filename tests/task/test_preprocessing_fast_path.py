"""The preprocessing fast path is taken, and a batch that leaves it is counted and logged.

Preprocessing assembles windows from separately encoded pieces and checks a few against the
tokenizer's own pair encoding; on a difference it encodes the batch pair by pair: the same
features, several times slower. Here that fallback is a test failure for the tokenizers we ship
(BERT-style WordPiece, a RoBERTa-style byte-level BPE) on the synthetic data and, with
``QA_BENCH_SQUAD_DIR`` and ``QA_BENCH_VOCAB`` set, on SQuAD dev v1.1 with the bert-base-uncased
vocabulary — so a speed regression cannot pass unnoticed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.squad_strategies import TOKENIZERS

from qa.task import preprocessing
from qa.task.data import read_squad_json
from qa.task.preprocessing import FastPathStats, prepare_train_features, prepare_validation_features
from qa.task.synthetic import generate_squad

# Examples per batch, as datasets.Dataset.map passes them by default.
BATCH = 1000


def columns(records: list[dict[str, Any]]) -> dict[str, list]:
    """Flat records (``qa.task.data.read_squad_json``) as batch columns."""
    return {key: [r[key] for r in records] for key in ("id", "question", "context", "answers")}


def batches(examples: dict[str, list], size: int) -> Iterator[dict[str, list]]:
    for lo in range(0, len(examples["id"]), size):
        yield {key: values[lo: lo + size] for key, values in examples.items()}


def encode_all(examples: dict[str, list], tokenizer: Any, size: int, max_length: int = 384,
               doc_stride: int = 128) -> FastPathStats:
    """Train and validation features of every batch; the fast path's counts."""
    stats = FastPathStats()
    for batch in batches(examples, size):
        prepare_train_features(batch, tokenizer, max_length, doc_stride, stats=stats)
        prepare_validation_features(batch, tokenizer, max_length, doc_stride, stats=stats)
    return stats


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """Synthetic v2 data (unanswerable questions, long contexts) as columns."""
    path = tmp_path_factory.mktemp("synthetic") / "train.json"
    path.write_text(json.dumps(generate_squad(60, 3, unanswerable_fraction=0.2)))
    return columns(read_squad_json(path, version_2=True))


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
@pytest.mark.parametrize(("padding_side", "max_length", "doc_stride"),
                         [("right", 384, 128), ("left", 384, 128), ("right", 128, 32)])
def test_synthetic_data_stays_on_the_fast_path(synthetic: dict[str, list], kind: str,
                                               padding_side: str, max_length: int,
                                               doc_stride: int) -> None:
    tokenizer = TOKENIZERS[kind](padding_side)
    stats = encode_all(synthetic, tokenizer, 64, max_length, doc_stride)
    assert stats.batches == 2 * -(-len(synthetic["id"]) // 64)
    assert (stats.fallbacks, stats.reasons) == (0, {})


def test_a_rejected_batch_is_counted_and_logged(synthetic: dict[str, list],
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A template that assembles the wrong windows (type ids swapped): the spot check rejects
    the batch, the features are still right, and the count and the log say so."""
    tokenizer = TOKENIZERS["bert"]()
    batch = next(batches(synthetic, 20))
    right = prepare_validation_features(batch, tokenizer)
    real = preprocessing._template
    monkeypatch.setattr(preprocessing, "_template", lambda *args: [
        (kind, token, 1 - type_id if kind >= 0 else type_id)
        for kind, token, type_id in real(*args)])
    stats = FastPathStats()
    with caplog.at_level(logging.DEBUG, logger="qa.task.preprocessing"):
        got = prepare_validation_features(batch, tokenizer, stats=stats)
        prepare_train_features(batch, tokenizer, stats=stats)
    assert got["token_type_ids"] == right["token_type_ids"]
    assert stats == FastPathStats(2, 2, {"disagreement": 2})
    assert [r.getMessage() for r in caplog.records] == [
        "fast path rejected (disagreement): encoding this batch of 20 pair by pair"] * 2


def test_a_batch_without_a_template_probe_is_counted() -> None:
    """No example has both question and context tokens: the pair layout cannot be read, and
    the batch (correctly) goes pair by pair — counted, with its reason."""
    tokenizer = TOKENIZERS["bert"]()
    batch = {"id": ["a", "b"], "question": ["who ?", "what ?"], "context": ["", " "],
             "answers": [{"text": [], "answer_start": []}] * 2}
    stats = FastPathStats()
    prepare_train_features(batch, tokenizer, stats=stats)
    assert stats == FastPathStats(1, 1, {"template": 1})
    empty = {key: [] for key in batch}
    prepare_validation_features(empty, tokenizer, stats=stats)  # nothing encoded, not counted
    assert stats.batches == 1


def test_counts_merge_and_round_trip() -> None:
    one = FastPathStats(3, 1, {"disagreement": 1})
    one.merge(FastPathStats(2, 2, {"template": 1, "disagreement": 1}))
    assert one == FastPathStats(5, 3, {"disagreement": 2, "template": 1})
    assert FastPathStats.from_dict(one.to_dict()) == one
    assert one.to_dict() == {"batches": 5, "fallbacks": 3,
                             "reasons": {"disagreement": 2, "template": 1}}


def _squad_inputs() -> tuple[Path, Path] | None:
    squad, vocab = os.environ.get("QA_BENCH_SQUAD_DIR"), os.environ.get("QA_BENCH_VOCAB")
    if not squad or not vocab:
        return None
    return Path(squad) / "dev-v1.1.json", Path(vocab)


@pytest.mark.slow
@pytest.mark.skipif(_squad_inputs() is None,
                    reason="set QA_BENCH_SQUAD_DIR and QA_BENCH_VOCAB (bert-base-uncased)")
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_squad_dev_stays_on_the_fast_path(padding_side: str) -> None:
    from qa.task.models import tokenizer_from_vocab

    path, vocab = _squad_inputs()  # type: ignore[misc]
    tokenizer = tokenizer_from_vocab(vocab)
    tokenizer.padding_side = padding_side
    examples = columns(read_squad_json(path))
    stats = encode_all(examples, tokenizer, BATCH)
    print(f"\nSQuAD dev v1.1, padding {padding_side}: {len(examples['id'])} examples, "
          f"{stats.batches} batches, {stats.fallbacks} fallbacks")
    assert stats.batches == 2 * -(-len(examples["id"]) // BATCH)
    assert (stats.fallbacks, stats.reasons) == (0, {})
