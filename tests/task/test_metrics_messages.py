"""qa.task.metrics' user errors say what was wrong in JSON's terms, and which file it was in; the
file entry points keep the official scripts' defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.errors import QABenchError
from qa.task.metrics import compute_squad, evaluate_files, load_predictions, load_squad_json

ARTICLE = {"title": "t", "paragraphs": [{"context": "Paris is big.", "qas": [
    {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}]}]}


@pytest.mark.parametrize(("predictions", "kind"), [
    ({"q1": {"text": "Paris"}}, "an object"),
    ({"q1": ["Paris"]}, "a list"),
    ({"q1": None}, "null"),
    ({"q1": 3}, "int"),
    ({"q1": 2.5}, "float"),
    ({"q1": True}, "bool"),
])
def test_a_prediction_that_is_not_a_string_is_named_by_its_json_type(predictions: dict,
                                                                      kind: str) -> None:
    with pytest.raises(QABenchError) as info:
        compute_squad(predictions, [ARTICLE])
    assert str(info.value) == f"prediction for id 'q1' must be a string, got {kind}"


@pytest.mark.parametrize(("references", "kind"), [
    ("dev-v1.1.json", "a string"),
    ({"version": "1.1"}, "an object"),
    (7, "int"),
    (None, "null"),
])
def test_references_of_the_wrong_kind_are_named(references: object, kind: str) -> None:
    with pytest.raises(QABenchError, match=f"got {kind}$"):
        compute_squad({}, references)


def test_a_question_id_that_is_not_a_string_is_named() -> None:
    bad = {"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": ["q1"], "answers": []}]}]}
    with pytest.raises(QABenchError, match="question id must be a string, got a list$"):
        compute_squad({}, [bad])


@pytest.mark.parametrize(("loader", "role", "content"), [
    (load_squad_json, "dataset", "[1, 2]"),
    (load_squad_json, "dataset", "{"),
    (load_predictions, "predictions", '"Paris"'),
    (load_predictions, "predictions", "{"),
])
def test_file_errors_say_which_file_and_its_role(tmp_path: Path, loader: object, role: str,
                                                 content: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QABenchError) as info:
        loader(path)  # type: ignore[operator]
    assert str(info.value).startswith(f"{role} file {str(path)!r} ")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """Files saved by some editors start with a UTF-8 byte order mark; the official scripts'
    ``json.load`` of a text file would choke on it, ours reads it."""
    path = tmp_path / "preds.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"q1": "Paris"}).encode())
    assert load_predictions(path) == {"q1": "Paris"}


def test_evaluate_files_scores_as_v1_1_unless_told(tmp_path: Path) -> None:
    data, preds = tmp_path / "dev.json", tmp_path / "preds.json"
    data.write_text(json.dumps({"version": "1.1", "data": [ARTICLE]}), encoding="utf-8")
    preds.write_text(json.dumps({"q1": "Paris"}), encoding="utf-8")
    assert evaluate_files(data, preds) == {"exact_match": 100.0, "f1": 100.0}
    assert evaluate_files(data, preds, version_2=True)["HasAns_total"] == 1
