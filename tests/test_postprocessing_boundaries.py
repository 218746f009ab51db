"""qa.postprocessing at its boundaries: the defaults users rely on, threshold equality, the
null score at the CLS token, logits dtypes, and input forms that must be rejected.

Each test builds logits by hand over real features of one long context, so that exactly one
setting decides the answer: every logit is -inf (a span using it never wins) except the few a test
sets.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from squad_strategies import bert_tokenizer

from qa.config import DataConfig, PostprocessConfig
from qa.errors import QABenchError
from qa.postprocessing import postprocess_qa_predictions
from qa.preprocessing import prepare_train_features, prepare_validation_features

CONTEXT = " ".join(["the", "old", "river", "city"] * 20)  # 80 single-token words
WIDTH = 64


def features(padding_side: str = "right", **columns: Any) -> tuple[dict, dict, np.ndarray]:
    """(examples, features, context token positions of feature 0) for one overflowing context."""
    examples = {"id": ["q"], "question": ["which river ?"], "context": [CONTEXT], **columns}
    feats = prepare_validation_features(examples, bert_tokenizer(padding_side), WIDTH, 16)
    return examples, feats, np.flatnonzero(feats["offset_mapping"][0][:, 0] >= 0)


def logits(n_feat: int, fill: float = -np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits all at ``fill``."""
    return np.full((n_feat, WIDTH), fill), np.full((n_feat, WIDTH), fill)


def span_text(feats: dict, start: int, end: int, feature: int = 0) -> str:
    offsets = feats["offset_mapping"][feature]
    return CONTEXT[offsets[start][0]: offsets[end][1]]


def test_run_config_defaults_are_the_functions_defaults() -> None:
    """``qa-bench run`` (the config) and the library functions share the notebook's defaults:
    384/128 windows, n-best 20, answers of at most 30 tokens, null threshold 0.0."""
    post = inspect.signature(postprocess_qa_predictions).parameters
    config = PostprocessConfig()
    assert {name: post[name].default for name in
            ("n_best_size", "max_answer_length", "null_score_diff_threshold")} == {
        "n_best_size": config.n_best_size, "max_answer_length": config.max_answer_length,
        "null_score_diff_threshold": config.null_score_diff_threshold}
    data = DataConfig()
    for function in (prepare_train_features, prepare_validation_features):
        pre = inspect.signature(function).parameters
        assert (pre["max_length"].default, pre["doc_stride"].default) == (
            data.max_length, data.doc_stride)


def test_version_2_is_off_by_default() -> None:
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[3]], end[0, ctx[5]] = 5.0, 5.0
    start[:, 0], end[:, 0] = 6.0, 6.0  # the null answer would win under SQuAD v2
    assert postprocess_qa_predictions(examples, feats, start, end) == {
        "q": span_text(feats, ctx[3], ctx[5])}
    assert postprocess_qa_predictions(examples, feats, start, end, version_2=True) == {"q": ""}


@pytest.mark.parametrize("side", ["start", "end"])
def test_n_best_default_is_20(side: str) -> None:
    """The only valid span uses the 21st-highest start (or end) logit: out of reach at the
    default n-best of 20, found at 21. The 20 higher ones only make spans of negative length."""
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    target = int(ctx[4] if side == "start" else ctx[30])
    ranked, other = (start, end) if side == "start" else (end, start)
    higher = range(target + 1, target + 21) if side == "start" else range(target - 20, target)
    ranked[0, list(higher)] = np.arange(20) + 100.0
    ranked[0, target] = other[0, target] = 50.0
    assert postprocess_qa_predictions(examples, feats, start, end) == {"q": ""}
    assert postprocess_qa_predictions(examples, feats, start, end, n_best_size=21) == {
        "q": span_text(feats, target, target)}


def test_max_answer_length_default_is_30_tokens() -> None:
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[0]], end[0, ctx[0]] = 10.0, -5.0  # one token: 5
    end[0, ctx[29]], end[0, ctx[30]] = 9.0, 10.0  # 30 tokens score 19; 31 tokens would score 20
    assert postprocess_qa_predictions(examples, feats, start, end) == {
        "q": span_text(feats, ctx[0], ctx[29])}
    assert postprocess_qa_predictions(examples, feats, start, end, max_answer_length=31) == {
        "q": span_text(feats, ctx[0], ctx[30])}
    # One token: a start and an end on the same token.
    assert postprocess_qa_predictions(examples, feats, start, end, max_answer_length=1) == {
        "q": span_text(feats, ctx[0], ctx[0])}


@pytest.mark.parametrize(("null_minus_best", "threshold", "answered"), [
    (0.0, None, True),     # default threshold 0.0: a tie with the null answer answers
    (0.5, None, False),    # null ahead by more than 0.0
    (0.5, 0.5, True),      # exactly at the threshold: not above it, so answered
    (0.75, 0.5, False),
    (-0.5, -0.5, True),
    (-0.25, -0.5, False),  # a negative threshold asks for a margin over the null score
])
def test_null_threshold_boundary(null_minus_best: float, threshold: float | None,
                                 answered: bool) -> None:
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[2]], end[0, ctx[2]] = 2.0, 2.0  # best span: score 4.0
    start[:, 0] = 2.0 + null_minus_best  # CLS (position 0): every feature's null score
    end[:, 0] = 2.0
    kwargs = {} if threshold is None else {"null_score_diff_threshold": threshold}
    got = postprocess_qa_predictions(examples, feats, start, end, version_2=True, **kwargs)
    assert got == {"q": span_text(feats, ctx[2], ctx[2]) if answered else ""}


@pytest.mark.parametrize("form", ["lists", "arrow", "arrow-ragged"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_null_score_is_read_at_the_cls_token(form: str, padding_side: str) -> None:
    """With ``cls_token_id`` the null score is read where each feature's CLS token is (last
    when padded on the left), from lists and from Arrow columns alike; nowhere else."""
    import datasets

    examples, feats, ctx = features(padding_side)
    n_feat = len(feats["input_ids"])
    cls_id = bert_tokenizer().cls_token_id
    cls = np.array([ids.index(cls_id) for ids in feats["input_ids"]])
    start, end = logits(n_feat)
    start[0, ctx[1]], end[0, ctx[1]] = 3.0, 3.0  # best span: 6.0
    rows = np.arange(n_feat)
    start[rows, cls], end[rows, cls] = 4.0, 4.0  # null: 8.0, only at the CLS token
    table: Any = feats
    if form == "arrow":
        table = datasets.Dataset.from_dict(feats)
    elif form == "arrow-ragged":  # rows of different lengths: the Arrow column is read as lists
        table = datasets.Dataset.from_dict({**feats, "input_ids": [
            ids[: cls[f] + 1 + (f % 3)] for f, ids in enumerate(feats["input_ids"])]})
    got = postprocess_qa_predictions(examples, table, start, end, version_2=True,
                                     cls_token_id=cls_id)
    assert got == {"q": ""}
    start[rows, cls] = 1.0  # null 5.0 < 6.0: the span wins
    assert postprocess_qa_predictions(examples, table, start, end, version_2=True,
                                      cls_token_id=cls_id) == {"q": span_text(feats, ctx[1],
                                                                                ctx[1])}


@pytest.mark.parametrize("form", ["lists", "arrow"])
def test_features_without_a_cls_token_are_rejected(form: str) -> None:
    import datasets

    examples, feats, _ = features()
    cls_id = bert_tokenizer().cls_token_id
    broken = {**feats, "input_ids": [[t for t in ids if t != cls_id] + [0]
                                     for ids in feats["input_ids"]]}
    start, end = logits(len(feats["input_ids"]))
    table = broken if form == "lists" else datasets.Dataset.from_dict(broken)
    with pytest.raises(QABenchError, match="no CLS token"):
        postprocess_qa_predictions(examples, table, start, end, version_2=True,
                                   cls_token_id=cls_id)


def test_float32_logits_are_compared_in_float32_like_the_seed() -> None:
    """A model's float32 logits: scores are summed in float32, as the seed's numpy scalars are.
    Here float32 rounding makes the null score equal the best span's (an answer), where float64
    would put it 1.0 ahead (no answer)."""
    examples, feats, ctx = features()
    start, end = (x.astype(np.float32) for x in logits(len(feats["input_ids"])))
    start[0, ctx[2]], end[0, ctx[2]] = 2.0**24 - 1, 1.0  # best span: 2**24 in both dtypes
    start[:, 0], end[:, 0] = 2.0**24, 1.0  # null: 2**24 in float32, 2**24 + 1 in float64
    answer = {"q": span_text(feats, ctx[2], ctx[2])}
    assert postprocess_qa_predictions(examples, feats, start, end, version_2=True) == answer
    wide = (start.astype(np.float64), end.astype(np.float64))
    assert postprocess_qa_predictions(examples, feats, *wide, version_2=True) == {"q": ""}


def test_integer_and_list_logits_give_the_float_answers() -> None:
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]), fill=-10.0)  # integers cannot hold -inf
    start[0, ctx[6]], end[0, ctx[8]] = 4.0, 3.0
    expected = postprocess_qa_predictions(examples, feats, start, end)
    assert expected == {"q": span_text(feats, ctx[6], ctx[8])}
    as_int = (start.astype(np.int64), end.astype(np.int64))
    assert postprocess_qa_predictions(examples, feats, *as_int) == expected
    assert postprocess_qa_predictions(examples, feats, start.tolist(), end.tolist()) == expected


def test_mismatched_inputs_are_user_errors() -> None:
    examples, feats, _ = features()
    n_feat = len(feats["input_ids"])
    start, end = logits(n_feat)
    with pytest.raises(QABenchError, match="do not match"):  # start and end disagree
        postprocess_qa_predictions(examples, feats, start, end[:, :-1])
    with pytest.raises(QABenchError, match=r"\[n_features, seq_len\]"):
        postprocess_qa_predictions(examples, feats, start[0], end[0])
    for rows in (feats["offset_mapping"][:-1], np.stack(feats["offset_mapping"])[:-1]):
        with pytest.raises(QABenchError, match="offset_mapping has"):
            postprocess_qa_predictions(examples, {**feats, "offset_mapping": rows}, start, end)
    with pytest.raises(QABenchError, match="'context'"):
        postprocess_qa_predictions({"id": ["q"]}, feats, *logits(n_feat, fill=0.0))


@pytest.mark.parametrize("n_best", [20, 40])
def test_equal_logits_rank_by_token_index(n_best: int) -> None:
    """Spans of equal score: the one whose start has the higher rank wins, and equal logits
    rank by token index, lowest first — whatever order a sort would leave them in."""
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    pattern = [0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1]
    start[0, ctx[:20]] = pattern  # eleven starts of logit 1, all scoring 1 + 10 with the end
    end[0, ctx[20]] = 10.0
    got = postprocess_qa_predictions(examples, feats, start, end, n_best_size=n_best,
                                     max_answer_length=64)
    assert got == {"q": span_text(feats, ctx[pattern.index(1)], ctx[20])}
    # The same with the roles swapped: equal end logits, the lowest-index end wins.
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[0]] = 10.0
    end[0, ctx[1:21]] = pattern
    got = postprocess_qa_predictions(examples, feats, start, end, n_best_size=n_best,
                                     max_answer_length=64)
    assert got == {"q": span_text(feats, ctx[0], ctx[1 + pattern.index(1)])}
