"""qa.task.postprocessing at its boundaries: the defaults users rely on, threshold equality, the
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
from helpers.squad_strategies import bert_tokenizer

from benchmarks.oracles import seed
from qa.config.schema import DataConfig, PostprocessConfig
from qa.errors import QABenchError
from qa.task.postprocessing import postprocess_qa_predictions
from qa.task.preprocessing import prepare_train_features, prepare_validation_features

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


# ---------------------------------------------------------------- ties, n-best 1, logits dtypes


def test_tied_spans_go_to_the_higher_ranked_start_not_the_lower_index() -> None:
    """Two spans of equal score, B-Y (B = ctx[2], start logit 1) and A-X (A = ctx[5], start
    logit 2): the seed's loop meets A first (starts ranked by their *start* logits) and keeps its
    span, although B comes first in token order. Exactly two spans tie."""
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[2]], start[0, ctx[5]] = 1.0, 2.0
    end[0, ctx[3]], end[0, ctx[6]] = 2.0, 1.0  # B-Y = 3, A-X = 3, B-X = 2, A-Y: end before start
    assert postprocess_qa_predictions(examples, feats, start, end) == {
        "q": span_text(feats, ctx[5], ctx[6])}


def test_n_best_1_considers_only_the_top_start_and_end() -> None:
    """The top start (ctx[10]) lies after the top end (ctx[4]): at n-best 1 there is no valid
    span; the second-best start (ctx[2]) makes one from n-best 2 on."""
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[10]], start[0, ctx[2]] = 5.0, 4.0
    end[0, ctx[4]] = 5.0
    assert postprocess_qa_predictions(examples, feats, start, end, n_best_size=1) == {"q": ""}
    assert postprocess_qa_predictions(examples, feats, start, end, n_best_size=2) == {
        "q": span_text(feats, ctx[2], ctx[4])}


def test_equal_logits_at_the_n_best_cut_keep_the_lowest_indices() -> None:
    """Thirty starts share one logit and only five fit in the n-best: the five lowest token
    indices (ctx[0..4]), whatever order a sort leaves equal values in. The single end is ctx[0],
    so only a start at ctx[0] makes a span: it must be among the five."""
    examples, feats, ctx = features()
    start, end = logits(len(feats["input_ids"]))
    start[0, ctx[:30]] = 1.0
    end[0, ctx[0]] = 1.0
    got = postprocess_qa_predictions(examples, feats, start, end, n_best_size=5)
    assert got == {"q": span_text(feats, ctx[0], ctx[0])}


def test_float32_null_minus_best_is_rounded_in_float32() -> None:
    """null - best is computed in the logits' dtype, as the seed's numpy scalars do: a null score
    of 2**24 + 2 minus a best span of 1.0 is 2**24 + 1 in float64 but rounds to 2**24 in float32,
    which does not exceed a threshold of 2**24 + 0.5 (itself 2**24 in float32): answered."""
    examples, feats, ctx = features()
    start, end = (x.astype(np.float32) for x in logits(len(feats["input_ids"])))
    start[0, ctx[2]], end[0, ctx[2]] = 0.5, 0.5  # best span: 1.0
    start[:, 0], end[:, 0] = 2.0**24, 2.0  # null: 2**24 + 2, exact in float32
    threshold = 2.0**24 + 0.5
    answer = {"q": span_text(feats, ctx[2], ctx[2])}
    assert postprocess_qa_predictions(examples, feats, start, end, version_2=True,
                                      null_score_diff_threshold=threshold) == answer
    wide = (start.astype(np.float64), end.astype(np.float64))
    assert postprocess_qa_predictions(examples, feats, *wide, version_2=True,
                                      null_score_diff_threshold=threshold) == {"q": ""}


# ---------------------------------------------------------------- input forms of the columns


def seed_form(feats: dict, cut: list[int] | None = None, empty: Any = None) -> list[list]:
    """The seed's offsets (``empty`` off the context), rows cut to ``cut`` tokens if given."""
    rows = [[None if o[0] < 0 else [int(o[0]), int(o[1])] for o in row.tolist()]
            for row in feats["offset_mapping"]]
    rows = [[empty if o is None else o for o in row] for row in rows]
    return rows if cut is None else [row[:n] for row, n in zip(rows, cut, strict=True)]


@pytest.mark.parametrize("form", ["empty-pairs", "ragged", "ragged-none", "null-row",
                                  "record-batch", "array"])
def test_offset_columns_of_every_shape_give_the_seed_answers(form: str) -> None:
    """Offsets read from Arrow (a Dataset or a RecordBatch, even or ragged rows, ``[]`` or
    ``None`` off the context, a feature without offsets) or from one ``[n, w, 2]`` integer array:
    the seed loop's answers (its offsets: ``None`` off the context, the same rows)."""
    import datasets
    import pyarrow as pa

    examples, feats, _ = features()
    n_feat = len(feats["input_ids"])
    cut = [WIDTH - 7 * f - 3 for f in range(n_feat)]  # ragged rows, all ending in the context
    if form == "empty-pairs":
        ours: Any = seed_form(feats, empty=[])
        reference = seed_form(feats)
    elif form == "ragged":
        ours = [row[:n].tolist() for row, n in zip(feats["offset_mapping"], cut, strict=True)]
        reference = seed_form(feats, cut)
    elif form == "ragged-none":
        ours = reference = seed_form(feats, cut)
    elif form == "null-row":  # feature 0 has no offsets at all: the seed's [] row
        ours = [None, *seed_form(feats)[1:]]
        reference = [[], *seed_form(feats)[1:]]
    else:
        ours = [row.tolist() for row in feats["offset_mapping"]]
        reference = seed_form(feats)
    columns = {"example_id": feats["example_id"], "offset_mapping": ours}
    if form == "record-batch":
        table: Any = pa.RecordBatch.from_pydict(columns)
    elif form == "array":
        table = {**columns, "offset_mapping": np.stack(feats["offset_mapping"])}
    else:
        table = datasets.Dataset.from_dict(columns)
    for trial in range(2):
        start, end = np.random.default_rng(trial).normal(size=(2, n_feat, WIDTH))
        start[np.arange(n_feat), np.array(cut) - 2] += 3.0  # good starts near the cuts
        expected = dict(seed.postprocess_qa_predictions(
            examples, seed._rows({**feats, "offset_mapping": reference}), (start, end),
            bert_tokenizer()))
        assert expected["q"]
        assert postprocess_qa_predictions(examples, table, start, end) == expected


def test_a_single_feature_with_seed_offsets_gives_the_seed_answer() -> None:
    """One feature whose offsets are the seed's Python rows (``None`` off the context), the
    token-by-token path with a single row: the seed loop's answer."""
    examples, feats, context = features()
    one = {key: values[:1] for key, values in feats.items()}
    rows = seed_form(one)
    start, end = logits(1, fill=0.0)
    start[0, context[3]], end[0, context[5]] = 4.0, 3.0
    expected = dict(seed.postprocess_qa_predictions(
        examples, seed._rows({**one, "offset_mapping": rows}), (start, end), bert_tokenizer()))
    assert expected == {"q": span_text(one, context[3], context[5])}
    columns = {"example_id": one["example_id"], "offset_mapping": rows}
    assert postprocess_qa_predictions(examples, columns, start, end) == expected


@pytest.mark.parametrize("row", [
    [[0, 1, 2]],                # three numbers
    [[5], []],                  # one number for two tokens (no None: no null entries)
    [None, [0, 1, 2, 3]],       # the only None and four numbers: two per token on average
])
def test_arrow_offsets_that_are_not_pairs_are_rejected(row: list) -> None:
    """An Arrow offset entry that is neither a [start, end] pair nor empty/None is a user error,
    whatever the count of numbers in the column comes out at."""
    import pyarrow as pa

    table = pa.RecordBatch.from_pydict({"example_id": ["q"], "offset_mapping": [row]})
    start, end = np.zeros((2, 1, len(row)))
    with pytest.raises(QABenchError, match=r"\[start, end\] pairs"):
        postprocess_qa_predictions({"id": ["q"], "context": ["abcdef"]}, table, start, end)


@pytest.mark.parametrize("form", ["ndarray", "array-rows", "tuples", "record-batch", "arrow-array"])
def test_cls_token_is_found_in_every_input_ids_form(form: str) -> None:
    """``input_ids`` as one 2-D array, a list of 1-D arrays, tuples, an Arrow RecordBatch
    column (no ``combine_chunks``) or a pyarrow array in a dict of columns (read through Arrow,
    not as Python lists of Arrow scalars): the null score is read at each feature's CLS token."""
    import pyarrow as pa

    examples, feats, ctx = features("left")  # CLS after the context, not at position 0
    n_feat = len(feats["input_ids"])
    cls_id = bert_tokenizer().cls_token_id
    cls = np.array([ids.index(cls_id) for ids in feats["input_ids"]])
    assert cls.any()  # some feature has padding before its CLS token
    ids = {"ndarray": np.array(feats["input_ids"]),
           "array-rows": [np.array(row) for row in feats["input_ids"]],
           "tuples": [tuple(row) for row in feats["input_ids"]],
           "record-batch": feats["input_ids"], "arrow-array": pa.array(feats["input_ids"])}[form]
    columns = {"example_id": feats["example_id"], "input_ids": ids,
               "offset_mapping": [row.tolist() for row in feats["offset_mapping"]]}
    table = pa.RecordBatch.from_pydict(columns) if form == "record-batch" else columns
    start, end = logits(n_feat)
    start[0, ctx[1]], end[0, ctx[1]] = 3.0, 3.0  # best span: 6.0
    rows = np.arange(n_feat)
    start[rows, cls], end[rows, cls] = 4.0, 4.0  # null 8.0 at the CLS tokens only
    assert postprocess_qa_predictions(examples, table, start, end, version_2=True,
                                      cls_token_id=cls_id) == {"q": ""}


@pytest.mark.parametrize("form", ["ndarray", "arrow"])
def test_one_feature_without_a_cls_token_is_rejected(form: str) -> None:
    """Rows of one length (read as one array): a single feature without CLS is an error too."""
    import datasets

    examples, feats, _ = features()
    cls_id = bert_tokenizer().cls_token_id
    ids = [list(row) for row in feats["input_ids"]]
    ids[-1] = [0 if t == cls_id else t for t in ids[-1]]
    broken = {**feats, "input_ids": np.array(ids) if form == "ndarray" else ids}
    table = broken if form == "ndarray" else datasets.Dataset.from_dict(broken)
    start, end = logits(len(ids))
    with pytest.raises(QABenchError, match="no CLS token"):
        postprocess_qa_predictions(examples, table, start, end, version_2=True,
                                   cls_token_id=cls_id)


def test_contexts_are_read_only_when_some_example_is_answered() -> None:
    """No example answered (no valid span): the answers are all "" and the examples' context
    column is not needed (only ids)."""
    examples, feats, _ = features()
    start, end = logits(len(feats["input_ids"]))  # every logit -inf: no span is valid
    assert postprocess_qa_predictions({"id": ["q"]}, feats, start, end) == {"q": ""}
    start[0, 20], end[0, 20] = 1.0, 1.0
    with pytest.raises(QABenchError, match="'context'"):
        postprocess_qa_predictions({"id": ["q"]}, feats, start, end)
    assert examples["context"]
