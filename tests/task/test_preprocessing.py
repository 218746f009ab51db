"""qa.task.preprocessing against the seed notebook's functions (benchmarks/oracles/seed.py)."""

from __future__ import annotations

import logging
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.oracles import seed
from qa.errors import QABenchError
from qa.task import preprocessing
from qa.task.models import SPECIAL_TOKENS, tokenizer_from_vocab
from qa.task.preprocessing import prepare_train_features, prepare_validation_features

WORDS = ("the", "king", "queen", "river", "city", "north", "south", "old", "new", "war",
         "peace", "bank", "ship", "sea", "castle", "town", "law", "court", "church", "school",
         "army", "navy", "road", "bridge", "tower", "gate", "hill", "wall", "was", "is", "by",
         "of", "in", "on", "at", "to", "from", "with", "and", "or", "built", "ruled", "crossed",
         "named")
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def make_tokenizer(folder: Path, padding_side: str = "right",
                   truncation_side: str = "right") -> Any:
    """A BERT-style tokenizer over a tiny vocab: the words above are single tokens, other words
    split into letters (so windows also cut inside words)."""
    pieces = [*string.ascii_lowercase, *("##" + c for c in string.ascii_lowercase)]
    vocab = [*SPECIAL_TOKENS, *".,?'", *string.digits, *pieces, *dict.fromkeys(WORDS)]
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = tokenizer_from_vocab(path)
    tokenizer.padding_side, tokenizer.truncation_side = padding_side, truncation_side
    return tokenizer


def make_examples(n: int, seed_: int = 0, unanswerable: float = 0.0,
                  shared_contexts: int = 3) -> dict[str, list]:
    """SQuAD-layout columns: long contexts (several windows at max_length 48), a few questions
    per context, answers anywhere (window edges included), some unanswerable."""
    rng = np.random.default_rng(seed_)
    columns: dict[str, list] = {k: [] for k in ("id", "title", "context", "question", "answers")}
    context = ""
    for i in range(n):
        if i % shared_contexts == 0:
            words = [str(w) if rng.random() > 0.15 else "".join(rng.choice(list("xyzq"), 3))
                     for w in rng.choice(WORDS, int(rng.integers(20, 90)))]
            context = " ".join(words) + "."
        spans = [(m.start(), m.end()) for m in _words(context)]
        first = int(rng.integers(0, len(spans)))
        last = min(len(spans) - 1, first + int(rng.integers(0, 3)))
        start, end = spans[first][0], spans[last][1]
        answered = rng.random() >= unanswerable
        columns["id"].append(f"q{i}")
        columns["title"].append("t")
        columns["context"].append(context)
        columns["question"].append("  " * int(rng.integers(0, 2)) + "who ruled the city ?")
        columns["answers"].append({"text": [context[start:end]] if answered else [],
                                   "answer_start": [start] if answered else []})
    return columns


def make_edge_examples(n_contexts: int = 2) -> dict[str, list]:
    """One question per word of each context, answered by that word: every window edge gets an
    answer starting on its last context token, and on its first."""
    base = make_examples(n_contexts, seed_=7, shared_contexts=1)
    columns: dict[str, list] = {k: [] for k in base}
    for context in base["context"]:
        for match in _words(context):
            columns["id"].append(f"e{len(columns['id'])}")
            columns["title"].append("t")
            columns["context"].append(context)
            columns["question"].append("which word ?")
            columns["answers"].append({"text": [match.group()], "answer_start": [match.start()]})
    return columns


def _words(text: str) -> Any:
    import re

    return re.finditer(r"[a-z0-9]+", text)


def seed_offsets(rows: list) -> list:
    """The seed's offsets with None read as [-1, -1]."""
    return [[[-1, -1] if o is None else list(o) for o in row] for row in rows]


def label_differences(seed_train: Any, ours: dict, context_seq: int) -> tuple[int, int]:
    """(differences at a window's last context token as documented, any other difference)."""
    documented = other = 0
    pairs = zip(seed_train["start_positions"], seed_train["end_positions"],
                ours["start_positions"], ours["end_positions"], strict=True)
    for f, (s_start, s_end, o_start, o_end) in enumerate(pairs):
        if (s_start, s_end) == (o_start, o_end):
            continue
        last = max(i for i, s in enumerate(seed_train.sequence_ids(f)) if s == context_seq)
        if s_end == o_end and o_start == last < s_start:
            documented += 1
        else:
            other += 1
    return documented, other


@pytest.mark.parametrize(("padding_side", "truncation_side"),
                         [("right", "right"), ("left", "left"), ("right", "left")])
def test_features_equal_the_seed(tmp_path: Path, padding_side: str, truncation_side: str) -> None:
    tokenizer = make_tokenizer(tmp_path, padding_side, truncation_side)
    examples = make_examples(60, unanswerable=0.2)
    edges = make_edge_examples()
    examples = {k: examples[k] + edges[k] for k in examples}
    theirs = seed.prepare_train_features(examples, tokenizer, 48, 16)
    ours = prepare_train_features(examples, tokenizer, 48, 16)
    assert list(ours) == list(theirs)  # same columns, same order
    assert len(ours["input_ids"]) > 2 * len(examples["id"])  # several windows per example
    for key in MODEL_INPUTS:
        assert ours[key] == theirs[key], key
    documented, other = label_differences(theirs, ours, 1 if padding_side == "right" else 0)
    assert documented > 0 and other == 0
    theirs = seed.prepare_validation_features(examples, tokenizer, 48, 16)
    ours = prepare_validation_features(examples, tokenizer, 48, 16)
    assert list(ours) == list(theirs)
    for key in (*MODEL_INPUTS, "example_id"):
        assert ours[key] == theirs[key], key
    assert [row.tolist() for row in ours["offset_mapping"]] == seed_offsets(
        theirs["offset_mapping"])


def test_label_on_the_last_context_token_is_fixed(tmp_path: Path) -> None:
    """The seed's start walk runs through [SEP] when the answer starts on the window's last
    context token; ours labels that token."""
    tokenizer = make_tokenizer(tmp_path)
    context = " ".join(WORDS * 2) + "."
    probe = {"id": ["a"], "question": ["who ?"], "context": [context]}
    offsets = prepare_validation_features(probe, tokenizer, 32, 8)["offset_mapping"][0]
    last = int(np.flatnonzero(offsets[:, 0] >= 0).max())  # window 0's last context token
    start, end = (int(x) for x in offsets[last])
    examples = {**probe, "answers": [{"text": [context[start:end]], "answer_start": [start]}]}

    theirs = seed.prepare_train_features(examples, tokenizer, 32, 8)
    ours = prepare_train_features(examples, tokenizer, 32, 8)
    # The seed's start lands past the context (here: the final [SEP], no padding follows).
    assert (theirs["start_positions"][0], theirs["end_positions"][0]) == (31, last)
    assert (ours["start_positions"][0], ours["end_positions"][0]) == (last, last)
    assert tokenizer.decode(ours["input_ids"][0][last: last + 1]) == context[start:end]
    # Later windows hold the token away from their edge: both agree there.
    assert ours["start_positions"][1:] == theirs["start_positions"][1:]


def test_long_question_is_truncated_with_one_warning(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(4)
    examples["question"][1] = " ".join(WORDS * 3) + " ?"  # far longer than max_length
    examples["question"][2] = " ".join(WORDS[:30]) + " ?"  # leaves no room beside the stride
    # The seed's tokenizer call fails: a truncation error, or a Rust panic (a BaseException)
    # about the stride, whichever example the tokenizer reaches first.
    with pytest.raises(BaseException, match="(?i)truncat|stride"):
        seed.prepare_train_features(examples, tokenizer, 48, 16)
    with caplog.at_level(logging.WARNING, logger="qa.task.preprocessing"):
        train = prepare_train_features(examples, tokenizer, 48, 16)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("2 question(s)")
    assert all(len(ids) == 48 for ids in train["input_ids"])
    # Untouched examples keep exactly the seed's features.
    kept = {k: [v[0], v[3]] for k, v in examples.items()}
    assert prepare_train_features(kept, tokenizer, 48, 16)["input_ids"] == \
        seed.prepare_train_features(kept, tokenizer, 48, 16)["input_ids"]


def test_offsets_are_stackable_arrays(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    ours = prepare_validation_features(make_examples(6), tokenizer, 48, 16)
    rows = ours["offset_mapping"]
    assert all(r.shape == (48, 2) and r.dtype == np.int64 for r in rows)
    stacked = np.stack(rows)
    # -1 exactly off the context: CLS, question, SEPs and padding.
    assert (stacked[:, 0, :] == preprocessing.NOT_CONTEXT).all()
    assert ((stacked[:, :, 0] == -1) == (stacked[:, :, 1] == -1)).all()


def test_datasets_map_batches(tmp_path: Path) -> None:
    import datasets

    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(25, unanswerable=0.3)
    split = datasets.Dataset.from_dict(examples)
    kwargs = {"tokenizer": tokenizer, "max_length": 48, "doc_stride": 16}
    for function, reference in ((prepare_train_features, seed.prepare_train_features),
                                (prepare_validation_features, seed.prepare_validation_features)):
        mapped = split.map(function, batched=True, batch_size=7, remove_columns=split.column_names,
                           fn_kwargs=kwargs)
        whole = reference(examples, tokenizer, 48, 16)
        assert mapped["input_ids"] == whole["input_ids"]
    assert mapped["offset_mapping"] == seed_offsets(whole["offset_mapping"])
    assert mapped.features["offset_mapping"].feature.feature.dtype == "int64"


def test_pair_by_pair_fallback_gives_the_same_features(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(20, unanswerable=0.2)
    fast = prepare_train_features(examples, tokenizer, 48, 16)
    monkeypatch.setattr(preprocessing, "_agrees", lambda *args: False)
    assert prepare_train_features(examples, tokenizer, 48, 16) == fast


def test_a_wrong_template_is_caught_by_the_check(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A template that assembles windows the tokenizer would not make (here: the two sequences'
    type ids swapped) fails the spot check, and the batch is encoded pair by pair."""
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(9)
    real, agrees = preprocessing._template, preprocessing._agrees
    verdicts: list[bool] = []
    monkeypatch.setattr(preprocessing, "_template", lambda *args: [
        (kind, token, 1 - type_id if kind >= 0 else type_id)
        for kind, token, type_id in real(*args)])
    monkeypatch.setattr(preprocessing, "_agrees",
                        lambda *args: verdicts.append(agrees(*args)) or verdicts[-1])
    ours = prepare_validation_features(examples, tokenizer, 48, 16)
    theirs = seed.prepare_validation_features(examples, tokenizer, 48, 16)
    assert verdicts == [False]
    assert ours["token_type_ids"] == theirs["token_type_ids"]


@pytest.mark.parametrize(("pair", "padding_side"), [
    ("[CLS]:0 $A:0 [SEP]:0 [SEP]:0 $B:0 [SEP]:0", "right"),  # RoBERTa-like: two separators
    ("$A:0 [SEP]:0 $B:1 [SEP]:1 [CLS]:2", "left"),  # XLNet-like: CLS last, padded on the left
])
def test_other_templates_equal_the_seed(tmp_path: Path, pair: str, padding_side: str) -> None:
    from tokenizers import processors

    tokenizer = make_tokenizer(tmp_path, padding_side)
    vocab = tokenizer.get_vocab()
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair=pair,
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    examples = make_examples(30, unanswerable=0.2)
    theirs = seed.prepare_train_features(examples, tokenizer, 40, 12)
    ours = prepare_train_features(examples, tokenizer, 40, 12)
    for key in MODEL_INPUTS:
        assert ours[key] == theirs[key], key
    assert label_differences(theirs, ours, 1 if padding_side == "right" else 0)[1] == 0


def test_inputs_are_not_mutated_and_tokenizer_settings_restored(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    tokenizer.backend_tokenizer.enable_truncation(20)
    examples = make_examples(5)
    examples["question"][0] = "   who ?"
    before = {k: list(v) for k, v in examples.items()}
    prepare_validation_features(examples, tokenizer, 48, 16)
    assert examples == before
    assert tokenizer.backend_tokenizer.truncation["max_length"] == 20
    assert tokenizer.backend_tokenizer.padding is None


def test_split_special_tokens_is_honoured_and_restored(tmp_path: Path) -> None:
    """A tokenizer told to split special-token text ("[SEP]" in a question) makes the seed's
    windows; the backend's own setting is put back afterwards."""
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(4)
    examples["question"][0] = "who [SEP] ruled the city ?"
    tokenizer.split_special_tokens = True
    ours = prepare_train_features(examples, tokenizer, 48, 16)
    theirs = seed.prepare_train_features(examples, tokenizer, 48, 16)
    assert ours["input_ids"] == theirs["input_ids"]
    assert ours["input_ids"][0].count(tokenizer.sep_token_id) == 2  # the text was split
    tokenizer.split_special_tokens = False
    tokenizer.backend_tokenizer.encode_special_tokens = True
    ours = prepare_train_features(examples, tokenizer, 48, 16)
    assert ours["input_ids"][0].count(tokenizer.sep_token_id) == 3  # "[SEP]" read as one
    assert tokenizer.backend_tokenizer.encode_special_tokens is True


def test_empty_context(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(4)
    examples["context"][1] = ""
    examples["answers"][1] = {"text": [], "answer_start": []}
    ours = prepare_validation_features(examples, tokenizer, 48, 16)
    theirs = seed.prepare_validation_features(examples, tokenizer, 48, 16)
    assert ours["input_ids"] == theirs["input_ids"]
    assert [row.tolist() for row in ours["offset_mapping"]] == seed_offsets(
        theirs["offset_mapping"])


def test_empty_batch(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    empty = {k: [] for k in ("id", "question", "context", "answers")}
    assert prepare_train_features(empty, tokenizer)["input_ids"] == []
    assert prepare_validation_features(empty, tokenizer)["offset_mapping"] == []


def test_slow_tokenizer_is_a_user_error(tmp_path: Path) -> None:
    class Slow:
        is_fast = False

    with pytest.raises(QABenchError, match="fast tokenizer"):
        prepare_train_features(make_examples(1), Slow())
