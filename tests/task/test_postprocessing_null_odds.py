"""qa.task.postprocessing.postprocess_with_null_odds: SQuAD v2 answers and their no-answer file.

The odds must be the quantity the answer rule thresholds (``null score - best span score``), so
that ``evaluate-v2.0.py``'s best-threshold search over them is meaningful and scoring with
``na_prob_thresh`` equal to the postprocessing threshold changes nothing.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import numpy as np
import pytest

from qa.task.metrics import compute_squad
from qa.task.models import SPECIAL_TOKENS, tokenizer_from_vocab
from qa.task.postprocessing import postprocess_qa_predictions, postprocess_with_null_odds
from qa.task.preprocessing import prepare_validation_features

# No article: a gold answer "the" normalises to nothing, and the official scoring then reads
# the question as answerable with "" right, which a threshold scores differently.
WORDS = ("alpha", "beta", "gamma", "river", "city", "king", "built", "by", "of", "tower")


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(tokenizer, examples with answerable and unanswerable questions, their features)."""
    folder = tmp_path_factory.mktemp("vocab")
    pieces = [*string.ascii_lowercase, *("##" + c for c in string.ascii_lowercase)]
    (folder / "vocab.txt").write_text("\n".join([*SPECIAL_TOKENS, *".?", *pieces, *WORDS])
                                      + "\n", encoding="utf-8")
    tokenizer = tokenizer_from_vocab(folder / "vocab.txt")
    rng = np.random.default_rng(0)
    examples: dict[str, list] = {"id": [], "question": [], "context": [], "answers": []}
    for i in range(30):
        context = " ".join(rng.choice(WORDS, int(rng.integers(5, 60)))) + "."
        word = context.split()[0]
        examples["id"].append(f"q{i}")
        examples["question"].append("who built the tower ?")
        examples["context"].append(context)
        examples["answers"].append({"text": [word], "answer_start": [0]} if i % 2 else
                                   {"text": [], "answer_start": []})
    return tokenizer, examples, prepare_validation_features(examples, tokenizer, 40, 12)


def _logits(features: dict, tokenizer: object, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(features["input_ids"])
    rng = np.random.default_rng(seed)
    start, end = rng.normal(size=(2, n, 40)).astype(np.float32)
    cls = np.array([ids.index(tokenizer.cls_token_id) for ids in features["input_ids"]])
    start[np.arange(n), cls] += 1.5  # null answers win about half the time
    end[np.arange(n), cls] += 1.5
    return start, end


def test_a_worked_example(tmp_path: Path, batch: tuple) -> None:
    tokenizer, examples, _ = batch
    one = {k: v[:1] for k, v in examples.items()}
    features = prepare_validation_features(one, tokenizer, 512, 128)
    start, end = np.zeros((2, 1, len(features["input_ids"][0])), dtype=np.float32)
    offsets = [list(pair) for pair in features["offset_mapping"][0]]
    first = offsets.index([0, len(one["context"][0].split()[0])])
    start[0, first], end[0, first] = 1.5, 1.0  # best span: the first word, 2.5
    start[0, 0], end[0, 0] = 2.0, 1.0  # null (CLS) score 3.0
    answers, odds = postprocess_with_null_odds(one, features, start, end,
                                               cls_token_id=tokenizer.cls_token_id)
    assert odds == {"q0": 0.5}  # 3.0 - 2.5 > 0.0: no answer
    assert answers == {"q0": ""}
    answers, _ = postprocess_with_null_odds(one, features, start, end,
                                            null_score_diff_threshold=0.5,
                                            cls_token_id=tokenizer.cls_token_id)
    assert answers == {"q0": one["context"][0].split()[0]}  # 0.5 does not exceed 0.5


@pytest.mark.parametrize("threshold", [0.0, 1.0, -1.0])
def test_answers_are_postprocess_v2s_and_empty_exactly_above_the_threshold(
        batch: tuple, threshold: float) -> None:
    tokenizer, examples, features = batch
    for seed in range(3):
        logits = _logits(features, tokenizer, seed)
        answers, odds = postprocess_with_null_odds(
            examples, features, *logits, null_score_diff_threshold=threshold,
            cls_token_id=tokenizer.cls_token_id)
        assert answers == postprocess_qa_predictions(
            examples, features, *logits, version_2=True, null_score_diff_threshold=threshold,
            cls_token_id=tokenizer.cls_token_id)
        assert list(odds) == examples["id"]
        assert all(math.isfinite(v) for v in odds.values())  # every example has a span here
        assert [a == "" for a in answers.values()] == [v > threshold for v in odds.values()]
        assert 0 < sum(a == "" for a in answers.values()) < len(answers)
        # Scoring at the same threshold reads the same answers as "no answer": no change.
        references = [{"id": i, "answers": a}
                      for i, a in zip(examples["id"], examples["answers"], strict=True)]
        plain = compute_squad(answers, references, version_2=True)
        scored = compute_squad(answers, references, version_2=True, na_probs=odds,
                               na_prob_thresh=threshold)
        assert {k: scored[k] for k in plain} == plain
        assert scored["best_f1"] >= plain["f1"] - 1e-9 or threshold < 0


def test_an_example_without_any_allowed_span_has_infinite_odds(batch: tuple) -> None:
    tokenizer, examples, features = batch
    start, end = _logits(features, tokenizer, 0)
    answers, odds = postprocess_with_null_odds(examples, features, start, end,
                                               max_answer_length=0,
                                               cls_token_id=tokenizer.cls_token_id)
    assert set(odds.values()) == {math.inf}
    assert set(answers.values()) == {""}


def _one_feature(seq_len: int = 40, cls_at: int = 0) -> tuple[dict, dict]:
    """One example, one feature: positions 0 and 1 off the context, position i >= 2 the
    character i of a context of ``seq_len`` letters; the CLS token (id 101) at ``cls_at``."""
    context = (string.ascii_lowercase * 2)[:seq_len]
    offsets = [[-1, -1], [-1, -1]] + [[i, i + 1] for i in range(2, seq_len)]
    input_ids = [0] * seq_len
    input_ids[cls_at] = 101
    return ({"id": ["q"], "context": [context]},
            {"example_id": ["q"], "offset_mapping": [offsets], "input_ids": [input_ids]})


def test_the_default_longest_answer_is_thirty_tokens() -> None:
    """Start at 2 and end at 32 is 31 tokens: not an answer by default (the best allowed span
    scores 10, null 0: odds -10), one with ``max_answer_length=31`` (20: odds -20)."""
    examples, features = _one_feature()
    start, end = np.zeros((2, 1, 40))
    start[0, 2], end[0, 32] = 10.0, 10.0
    assert postprocess_with_null_odds(examples, features, start, end)[1] == {"q": -10.0}
    assert postprocess_with_null_odds(examples, features, start, end,
                                      max_answer_length=31)[1] == {"q": -20.0}


def test_the_default_candidates_are_the_twenty_best_starts_and_ends() -> None:
    """The only good span starts at the 21st best start: not seen by default (best span
    10 - 100, null 0: odds 90), seen with ``n_best_size=21`` (5 + 10: odds -15)."""
    examples, features = _one_feature()
    start, end = np.zeros((2, 1, 40))
    start[0, 3:23], start[0, 2] = 10.0, 5.0
    end[0, 1:], end[0, 2] = -100.0, 10.0
    assert postprocess_with_null_odds(examples, features, start, end)[1] == {"q": 90.0}
    assert postprocess_with_null_odds(examples, features, start, end,
                                      n_best_size=21)[1] == {"q": -15.0}


def test_the_null_score_is_read_at_the_cls_token_given() -> None:
    """CLS at position 1 (null 3 + 3), best span 1 + 1: odds 4, not position 0's 0 - 2."""
    examples, features = _one_feature(cls_at=1)
    start, end = np.zeros((2, 1, 40))
    start[0, 1], end[0, 1] = 3.0, 3.0
    start[0, 2], end[0, 2] = 1.0, 1.0
    assert postprocess_with_null_odds(examples, features, start, end,
                                      cls_token_id=101)[1] == {"q": 4.0}
    assert postprocess_with_null_odds(examples, features, start, end)[1] == {"q": -2.0}
