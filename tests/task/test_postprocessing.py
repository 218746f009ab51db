"""qa.task.postprocessing against the seed notebook's loop (benchmarks/oracles/seed.py)."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.oracles import seed
from qa.errors import QABenchError
from qa.task.models import SPECIAL_TOKENS, tokenizer_from_vocab
from qa.task.postprocessing import postprocess_qa_predictions
from qa.task.preprocessing import prepare_validation_features

WORDS = ("alpha", "beta", "gamma", "delta", "river", "city", "king", "built", "the", "of",
         "in", "was", "by", "north", "south", "bridge", "tower", "sea")


def make_tokenizer(folder: Path, padding_side: str = "right") -> Any:
    """A BERT-style tokenizer over a tiny vocab (other words split into letters)."""
    pieces = [*string.ascii_lowercase, *("##" + c for c in string.ascii_lowercase)]
    path = folder / "vocab.txt"
    path.write_text("\n".join([*SPECIAL_TOKENS, *".?", *pieces, *WORDS]) + "\n", encoding="utf-8")
    tokenizer = tokenizer_from_vocab(path)
    tokenizer.padding_side = padding_side
    return tokenizer


def make_examples(n: int, seed_: int = 0) -> dict[str, list]:
    """Examples whose contexts overflow 40-token windows (several features each)."""
    rng = np.random.default_rng(seed_)
    columns: dict[str, list] = {"id": [], "question": [], "context": [], "answers": []}
    for i in range(n):
        context = " ".join(rng.choice(WORDS, int(rng.integers(5, 70)))) + "."
        columns["id"].append(f"q{i}")
        columns["question"].append("who built the tower ?")
        columns["context"].append(context)
        columns["answers"].append({"text": [], "answer_start": []})
    return columns


@pytest.fixture(params=["right", "left"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple:
    """(tokenizer, examples, seed's features, our features) for one padding side."""
    tokenizer = make_tokenizer(tmp_path, request.param)
    examples = make_examples(40)
    theirs = seed.prepare_validation_features(examples, tokenizer, 40, 12)
    ours = prepare_validation_features(examples, tokenizer, 40, 12)
    return tokenizer, examples, theirs, ours


def seed_answers(tokenizer: Any, examples: dict, theirs: Any, logits: tuple, version_2: bool,
                 threshold: float | None, **kwargs: Any) -> dict:
    """The seed loop with the corrected v2 rule (min null score, threshold) unless told."""
    rows = seed._rows({k: theirs[k] for k in theirs})
    null = kwargs.pop("null_score", "min")
    return dict(seed.postprocess_qa_predictions(
        examples, rows, logits, tokenizer, squad_v2=version_2, null_score=null,
        null_score_diff_threshold=threshold, **kwargs))


def random_logits(n_feat: int, width: int, seed_: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 logits: ties between distinct candidates have probability zero."""
    rng = np.random.default_rng(seed_)
    start, end = rng.normal(size=(2, n_feat, width))
    return start, end


@pytest.mark.parametrize(("version_2", "threshold"),
                         [(False, 0.0), (True, 0.0), (True, 1.0), (True, -1.0), (True, 0.5)])
def test_answers_equal_the_seed(setup: tuple, version_2: bool, threshold: float) -> None:
    tokenizer, examples, theirs, ours = setup
    n_feat = len(ours["input_ids"])
    assert n_feat > 1.5 * len(examples["id"])  # many examples span several features
    cls = np.array([ids.index(tokenizer.cls_token_id) for ids in ours["input_ids"]])
    for trial in range(3):
        logits = random_logits(n_feat, 40, trial)
        # Raise the CLS logits by random amounts, so that null answers win about half the time.
        bump = np.random.default_rng(trial).normal(1.5, 1.0, size=(2, n_feat))
        for half, extra in zip(logits, bump, strict=True):
            half[np.arange(n_feat), cls] += extra
        expected = seed_answers(tokenizer, examples, theirs, logits, version_2,
                                threshold if version_2 else None)
        got = postprocess_qa_predictions(examples, ours, *logits, version_2=version_2,
                                         null_score_diff_threshold=threshold,
                                         cls_token_id=tokenizer.cls_token_id)
        assert list(got) == list(expected)
        assert got == expected
    if version_2:
        assert 0 < sum(v == "" for v in got.values()) < len(got)


def test_every_input_form_gives_the_same_answers(setup: tuple) -> None:
    """dict or Dataset inputs, our offsets or the seed's None offsets, small n_best."""
    import datasets

    tokenizer, examples, theirs, ours = setup
    logits = random_logits(len(ours["input_ids"]), 40, 5)
    kwargs = {"n_best_size": 5, "max_answer_length": 4, "version_2": True,
              "cls_token_id": tokenizer.cls_token_id}
    expected = seed_answers(tokenizer, examples, theirs, logits, True, 0.0, n_best_size=5,
                            max_answer_length=4)
    seed_form = {k: theirs[k] for k in theirs}
    for features in (ours, seed_form, datasets.Dataset.from_dict(ours),
                     datasets.Dataset.from_dict(seed_form)):
        for example_table in (examples, datasets.Dataset.from_dict(examples)):
            assert postprocess_qa_predictions(example_table, features, *logits,
                                              **kwargs) == expected


def test_shuffled_features_and_selected_dataset_rows(setup: tuple) -> None:
    import datasets

    tokenizer, examples, theirs, ours = setup
    start, end = random_logits(len(ours["input_ids"]), 40, 9)
    expected = postprocess_qa_predictions(examples, ours, start, end)
    order = np.random.default_rng(0).permutation(len(start))
    shuffled = datasets.Dataset.from_dict(ours).select(order)
    assert postprocess_qa_predictions(examples, shuffled, start[order], end[order]) == expected


def test_null_score_is_the_minimum_over_features(tmp_path: Path) -> None:
    """The seed's loop keeps the largest CLS score as the example's null score; ours the
    smallest (as its name says and transformers' utils_qa.py does)."""
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(1)
    examples["context"][0] = " ".join(["river"] * 60) + "."
    theirs = seed.prepare_validation_features(examples, tokenizer, 40, 12)
    ours = prepare_validation_features(examples, tokenizer, 40, 12)
    assert len(ours["input_ids"]) >= 2
    start, end = np.zeros((2, len(ours["input_ids"]), 40))
    start[:, 10] = end[:, 10] = 1.0  # best span: one token, score 2.0 in every feature
    start[0, 0] = end[0, 0] = 3.0  # feature 0's null score 6.0 > 2.0; the others' 0.0
    got = postprocess_qa_predictions(examples, ours, start, end, version_2=True)
    assert got["q0"] == "river"
    assert seed_answers(tokenizer, examples, theirs, (start, end), True, None,
                        null_score="max") == {"q0": ""}


def test_ties_go_to_the_earlier_feature_and_higher_rank(setup: tuple) -> None:
    tokenizer, examples, theirs, ours = setup
    n_feat = len(ours["input_ids"])
    # All features of an example score the same: the seed keeps the first feature's span.
    start, end = np.tile(random_logits(1, 40, 3), (1, n_feat, 1))
    # Within a feature, two start candidates with equal logits: the lower index ranks first.
    assert postprocess_qa_predictions(examples, ours, start, end) == seed_answers(
        tokenizer, examples, theirs, (start, end), False, None)
    start[:, :] = 0.0
    end[:, :] = 0.0
    got = postprocess_qa_predictions(examples, ours, start, end, n_best_size=40)
    offsets = np.stack(ours["offset_mapping"])
    first_owner = {}
    for f, eid in enumerate(ours["example_id"]):
        first_owner.setdefault(eid, f)
    for i, eid in enumerate(examples["id"]):
        # All scores 0: the first feature's first context token, as a one-token span.
        f = first_owner[eid]
        token = int(np.flatnonzero(offsets[f, :, 0] >= 0)[0])
        assert got[eid] == examples["context"][i][offsets[f, token, 0]: offsets[f, token, 1]]


def test_spans_respect_max_answer_length_and_context(setup: tuple) -> None:
    _, examples, _, ours = setup
    start, end = random_logits(len(ours["input_ids"]), 40, 11)
    for length in (1, 2, 30):
        for answer in postprocess_qa_predictions(examples, ours, start, end,
                                                 max_answer_length=length).values():
            assert len(re.findall(r"\w+", answer)) <= length


def test_examples_without_features_and_without_valid_spans(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    examples = make_examples(3)
    ours = prepare_validation_features({k: v[:2] for k, v in examples.items()}, tokenizer,
                                       40, 12)
    start, end = random_logits(len(ours["input_ids"]), 40, 1)
    got = postprocess_qa_predictions(examples, ours, start, end, max_answer_length=0)
    assert got == {"q0": "", "q1": "", "q2": ""}


def test_unpadded_rows(setup: tuple) -> None:
    """Offsets shorter than the logits: positions past them are never answers (as in the seed)."""
    tokenizer, examples, theirs, ours = setup
    start, end = random_logits(len(ours["input_ids"]), 48, 2)
    ragged = {**ours, "offset_mapping": [row[: 30 + i % 10].tolist()
                                         for i, row in enumerate(ours["offset_mapping"])]}
    seed_form = {**{k: theirs[k] for k in theirs},
                 "offset_mapping": [row[: 30 + i % 10]
                                    for i, row in enumerate(theirs["offset_mapping"])]}
    expected = dict(seed.postprocess_qa_predictions(examples, seed._rows(seed_form),
                                                    (start, end), tokenizer))
    assert postprocess_qa_predictions(examples, ragged, start, end) == expected


def test_user_errors(setup: tuple) -> None:
    _, examples, _, ours = setup
    start, end = random_logits(len(ours["input_ids"]), 40, 0)
    with pytest.raises(QABenchError, match="do not match"):
        postprocess_qa_predictions(examples, ours, start[:-1], end[:-1])
    with pytest.raises(QABenchError, match="not an example id"):
        postprocess_qa_predictions({"id": ["x"], "context": ["c"]}, ours, start, end)
    with pytest.raises(QABenchError, match="offset_mapping"):
        postprocess_qa_predictions(examples, {"example_id": ours["example_id"]}, start, end)
