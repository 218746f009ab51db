"""Property: our features are the seed notebook's, for any batch, tokenizer side and shape.

Random contexts and questions (unicode, whitespace runs, words that split or become unknown),
answers at window edges, anywhere, or absent, several answers per question, both padding and
truncation sides, several (max_length, doc_stride) pairs, BERT- and RoBERTa-style tokenizers:
``qa.task.preprocessing`` must produce exactly the seed's columns (with the seed's labelling slip
corrected: ``stop_at_context_end``), and never leave its fast path on the way.
"""

from __future__ import annotations

import logging

import pytest
from helpers.squad_strategies import (
    SHAPES,
    SIDES,
    TOKENIZERS,
    encode_plain,
    squad_batches,
    texts,
    token_count,
)
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.oracles import seed
from qa.task.preprocessing import FastPathStats, prepare_train_features, prepare_validation_features


def seed_offsets(rows: list) -> list:
    """The seed's offsets with None read as [-1, -1]."""
    return [[[-1, -1] if o is None else list(o) for o in row] for row in rows]


@given(data=st.data(), shape=st.sampled_from(SHAPES), sides=st.sampled_from(SIDES),
       kind=st.sampled_from(sorted(TOKENIZERS)))
def test_train_features_equal_the_corrected_seed(data: st.DataObject, shape: tuple[int, int],
                                                 sides: tuple[str, str], kind: str) -> None:
    tokenizer = TOKENIZERS[kind](*sides)
    batch = data.draw(squad_batches(tokenizer, *shape))
    stats = FastPathStats()
    ours = prepare_train_features(batch, tokenizer, *shape, stats=stats)
    theirs = seed.prepare_train_features(batch, tokenizer, *shape, stop_at_context_end=True)
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key] == theirs[key], key
    assert (stats.batches, stats.fallbacks) == (1, 0), stats.reasons


@given(data=st.data(), shape=st.sampled_from(SHAPES), sides=st.sampled_from(SIDES),
       kind=st.sampled_from(sorted(TOKENIZERS)))
def test_validation_features_equal_the_seed(data: st.DataObject, shape: tuple[int, int],
                                            sides: tuple[str, str], kind: str) -> None:
    tokenizer = TOKENIZERS[kind](*sides)
    batch = data.draw(squad_batches(tokenizer, *shape))
    stats = FastPathStats()
    ours = prepare_validation_features(batch, tokenizer, *shape, stats=stats)
    theirs = seed.prepare_validation_features(batch, tokenizer, *shape)
    assert list(ours) == list(theirs)
    for key in ("input_ids", "token_type_ids", "attention_mask", "example_id"):
        assert ours.get(key) == theirs.get(key), key
    assert [row.tolist() for row in ours["offset_mapping"]] == seed_offsets(
        theirs["offset_mapping"])
    assert (stats.batches, stats.fallbacks) == (1, 0), stats.reasons


def _cut_question(tokenizer: object, question: str, budget: int) -> str:
    """The documented truncation of a question that leaves the context too little room: its
    longest prefix that ends where one of its first ``budget`` tokens ends and encodes to at most
    ``budget`` tokens (cutting inside a word, e.g. inside an emoji's byte-level pieces, can
    encode to more tokens than were kept)."""
    ends = [end for _, end in encode_plain(tokenizer, question).offsets[:budget]]
    return next((question[:end] for end in reversed(ends)
                 if token_count(tokenizer, question[:end]) <= budget), "")


@given(data=st.data(), shape=st.sampled_from(SHAPES[1:]), extra=st.integers(0, 40),
       kind=st.sampled_from(sorted(TOKENIZERS)))
def test_a_long_question_is_cut_to_the_budget_and_the_rest_is_the_seeds(
        data: st.DataObject, shape: tuple[int, int], extra: int, kind: str) -> None:
    """A question that leaves the context no more room than the stride makes the seed's
    tokenizer call fail; ours cuts it after ``max_length - special - doc_stride - 1`` tokens
    (warning once) and makes exactly the seed's features for the cut question."""
    max_length, doc_stride = shape
    tokenizer = TOKENIZERS[kind]()
    batch = data.draw(squad_batches(tokenizer, *shape, max_examples=2))
    special = tokenizer.backend_tokenizer.num_special_tokens_to_add(True)
    budget = max_length - special - doc_stride - 1
    piece = data.draw(texts(1, 6)).strip() or "north"
    words = piece
    while token_count(tokenizer, words) <= budget + extra:
        words += " " + piece
    batch["question"][0] = words
    batch["context"] = [c + " sea" * max_length for c in batch["context"]]  # always overflows
    logger = logging.getLogger("qa.task.preprocessing")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        ours = prepare_train_features(batch, tokenizer, *shape)
    finally:
        logger.removeHandler(handler)
    assert [r.levelno for r in records if r.levelno >= logging.WARNING] == [logging.WARNING]
    cut = {**batch, "question": [_cut_question(tokenizer, words, budget), *batch["question"][1:]]}
    assert 0 < token_count(tokenizer, cut["question"][0]) <= budget
    with pytest.raises(BaseException, match="(?i)truncat|stride"):  # or a Rust panic
        seed.prepare_train_features(batch, tokenizer, *shape)
    theirs = seed.prepare_train_features(cut, tokenizer, *shape, stop_at_context_end=True)
    for key in ours:
        assert ours[key] == theirs[key], key
