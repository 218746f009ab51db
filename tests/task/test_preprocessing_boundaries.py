"""qa.task.preprocessing at its boundaries: windows of a single context token, the question length
at
which truncation starts, and the label of an answer on a window's edge tokens."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers.squad_strategies import bert_tokenizer, roberta_tokenizer, token_count, token_offsets

from benchmarks.oracles import seed
from qa.errors import QABenchError
from qa.task import preprocessing
from qa.task.preprocessing import FastPathStats, prepare_train_features, prepare_validation_features

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
    with caplog.at_level(logging.WARNING, logger="qa.task.preprocessing"):
        ours = prepare_train_features(batch, tokenizer, max_length, doc_stride)
    assert len(caplog.records) == over
    kept = {**batch, "question": [" ".join(["north"] * budget)]}
    theirs = seed.prepare_train_features(kept, tokenizer, max_length, doc_stride,
                                         stop_at_context_end=True)
    for key in ours:
        assert ours[key] == theirs[key], key


def special_tokens(tokenizer: Any) -> int:
    return tokenizer.backend_tokenizer.num_special_tokens_to_add(True)


def assert_seed_features(ours: dict, batch: dict, tokenizer: Any, max_length: int,
                         doc_stride: int) -> None:
    """Our train features are the (corrected) seed's for ``batch``."""
    theirs = seed.prepare_train_features(batch, tokenizer, max_length, doc_stride,
                                         stop_at_context_end=True)
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key] == theirs[key], key


def test_a_one_token_budget_keeps_the_questions_first_token(
        caplog: pytest.LogCaptureFixture) -> None:
    """The smallest stride-compatible budget, one token: a longer question keeps its first token
    (not nothing); one stride more leaves no room at all, a user error naming the settings."""
    tokenizer = bert_tokenizer()
    max_length = 32
    doc_stride = max_length - special_tokens(tokenizer) - 2  # budget: 1 token
    batch = {"id": ["a"], "question": [QUESTION], "context": [CONTEXT * 3],
             "answers": [{"text": ["river"], "answer_start": [CONTEXT.index("river")]}]}
    stats = FastPathStats()
    with caplog.at_level(logging.WARNING, logger="qa.task.preprocessing"):
        ours = prepare_train_features(batch, tokenizer, max_length, doc_stride, stats=stats)
    assert [r.getMessage() for r in caplog.records] == [
        f"1 question(s) left too little room for the context at max_length=32, "
        f"doc_stride={doc_stride}: truncated to 1 tokens"]
    first_token = QUESTION[: token_offsets(tokenizer, QUESTION)[0][1]]  # "w" of "who"
    assert_seed_features(ours, {**batch, "question": [first_token]}, tokenizer, max_length,
                         doc_stride)
    assert (stats.batches, stats.fallbacks) == (1, 0)
    with pytest.raises(QABenchError, match=rf"doc_stride={doc_stride + 1} leaves no room for a "
                                           rf"question in max_length=32 \(3 special tokens\)"):
        prepare_train_features(batch, tokenizer, max_length, doc_stride + 1)


@pytest.mark.parametrize(("question", "budget", "kept"), [
    ("\U0001d518 snow", 3, ""),  # no prefix fits: the question is dropped
    ("the \U0001f680 sea king", 2, "the"),  # 'the' + the rocket's first piece: one token back
])
def test_a_cut_inside_a_split_character_retreats_token_by_token(question: str, budget: int,
                                                                 kept: str) -> None:
    """Byte-level BPE splits a rare character into byte tokens that share its character span,
    so a cut after one of them keeps the whole character and re-encodes to more tokens than
    kept: the cut retreats one token at a time until it fits the budget, down to nothing."""
    tokenizer = roberta_tokenizer()
    split = next(c for c in question if ord(c) > 0xFFFF)
    assert token_count(tokenizer, split) > 2
    max_length = 32
    doc_stride = max_length - special_tokens(tokenizer) - budget - 1
    answer = {"text": ["river"], "answer_start": [CONTEXT.index("river")]}
    # A second question, within the budget, gives the fast path its template in any case.
    batch = {"id": ["a", "b"], "question": [question, "the"], "context": [CONTEXT * 3] * 2,
             "answers": [answer] * 2}
    stats = FastPathStats()
    ours = prepare_train_features(batch, tokenizer, max_length, doc_stride, stats=stats)
    assert_seed_features(ours, {**batch, "question": [kept, "the"]}, tokenizer, max_length,
                         doc_stride)
    assert (stats.batches, stats.fallbacks) == (1, 0)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("extra", [0, 1])
def test_a_long_question_beside_a_context_that_just_fits(padding_side: str, extra: int,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The stride only matters when the pair overflows: a question that leaves the context no
    more room than ``doc_stride`` is kept whole (one window, the seed's, no warning) while the
    pair fills ``max_length`` exactly; one context token more and it is cut."""
    tokenizer = bert_tokenizer(padding_side)
    max_length, doc_stride = 32, 8
    context_words = ["the", "old", "river", "city", "was", "built", "by", "the", "king"]
    room = 7  # context tokens beside the question; <= doc_stride
    question = " ".join(["north"] * (max_length - special_tokens(tokenizer) - room))
    context = " ".join(context_words[: room + extra])
    batch = {"id": ["a"], "question": [question], "context": [context],
             "answers": [{"text": ["city"], "answer_start": [context.index("city")]}]}
    stats = FastPathStats()
    with caplog.at_level(logging.WARNING, logger="qa.task.preprocessing"):
        ours = prepare_train_features(batch, tokenizer, max_length, doc_stride, stats=stats)
    assert len(caplog.records) == extra
    assert (stats.batches, stats.fallbacks) == (1, 0)
    if extra:
        return
    assert len(ours["input_ids"]) == 1 and 0 not in ours["attention_mask"][0]
    assert_seed_features(ours, batch, tokenizer, max_length, doc_stride)


def test_counts_recorded_without_reasons_still_load() -> None:
    """RunResults written before fallbacks had reasons hold only the two counts."""
    assert FastPathStats.from_dict({"batches": 4, "fallbacks": 1}) == FastPathStats(4, 1, {})


@pytest.mark.parametrize("cells", [1, 40])
def test_labels_do_not_depend_on_the_labelling_chunk(cells: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Labelling runs over chunks of windows only to bound memory: one window per chunk, or a
    few (``cells`` // the widest context), labels every window as one chunk does."""
    tokenizer = bert_tokenizer()
    examples = examples_on_every_token()
    whole = prepare_train_features(examples, tokenizer, 16, 3)
    assert len(whole["input_ids"]) > 3 * len(examples["id"])  # many windows, many chunks
    monkeypatch.setattr(preprocessing, "_CHUNK_CELLS", cells)
    assert prepare_train_features(examples, tokenizer, 16, 3) == whole
    assert_seed_features(whole, examples, tokenizer, 16, 3)


def test_an_object_without_is_fast_is_not_a_fast_tokenizer() -> None:
    with pytest.raises(QABenchError, match="needs a fast tokenizer"):
        prepare_validation_features({"id": ["a"], "question": ["q"], "context": ["c"]}, object())


def test_an_empty_answer_text_is_labelled_where_it_starts() -> None:
    """An answer with a start but empty text is still an answer (the seed labels the token at
    its start, not CLS); only an empty ``answer_start`` list makes a question unanswerable."""
    tokenizer = bert_tokenizer()
    start = CONTEXT.index("river")
    examples = {"id": ["a", "b"], "question": [QUESTION] * 2, "context": [CONTEXT] * 2,
                "answers": [{"text": [""], "answer_start": [start]},
                            {"text": [], "answer_start": []}]}
    ours = prepare_train_features(examples, tokenizer)
    assert_seed_features(ours, examples, tokenizer, 384, 128)
    river = ours["input_ids"][0].index(tokenizer.convert_tokens_to_ids("river"))
    assert (ours["start_positions"], ours["end_positions"]) == ([river, 0], [river, 0])


def test_a_window_without_context_tokens_is_labelled_cls() -> None:
    """An answer given for an empty context (bad data the seed's walk crashes on) cannot be in
    the window: the label is CLS."""
    tokenizer = bert_tokenizer()
    examples = {"id": ["a"], "question": [QUESTION], "context": [" "],
                "answers": [{"text": [""], "answer_start": [0]}]}
    ours = prepare_train_features(examples, tokenizer)
    assert (ours["start_positions"], ours["end_positions"]) == ([0], [0])


def long_batch(n: int = 1) -> dict[str, list]:
    """Examples whose context overflows the default 384-token window."""
    context = " ".join([CONTEXT] * 30)  # 450 tokens
    answer = {"text": ["river"], "answer_start": [context.rindex("river")]}
    return {"id": [f"l{i}" for i in range(n)], "question": [QUESTION] * n,
            "context": [context] * n, "answers": [answer] * n}


def test_the_defaults_are_the_seeds_384_and_128() -> None:
    """Without max_length and doc_stride the windows are the seed's defaults: 384 tokens, 128
    shared between consecutive windows."""
    tokenizer = bert_tokenizer()
    batch = long_batch()
    train = prepare_train_features(batch, tokenizer)
    assert len(train["input_ids"]) == 2 and len(train["input_ids"][0]) == 384
    assert train == prepare_train_features(batch, tokenizer, 384, 128)
    assert_seed_features(train, batch, tokenizer, 384, 128)
    validation = prepare_validation_features(batch, tokenizer)
    explicit = prepare_validation_features(batch, tokenizer, 384, 128)
    assert validation["input_ids"] == explicit["input_ids"]
    assert all((a == b).all() for a, b in zip(validation["offset_mapping"],
                                               explicit["offset_mapping"], strict=True))


def test_model_inputs_are_python_ints() -> None:
    """The columns hold ints, as transformers returns them (a float mask would make float
    tensors)."""
    tokenizer = bert_tokenizer()
    ours = prepare_train_features(long_batch(), tokenizer, 64, 16)
    for key in ("input_ids", "token_type_ids", "attention_mask", "start_positions"):
        values = ours[key] if key == "start_positions" else [v for row in ours[key] for v in row]
        assert {type(v) for v in values} == {int}, key


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_a_window_without_context_stays_on_the_fast_path(padding_side: str) -> None:
    """An empty context beside ordinary examples: its window has no context tokens (offsets all
    -1, label CLS) and the fast path agrees with the tokenizer on it, so nothing falls back."""
    tokenizer = bert_tokenizer(padding_side)
    batch = {"id": ["a", "b"], "question": [QUESTION] * 2, "context": [CONTEXT, " "],
             "answers": [{"text": ["river"], "answer_start": [CONTEXT.index("river")]},
                         {"text": [], "answer_start": []}]}
    stats = FastPathStats()
    validation = prepare_validation_features(batch, tokenizer, 32, 8, stats=stats)
    train = prepare_train_features(batch, tokenizer, 32, 8, stats=stats)
    assert (stats.batches, stats.fallbacks, stats.reasons) == (2, 0, {})
    assert (validation["offset_mapping"][1] == -1).all()
    cls = train["input_ids"][1].index(tokenizer.cls_token_id)
    assert (train["start_positions"][1], train["end_positions"][1]) == (cls, cls)


def test_a_template_with_other_special_tokens_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout with one special token more than the tokenizer adds cannot be replayed: the
    batch goes pair by pair (right features), counted as 'special tokens'."""
    tokenizer = bert_tokenizer()
    batch = examples_on_every_token()
    right = prepare_train_features(batch, tokenizer, 24, 4)
    real = preprocessing._template
    monkeypatch.setattr(preprocessing, "_template",
                        lambda *args: [*real(*args), (-1, tokenizer.sep_token_id, 1)])
    stats = FastPathStats()
    assert prepare_train_features(batch, tokenizer, 24, 4, stats=stats) == right
    assert stats == FastPathStats(1, 1, {"special tokens": 1})


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_a_padding_type_id_other_than_zero(padding_side: str) -> None:
    """Padding takes the tokenizer's pad_token_type_id (XLNet's is 3), on the fast path."""
    tokenizer = bert_tokenizer(padding_side)
    tokenizer._pad_token_type_id = 3
    batch = examples_on_every_token()
    stats = FastPathStats()
    ours = prepare_train_features(batch, tokenizer, 32, 8, stats=stats)
    assert (stats.batches, stats.fallbacks) == (1, 0)
    assert 3 in ours["token_type_ids"][0]
    assert_seed_features(ours, batch, tokenizer, 32, 8)


@pytest.mark.parametrize("target", ["first", "most windows", "longest question", "least context",
                                    "other"])
def test_the_spot_check_covers_its_four_examples(target: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The check compares the first example, the one with the most windows, the one with the
    longest question and the one with the least context: a wrong window in any of them sends
    the batch pair by pair; one elsewhere is not looked at."""
    tokenizer = bert_tokenizer()
    contexts = [CONTEXT, CONTEXT * 4, CONTEXT, "the king", CONTEXT]
    questions = [QUESTION, QUESTION, QUESTION + " the old king of the north", QUESTION, QUESTION]
    index = ["first", "most windows", "longest question", "least context", "other"].index(target)
    batch = {"id": list("abcde"), "question": questions, "context": contexts,
             "answers": [{"text": [], "answer_start": []}] * 5}
    real = preprocessing._assemble

    def corrupt(*args: Any) -> Any:
        windows = real(*args)
        row = int((windows.sample == index).argmax())
        windows.ids[row, 1] += 1  # the question's first token
        return windows

    monkeypatch.setattr(preprocessing, "_assemble", corrupt)
    stats = FastPathStats()
    prepare_train_features(batch, tokenizer, 32, 8, stats=stats)
    expected = {} if target == "other" else {"disagreement": 1}
    assert stats.reasons == expected


def test_the_padding_settings_are_all_known_to_the_tokenizer(capfd: pytest.CaptureFixture) -> None:
    """The backend gets only padding options it knows: tokenizers prints a notice (from Rust,
    to the process's stdout) for any other, in the middle of a run's output."""
    tokenizer = bert_tokenizer()
    prepare_train_features(examples_on_every_token(), tokenizer, 24, 4)
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_columns_of_different_lengths_are_refused(padding_side: str) -> None:
    """Two questions for one context (no template probe: the batch goes pair by pair) is an
    error, not features for the first pair only."""
    tokenizer = bert_tokenizer(padding_side)
    batch = {"id": ["a", "b"], "question": ["", " "], "context": [CONTEXT],
             "answers": [{"text": [], "answer_start": []}] * 2}
    with pytest.raises(QABenchError, match="zip"):
        prepare_train_features(batch, tokenizer, 24, 4)


class _Probe:
    """An encoding as the backend returns it: what _template reads."""

    def __init__(self, sequence_ids: list) -> None:
        self.sequence_ids = sequence_ids
        self.ids = list(range(len(sequence_ids)))
        self.type_ids = [0] * len(sequence_ids)


@pytest.mark.parametrize("sequence_ids", [[None, 0, None], [None, 0, 1, 0, None],
                                          [None, 1, None, 1, None]])
def test_a_layout_without_one_run_of_each_sequence_is_no_template(sequence_ids: list) -> None:
    """A pair layout must hold the first and the second sequence once each: a post-processor
    that drops or repeats one gives no template (the batch goes pair by pair)."""

    class Backend:
        def encode(self, question: str, context: str) -> _Probe:
            return _Probe(sequence_ids)

    one = _Probe([0])
    assert preprocessing._template(Backend(), ["q"], ["c"], [one], [one], [0]) is None


def test_the_spot_check_also_checks_which_example_a_window_belongs_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Right windows attributed to the wrong examples (two rows' examples swapped) would give
    wrong example ids: the check rejects the batch."""
    tokenizer = bert_tokenizer()
    # b has the longest question: checked whichever windows are said to be its own.
    batch = {"id": ["a", "b"], "question": [QUESTION, QUESTION + " of the north"],
             "context": [CONTEXT * 4, "the king"],
             "answers": [{"text": [], "answer_start": []}] * 2}
    real = preprocessing._assemble

    def swap(*args: Any) -> Any:
        windows = real(*args)
        k = int(windows.sample.argmax())  # example b's only window, after a's last one
        windows.sample[k - 1], windows.sample[k] = 1, 0
        return windows

    stats = FastPathStats()
    right = prepare_validation_features(batch, tokenizer, 32, 8, stats=stats)
    assert stats.reasons == {}
    monkeypatch.setattr(preprocessing, "_assemble", swap)
    got = prepare_validation_features(batch, tokenizer, 32, 8, stats=stats)
    assert stats.reasons == {"disagreement": 1}
    assert got["example_id"] == right["example_id"]
