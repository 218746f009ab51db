"""qa.task.metrics edges: malformed references named by where they are, the warnings' categories,
words and the line they are reported at, and the defaults ``load_evaluate_metric`` gives
``evaluate.load``."""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from qa.errors import QABenchError
from qa.task.metrics import (
    IgnoredInputWarning,
    MissingPredictionWarning,
    compute_squad,
    evaluate_files,
    load_evaluate_metric,
    load_squad_json,
)

ANSWER = [{"text": "Paris", "answer_start": 0}]


def _official(*qas: Any) -> list[dict]:
    return [{"title": "t", "paragraphs": [{"context": "Paris.", "qas": list(qas)}]}]


# --------------------------------------------------------------------------- malformed references


@pytest.mark.parametrize(("answers", "why"), [
    ({"text": "Paris", "answer_start": [0]}, "text is a string, not a list of strings"),
    (["Paris"], "an answer that is not an object"),
    ({"text": None}, "no text list at all"),
])
def test_answers_without_string_texts_are_refused_where_they_are(answers: Any, why: str) -> None:
    bad = _official({"id": "q1", "question": "?", "answers": answers})
    with pytest.raises(QABenchError) as info:
        compute_squad({"q1": "Paris"}, bad)
    assert str(info.value) == ("data[0].paragraphs[0].qas[0]: every answer needs a string "
                               "'text'"), why


def test_a_question_without_an_id_is_refused_where_it_is() -> None:
    bad = _official({"id": "q1", "answers": ANSWER}, {"question": "?", "answers": ANSWER})
    with pytest.raises(QABenchError) as info:
        compute_squad({"q1": "Paris"}, bad)
    assert str(info.value) == "data[0].paragraphs[0].qas[1]: a question needs 'id' and 'answers'"


def test_a_record_reference_with_bad_answers_is_named_by_its_index() -> None:
    records = [{"id": "q1", "answers": {"text": ["Paris"]}}, {"id": "q2", "answers": {"text": 3}}]
    with pytest.raises(QABenchError) as info:
        compute_squad({"q1": "Paris"}, records)
    assert str(info.value) == "references[1]: every answer needs a string 'text'"


@pytest.mark.parametrize("item", [{"answers": {"text": ["Paris"]}}, ["id", "answers"]])
def test_an_item_that_is_neither_article_nor_question_is_named_so(item: Any) -> None:
    """A record without an id is not a question record (and a list is not a record at all)."""
    with pytest.raises(QABenchError) as info:
        compute_squad({}, [{"id": "q1", "answers": {"text": ["Paris"]}}, item])
    assert str(info.value) == ("references[1] is neither an article (with 'paragraphs') nor a "
                               "question record (with 'id' and 'answers')")


def test_a_paragraph_that_is_not_an_object_is_named() -> None:
    bad = [{"title": "t", "paragraphs": [{"context": "c", "qas": []}, "Paris."]}]
    with pytest.raises(QABenchError) as info:
        compute_squad({}, bad)
    assert str(info.value) == "data[0].paragraphs[1] needs a 'qas' list"


# --------------------------------------------------------------------------- warnings


def _mutmut_trampoline(frame: Any) -> bool:
    """A frame of mutmut's trampoline (``mutmut/mutation/trampoline.py``), which mutmut puts in
    front of every function of a module it mutates (each call of a qa function runs frames
    deeper there)."""
    return frame.f_code.co_filename.endswith(os.path.join("mutmut", "mutation", "trampoline.py"))


@pytest.fixture
def reported_at(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file each qa warning is attributed to, worked out from its stacklevel the way
    ``warnings.warn`` does, but stepping over mutmut's trampoline frames (so that a mutation
    test run sees what a user sees). The warning itself is still issued."""
    files: list[str] = []
    real_warn = warnings.warn

    def warn(message: Any, category: Any = None, stacklevel: int = 1, **kwargs: Any) -> None:
        frame = sys._getframe(1)  # the function that warns
        level = 1
        while level < stacklevel and frame.f_back is not None:
            frame = frame.f_back
            if not _mutmut_trampoline(frame):
                level += 1
        files.append(frame.f_code.co_filename)
        real_warn(message, category, stacklevel=stacklevel + 1, **kwargs)

    monkeypatch.setattr(warnings, "warn", warn)
    return files


def _assert_points_at_this_file(record: pytest.WarningsRecorder, files: list[str]) -> None:
    """The warning names the caller's line (this test file), not a line inside qa."""
    assert files == [__file__]
    if not hasattr(compute_squad, "__wrapped__"):  # no mutmut trampolines: what a user sees
        assert [w.filename for w in record] == [__file__]


@pytest.mark.parametrize("version_2", [False, True])
def test_the_missing_prediction_warning_names_the_first_one_and_the_callers_line(
        version_2: bool, reported_at: list[str]) -> None:
    refs = _official({"id": "q1", "answers": ANSWER}, {"id": "q2", "answers": ANSWER},
                     {"id": "q3", "answers": ANSWER})
    with pytest.warns(MissingPredictionWarning) as record:
        compute_squad({"q1": "Paris"}, refs, version_2=version_2)
    assert [str(w.message) for w in record] == [
        "2 of 3 questions have no prediction and score 0 (first: 'q2')"]
    _assert_points_at_this_file(record, reported_at)


@pytest.fixture
def lenient_file(tmp_path: Path) -> Path:
    """Scored by the official scripts, refused by training: an answer off its answer_start."""
    path = tmp_path / "dev.json"
    qas = [{"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 3}]}]
    path.write_text(json.dumps({"version": "1.1", "data": _official(*qas)}), encoding="utf-8")
    return path


@pytest.mark.parametrize("public", ["load_squad_json", "evaluate_files"])
def test_an_ignored_input_warning_names_the_file_and_the_callers_line(
        public: str, lenient_file: Path, tmp_path: Path, reported_at: list[str]) -> None:
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"q1": "Paris"}), encoding="utf-8")
    with pytest.warns(IgnoredInputWarning) as record:
        if public == "load_squad_json":
            data = load_squad_json(lenient_file)
            assert [qa["id"] for qa in data[0]["paragraphs"][0]["qas"]] == ["q1"]
        else:
            assert evaluate_files(lenient_file, preds) == {"exact_match": 100.0, "f1": 100.0}
    assert [w.category for w in record] == [IgnoredInputWarning]
    assert re.fullmatch(rf"dataset file {re.escape(repr(str(lenient_file)))}: ignored what only "
                        r"training checks: 1 × answer not at its answer_start.*",
                        str(record[0].message))
    _assert_points_at_this_file(record, reported_at)


# --------------------------------------------------------------------------- evaluate module


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_the_evaluate_module_keeps_a_single_process_in_memory(tmp_path: Path) -> None:
    """One process: no cache files (parallel runs would share them); options reach
    ``evaluate.load``."""
    metric = load_evaluate_metric(cache_dir=str(tmp_path), experiment_id="edge")
    assert metric.keep_in_memory is True
    assert (metric.num_process, metric.experiment_id) == (1, "edge")
    assert load_evaluate_metric(keep_in_memory=False).keep_in_memory is False


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_the_evaluate_module_of_several_processes_uses_cache_files(tmp_path: Path) -> None:
    """``evaluate`` refuses keep_in_memory with num_process > 1: it is not defaulted there."""
    metric = load_evaluate_metric(num_process=2, process_id=0, cache_dir=str(tmp_path))
    assert (metric.num_process, metric.keep_in_memory) == (2, False)
