"""qa.preprocessing at its boundaries: windows of a single context token, the question length at
which truncation starts, and the label of an answer on a window's edge tokens."""

from __future__ import annotations

import logging

import pytest
from squad_strategies import bert_tokenizer, token_count, token_offsets

from benchmarks.reference import seed
from qa.preprocessing import FastPathStats, prepare_train_features, prepare_validation_features

CONTEXT = "the old river city was built by the king of the north sea town"  # 15 tokens
QUESTION = "who built the city ?"


def examples_on_every_token(question: str = QUESTION) -> dict[str, list]:
    """One example per context token, answered by that token."""
    tokenizer = bert_tokenizer()
    spans = token_offsets(tokenizer, CONTEXT)
    return {"id": [f"t{i}" for i in range(len(spans))], "question": [question] * len(spans),
            "context": [CONTEXT] * len(spans),
            "answers": [{"text": [CONTEXT[s:e]], "answer_start": [s]} for s, e in spans]}


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_windows_of_a_single_context_token(padding_side: str) -> None:
    """With room for one context token and no stride, every token gets its own window, and the
    window holding an answer labels exactly that token (the seed's walk would run past it)."""
    tokenizer = bert_tokenizer(padding_side)
    special = tokenizer.backend_tokenizer.num_special_tokens_to_add(True)
    max_length = special + token_count(tokenizer, QUESTION) + 1
    examples = examples_on_every_token()
    stats = FastPathStats()
    ours = prepare_train_features(examples, tokenizer, max_length, 0, stats=stats)
    n_tokens = len(examples["id"])
    assert len(ours["input_ids"]) == n_tokens * n_tokens
    theirs = seed.prepare_train_features(examples, tokenizer, max_length, 0,
                                         stop_at_context_end=True)
    for key in ours:
        assert ours[key] == theirs[key], key
    cls = ours["input_ids"][0].index(tokenizer.cls_token_id)
    labelled = [(f // n_tokens, f % n_tokens) for f, start in enumerate(ours["start_positions"])
                if start != cls]
    assert labelled == [(i, i) for i in range(n_tokens)]  # example i: only window i
    validation = prepare_validation_features(examples, tokenizer, max_length, 0, stats=stats)
    assert all(int((row[:, 0] >= 0).sum()) == 1 for row in validation["offset_mapping"])
    assert (stats.batches, stats.fallbacks) == (2, 0)


@pytest.mark.parametrize("over", [0, 1])
def test_questions_are_cut_from_one_token_over_the_budget(over: int,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A question of ``max_length - special - doc_stride - 1`` tokens leaves the context one
    token more than the stride: kept whole. One token more and it is cut back to that length,
    with a warning."""
    tokenizer = bert_tokenizer()
    max_length, doc_stride = 32, 8
    special = tokenizer.backend_tokenizer.num_special_tokens_to_add(True)
    budget = max_length - special - doc_stride - 1
    question = " ".join(["north"] * (budget + over))
    batch = {"id": ["a"], "question": [question], "context": [CONTEXT * 4],
             "answers": [{"text": ["river"], "answer_start": [CONTEXT.index("river")]}]}
    with caplog.at_level(logging.WARNING, logger="qa.preprocessing"):
        ours = prepare_train_features(batch, tokenizer, max_length, doc_stride)
    assert len(caplog.records) == over
    kept = {**batch, "question": [" ".join(["north"] * budget)]}
    theirs = seed.prepare_train_features(kept, tokenizer, max_length, doc_stride,
                                         stop_at_context_end=True)
    for key in ours:
        assert ours[key] == theirs[key], key
