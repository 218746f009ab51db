"""Tests for qa.task.metrics: official SQuAD v1.1 / v2.0 scoring, file loading, the evaluate module.

Every expected number below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from qa.errors import QABenchError
from qa.task.metrics import (
    MissingPredictionWarning,
    compute_squad,
    evaluate_files,
    exact_match,
    f1,
    load_evaluate_metric,
    load_predictions,
    load_squad_json,
    normalize_answer,
)


def _article(*qas: tuple[str, list[str]]) -> dict:
    """One article, one paragraph, in the official layout."""
    return {
        "title": "t",
        "paragraphs": [
            {
                "context": "c",
                "qas": [
                    {
                        "id": qid,
                        "question": "q",
                        "answers": [{"text": t, "answer_start": 0} for t in golds],
                    }
                    for qid, golds in qas
                ],
            }
        ],
    }


def _records(*qas: tuple[str, list[str]]) -> list[dict]:
    """The same questions in the Hugging Face datasets layout."""
    return [
        {"id": qid, "answers": {"text": list(golds), "answer_start": [0] * len(golds)}}
        for qid, golds in qas
    ]


# q1: EM 1, F1 1.  q2: vs "blue whale" p=2/3 r=1 -> F1 0.8, vs "whale" 0.5 -> max 0.8, EM 0.
# q3: no overlap -> 0, 0.  EM = 100/3, F1 = 100 * 1.8 / 3 = 60.
V1_QAS = (("q1", ["Paris"]), ("q2", ["blue whale", "whale"]), ("q3", ["1990"]))
V1_PREDS = {"q1": "paris.", "q2": "the big blue whale", "q3": "in 1991"}
V1_EXPECTED = {"exact_match": 100 / 3, "f1": 60.0}

# HasAns: a1 EM 1 F1 1; a2 "blue" vs "blue whale" p=1 r=1/2 -> F1 2/3, EM 0.
# NoAns: n1 "" -> 1, 1; n2 "something" -> 0, 0.
V2_QAS = (("a1", ["Paris"]), ("a2", ["blue whale"]), ("n1", []), ("n2", []))
V2_PREDS = {"a1": "Paris", "a2": "blue", "n1": "", "n2": "something"}
V2_EXPECTED = {
    "exact": 50.0,  # 2 of 4
    "f1": 100 * (1 + 2 / 3 + 1 + 0) / 4,
    "total": 4,
    "HasAns_exact": 50.0,
    "HasAns_f1": 100 * (1 + 2 / 3) / 2,
    "HasAns_total": 2,
    "NoAns_exact": 50.0,
    "NoAns_f1": 50.0,
    "NoAns_total": 2,
}


def _assert_scores(result: dict, expected: dict) -> None:
    assert list(result) == list(expected)  # same keys, same order as the official output
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-9), key
        assert type(result[key]) is type(value), key


# --------------------------------------------------------------------------- single answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat!", "cat"),
        ("  a   quick,  brown fox.  ", "quick brown fox"),
        ("An apple and THE pear", "apple and pear"),
        ("new\tyork\n city", "new york city"),
        ("the-end", "theend"),  # punctuation goes first, so no article is left to remove
        ("Anna's theatre", "annas theatre"),  # articles only as whole words
        ("a an the", ""),
        ("", ""),
        ("café—bar", "café—bar"),  # only ASCII punctuation is removed
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match() -> None:
    assert exact_match("The Cat", "cat!") == 1
    assert exact_match("cat", "cats") == 0
    assert exact_match("", "the") == 1  # both normalise to ""


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("the quick brown fox", "quick fox jumps", 2 / 3),  # 2 common of 3 and 3
        ("fox fox fox", "fox", 0.5),  # counts clip: p=1/3, r=1
        ("Denver", "Denver Broncos", 2 / 3),  # p=1, r=1/2
        ("cat", "dog", 0.0),
        ("Paris", "paris", 1.0),
    ],
)
def test_f1_partial_overlap(pred: str, gold: str, expected: float) -> None:
    assert f1(pred, gold) == pytest.approx(expected)
    assert f1(pred, gold, version_2=True) == pytest.approx(expected)


def test_f1_empty_answers_differ_between_versions() -> None:
    # "a" and "the" both normalise to no tokens.
    assert f1("a", "the") == 0.0  # v1.1: no common token -> 0
    assert f1("a", "the", version_2=True) == 1.0  # v2.0: both empty -> 1
    assert f1("", "", version_2=True) == 1.0
    for version_2 in (False, True):
        assert f1("", "Paris", version_2=version_2) == 0.0
        assert f1("Paris", "", version_2=version_2) == 0.0


# --------------------------------------------------------------------------- datasets


def test_v1_scores() -> None:
    _assert_scores(compute_squad(V1_PREDS, [_article(*V1_QAS)]), V1_EXPECTED)


def test_v1_takes_best_gold_answer() -> None:
    # F1 vs each gold: 2/3, 0, 1/2 (p=1, r=1/3) -> 2/3. EM 0 against all three.
    golds = ["Denver Broncos", "Broncos", "the Denver Broncos team"]
    result = compute_squad({"q": "Denver"}, [_article(("q", golds))])
    _assert_scores(result, {"exact_match": 0.0, "f1": 200 / 3})


def test_v2_scores_split_has_and_no_answer() -> None:
    _assert_scores(compute_squad(V2_PREDS, [_article(*V2_QAS)], version_2=True), V2_EXPECTED)


def test_v2_without_unanswerable_questions_has_no_noans_keys() -> None:
    # a1: 1, 1. a2: 0, 2/3 -> exact 50, f1 100 * (5/3) / 2.
    result = compute_squad(V2_PREDS, [_article(*V2_QAS[:2])], version_2=True)
    expected = {"exact": 50.0, "f1": 250 / 3, "total": 2}
    expected |= {"HasAns_exact": 50.0, "HasAns_f1": 250 / 3, "HasAns_total": 2}
    _assert_scores(result, expected)


def test_v2_gold_that_normalises_to_empty_expects_empty_prediction() -> None:
    # Gold "The" normalises to "", so v2.0 scores against "" only: "" -> 1, 1, still HasAns.
    result = compute_squad({"q": ""}, [_article(("q", ["The"]))], version_2=True)
    expected = {"exact": 100.0, "f1": 100.0, "total": 1}
    expected |= {"HasAns_exact": 100.0, "HasAns_f1": 100.0, "HasAns_total": 1}
    _assert_scores(result, expected)
    # v1.1 compares "" with "" as given: EM 1, but F1 0 (no common tokens).
    result = compute_squad({"q": ""}, [_article(("q", ["The"]))])
    _assert_scores(result, {"exact_match": 100.0, "f1": 0.0})


def test_v1_rejects_questions_without_answers() -> None:
    with pytest.raises(QABenchError, match="version 2"):
        compute_squad({"n1": ""}, [_article(("n1", []))])


@pytest.mark.parametrize("version_2", [False, True])
def test_missing_prediction_warns_once_and_scores_zero(version_2: bool) -> None:
    refs = [_article(("q1", ["Paris"]), ("q2", ["Rome"]), ("q3", ["Oslo"]))]
    with pytest.warns(MissingPredictionWarning, match="2 of 3 questions") as record:
        result = compute_squad({"q1": "Paris"}, refs, version_2=version_2)
    assert len(record) == 1
    if version_2:
        assert result["total"] == 3
        assert result["exact"] == result["f1"] == pytest.approx(100 / 3)
    else:
        assert result == pytest.approx({"exact_match": 100 / 3, "f1": 100 / 3})


def test_no_predictions_at_all_scores_zero() -> None:
    with pytest.warns(MissingPredictionWarning, match="3 of 3"):
        result = compute_squad({}, [_article(*V1_QAS)])
    assert result == {"exact_match": 0.0, "f1": 0.0}


@pytest.mark.parametrize("version_2", [False, True])
def test_extra_predictions_are_ignored(version_2: bool) -> None:
    qas, preds = (V2_QAS, V2_PREDS) if version_2 else (V1_QAS, V1_PREDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extra = compute_squad({**preds, "zzz": "Paris"}, [_article(*qas)], version_2=version_2)
    assert extra == compute_squad(preds, [_article(*qas)], version_2=version_2)


@pytest.mark.parametrize("version_2", [False, True])
def test_both_reference_layouts_agree(version_2: bool) -> None:
    qas, preds, expected = (
        (V2_QAS, V2_PREDS, V2_EXPECTED) if version_2 else (V1_QAS, V1_PREDS, V1_EXPECTED)
    )
    official = compute_squad(preds, [_article(*qas)], version_2=version_2)
    records = compute_squad(preds, _records(*qas), version_2=version_2)
    whole_file = compute_squad(preds, {"version": "x", "data": [_article(*qas)]}, version_2)
    assert official == records == whole_file
    _assert_scores(records, expected)


# --------------------------------------------------------------------------- files


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_evaluate_files(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "dev.json", json.dumps({"version": "v2.0", "data": [_article(*V2_QAS)]})
    )
    preds = _write(tmp_path / "preds.json", json.dumps(V2_PREDS))
    assert load_squad_json(data) == [_article(*V2_QAS)]
    assert load_predictions(preds) == V2_PREDS
    result = evaluate_files(data, preds, version_2=True)
    _assert_scores(result, V2_EXPECTED)
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read"),
        (b'{"data": "caf\xe9"}', "not UTF-8"),
        ('{"data": [', "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"version": "1.1"}', "'data'"),
        ('{"data": {}}', "'data' must be a list"),
        ('{"data": []}', "no questions"),
        ('{"data": [{"title": "x"}]}', r"data\[0\] has no 'paragraphs'"),
        ('{"data": [{"paragraphs": [{"context": "c"}]}]}', "'qas'"),
        ('{"data": [{"paragraphs": [{"qas": [{"id": "q"}]}]}]}', "'answers'"),
        ('{"data": [{"paragraphs": [{"qas": [{"id": 7, "answers": []}]}]}]}', "id must be"),
        ('{"data": [{"paragraphs": [{"qas": [{"id": "q", "answers": [{}]}]}]}]}', "'text'"),
    ],
)
def test_load_squad_json_errors(tmp_path: Path, content: str | bytes | None, match: str) -> None:
    path = tmp_path / "dev.json" if content is None else _write(tmp_path / "dev.json", content)
    with pytest.raises(QABenchError, match=match) as err:
        load_squad_json(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read"),
        (b'{"q": "\xff"}', "not UTF-8"),
        ("{'q': 'x'}", "not valid JSON"),
        ('["x"]', "got a list"),
        ('{"q1": "x", "q2": 3, "q3": null}', "'q2'"),
        ('{"q1": null}', "'q1' must be a string, got null"),
    ],
)
def test_load_predictions_errors(tmp_path: Path, content: str | bytes | None, match: str) -> None:
    path = tmp_path / "p.json" if content is None else _write(tmp_path / "p.json", content)
    with pytest.raises(QABenchError, match=match) as err:
        load_predictions(path)
    assert "\n" not in str(err.value)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(QABenchError, match="cannot read"):
        load_predictions(tmp_path)


@pytest.mark.parametrize(
    ("predictions", "references", "match"),
    [
        (["x"], [_article(*V1_QAS)], "predictions must map"),
        ({"q1": 1}, [_article(*V1_QAS)], "'q1'"),
        ({}, "dev.json", "references must be"),
        ({}, [{"id": "q"}], "'answers'"),
        ({}, [{"id": "q", "answers": "Paris"}], "'answers' must be"),
    ],
)
def test_compute_squad_bad_input(predictions, references, match: str) -> None:
    with pytest.raises(QABenchError, match=match):
        compute_squad(predictions, references)


# --------------------------------------------------------------------------- evaluate module
# Marked slow: `import evaluate` pulls in transformers.pipelines (several seconds, once per
# session); everything above runs in well under a second.


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_evaluate_module_v1_matches_compute_squad() -> None:
    metric = load_evaluate_metric()
    predictions = [{"id": k, "prediction_text": v} for k, v in V1_PREDS.items()]
    result = metric.compute(predictions=predictions, references=_records(*V1_QAS))
    assert result == compute_squad(V1_PREDS, _records(*V1_QAS))
    _assert_scores(result, V1_EXPECTED)
    # A second load reuses evaluate's module cache and gives an independent instance.
    again = load_evaluate_metric()
    assert again is not metric
    assert again.compute(predictions=predictions, references=_records(*V1_QAS)) == result


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_evaluate_module_v2_accepts_no_answer_probability() -> None:
    metric = load_evaluate_metric(version_2=True)
    assert metric.config_name == "v2.0"
    plain = [{"id": k, "prediction_text": v} for k, v in V2_PREDS.items()]
    with_prob = [p | {"no_answer_probability": 0.5} for p in plain]
    refs = _records(*V2_QAS)
    result = metric.compute(predictions=plain, references=refs)
    _assert_scores(result, V2_EXPECTED)
    assert metric.compute(predictions=with_prob, references=refs) == result
    for prediction, reference in zip(with_prob, refs, strict=True):
        metric.add(prediction=prediction, reference=reference)
    assert metric.compute() == result
