"""SQuAD v2.0 no-answer options: ``--na-prob-file``, ``--na-prob-thresh``, the best thresholds and
the ``--out-image-dir`` precision-recall analysis, as ``evaluate-v2.0.py`` computes them.

Worked examples (numbers by hand in the comments), then properties: for random files,
predictions, probabilities (ties, ints, unbounded scores, extra ids, any key order) and
thresholds, ``qa.task.metrics`` gives the official script's output key for key and float for
float (``benchmarks/oracles/official_squad.py``), and its curves point for point.
"""

from __future__ import annotations

import math
import warnings

import pytest
from helpers.squad_files import (
    THRESHOLDS,
    na_probs_for,
    predictions_for,
    question_ids,
    records,
    squad_files,
)
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.oracles import official_squad
from qa.errors import QABenchError
from qa.task.metrics import MissingPredictionWarning, compute_squad, evaluate_v2


def _squad(*qas: tuple[str, list[str]]) -> list[dict]:
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": qid, "question": "q", "answers": [{"text": t, "answer_start": 0} for t in golds]}
        for qid, golds in qas]}]}]


# Raw scores: a1 EM 1 F1 1; a2 "blue" vs "blue whale" EM 0 F1 2/3; n1 "" EM 1 F1 1; n2 EM 0 F1 0.
SQUAD = _squad(("a1", ["Paris"]), ("a2", ["blue whale"]), ("n1", []), ("n2", []))
PREDS = {"a1": "Paris", "a2": "blue", "n1": "", "n2": "something"}
PROBS = {"a1": 0.1, "a2": 0.6, "n1": 0.3, "n2": 0.9}


def test_a_threshold_reads_predictions_above_it_as_no_answer() -> None:
    # At 0.5: a2 (0.6) becomes "no answer" -> 0 (it has one); n2 (0.9) -> 1 (it has none).
    # exact = f1 = (1 + 0 + 1 + 1) / 4; HasAns 1/2; NoAns 2/2.
    got = compute_squad(PREDS, SQUAD, version_2=True, na_probs=PROBS, na_prob_thresh=0.5)
    assert list(got.items()) == [
        ("exact", 75.0), ("f1", 75.0), ("total", 4),
        ("HasAns_exact", 50.0), ("HasAns_f1", 50.0), ("HasAns_total", 2),
        ("NoAns_exact", 100.0), ("NoAns_f1", 100.0), ("NoAns_total", 2),
        # Start from "no answer" everywhere: 2 right (n1, n2). Answer in rising probability:
        # a1 +1 -> 3 (best, at 0.1); n1 given "" +0; a2 +0 (EM) or +2/3 (F1 -> 3 2/3, best at
        # 0.6); n2 given an answer -1.
        ("best_exact", 75.0), ("best_exact_thresh", 0.1),
        ("best_f1", 100 * (3 + 2 / 3) / 4), ("best_f1_thresh", 0.6)]


def test_the_default_threshold_changes_nothing_for_probabilities_up_to_one() -> None:
    plain = compute_squad(PREDS, SQUAD, version_2=True)
    with_probs = compute_squad(PREDS, SQUAD, version_2=True, na_probs=PROBS)
    assert {k: with_probs[k] for k in plain} == plain
    assert list(with_probs)[len(plain):] == ["best_exact", "best_exact_thresh", "best_f1",
                                             "best_f1_thresh"]


def test_without_probabilities_a_negative_threshold_reads_every_prediction_as_no_answer() -> None:
    # The official script gives every prediction probability 0.0 when no file is given.
    got = compute_squad(PREDS, SQUAD, version_2=True, na_prob_thresh=-0.5)
    assert (got["HasAns_exact"], got["NoAns_exact"], got["exact"]) == (0.0, 100.0, 50.0)
    assert "best_f1" not in got


def test_precision_recall_curves_worked_example() -> None:
    evaluation = evaluate_v2(PREDS, SQUAD, na_probs=PROBS, precision_recall=True)
    exact, f1, oracle = (evaluation.curves[k] for k in ("exact", "f1", "oracle"))
    # Rising probability a1, n1, a2, n2; 2 answerable. EM: true positives 1, 1, 1, 1.
    assert exact.precisions == (1.0, 1.0, 1 / 2, 1 / 3, 1 / 4)
    assert exact.recalls == (0.0, 0.5, 0.5, 0.5, 0.5)
    assert exact.average_precision == 50.0
    # F1: 1, 1, 5/3, 5/3 -> AP = 1 * 1/2 + 5/9 * (5/6 - 1/2).
    assert f1.recalls == pytest.approx((0.0, 0.5, 0.5, 5 / 6, 5 / 6))
    assert f1.average_precision == pytest.approx(100 * (0.5 + 5 / 27))
    # Oracle (1 per answerable): 1, 1, 2, 2 -> AP = 1/2 + 2/3 * 1/2.
    assert oracle.average_precision == pytest.approx(100 * (0.5 + 1 / 3))
    metrics = evaluation.metrics
    assert list(metrics)[-3:] == ["pr_exact_ap", "pr_f1_ap", "pr_oracle_ap"]
    assert metrics["pr_f1_ap"] == f1.average_precision
    assert evaluation.histograms == {"hasAns": [0.1, 0.6], "noAns": [0.3, 0.9]}


def test_equal_probabilities_keep_the_order_they_are_given_in() -> None:
    """The official script sorts stably and scores every point, even inside a run of equal
    probabilities: the file's order decides (a quirk kept for identical output)."""
    squad = _squad(("a1", ["Paris"]), ("n1", []))
    preds = {"a1": "Paris", "n1": "something"}
    # Start 1 (n1 right). a1 first: 2 -> best 100 % at 0.5. n1 first: 0, then 1: never above 1.
    first = compute_squad(preds, squad, version_2=True, na_probs={"a1": 0.5, "n1": 0.5})
    second = compute_squad(preds, squad, version_2=True, na_probs={"n1": 0.5, "a1": 0.5})
    assert (first["best_exact"], first["best_exact_thresh"]) == (100.0, 0.5)
    assert (second["best_exact"], second["best_exact_thresh"]) == (50.0, 0.0)
    # The curve has one point for the run of equal probabilities either way.
    for probs in ({"a1": 0.5, "n1": 0.5}, {"n1": 0.5, "a1": 0.5}):
        curve = evaluate_v2(preds, squad, na_probs=probs, precision_recall=True).curves["exact"]
        assert (curve.precisions, curve.recalls) == ((1.0, 0.5), (0.0, 1.0))


def test_a_blank_prediction_is_an_answer_to_the_best_threshold_search() -> None:
    """" " scores as "" (both normalise to nothing) but, as in the official script, the search
    counts any non-empty text as an answer: n1 loses its point when answered."""
    squad = _squad(("n1", []), ("a1", ["x"]))
    got = compute_squad({"n1": " ", "a1": "x"}, squad, version_2=True,
                        na_probs={"n1": 0.2, "a1": 0.8})
    # Raw: both right (exact 100). Search: start 1 (n1), n1 answered -1 -> 0, a1 +1 -> 1.
    assert (got["exact"], got["best_exact"], got["best_exact_thresh"]) == (100.0, 50.0, 0.0)


def test_no_answerable_question_draws_no_curve() -> None:
    squad = _squad(("n1", []), ("n2", []))
    evaluation = evaluate_v2({"n1": "", "n2": "x"}, squad, na_probs={"n1": 0.2, "n2": 0.7},
                             precision_recall=True)
    assert evaluation.curves == {}
    assert "pr_exact_ap" not in evaluation.metrics
    assert evaluation.histograms == {"noAns": [0.2, 0.7]}


@pytest.mark.parametrize(("na_probs", "kwargs", "match"), [
    ({"a1": 0.1, "n1": 0.3, "n2": 0.9}, {}, r"lack 1 of the 4 predicted questions \(first: 'a2'\)"),
    ({**PROBS, "a2": "high"}, {}, "probability of 'a2' must be a number, got a string"),
    ({**PROBS, "a2": True}, {}, "probability of 'a2' must be a number, got bool"),
    ({**PROBS, "a2": math.nan}, {}, "probability of 'a2' must be a number, got NaN"),
    ([0.1, 0.6], {}, "must map question id to a number, got a list"),
    (PROBS, {"na_prob_thresh": math.nan}, "threshold must be a number, got NaN"),
    (None, {"precision_recall": True}, "precision-recall curves need no-answer probabilities"),
])
def test_bad_no_answer_input_is_refused(na_probs: object, kwargs: dict, match: str) -> None:
    with pytest.raises(QABenchError, match=match):
        evaluate_v2(PREDS, SQUAD, na_probs=na_probs, **kwargs)


def test_no_answer_options_are_refused_for_v1() -> None:
    squad = _squad(("a1", ["Paris"]))
    for kwargs in ({"na_probs": {"a1": 0.5}}, {"na_prob_thresh": 0.5}):
        with pytest.raises(QABenchError, match="are SQuAD v2.0 options"):
            compute_squad({"a1": "Paris"}, squad, **kwargs)


# --------------------------------------------------------------------------- properties


@given(data=st.data(), thresh=THRESHOLDS, with_file=st.booleans())
def test_thresholds_and_best_thresholds_equal_evaluate_v2_0(
        data: st.DataObject, thresh: float, with_file: bool) -> None:
    """Any probabilities (extra ids too: the script ignores them here) and threshold."""
    squad = data.draw(squad_files(version_2=True))
    predictions = data.draw(predictions_for(squad, complete=True))
    na_probs = data.draw(na_probs_for(squad, extra=True)) if with_file else None
    expected = official_squad.evaluate_v2(squad, predictions, na_probs, thresh)
    ours = compute_squad(predictions, squad, version_2=True, na_probs=na_probs,
                         na_prob_thresh=thresh)
    assert list(ours.items()) == list(expected.items())
    assert all(type(ours[k]) is type(expected[k]) for k in ours)  # 1 stays 1, 1.0 stays 1.0
    assert compute_squad(predictions, records(squad), version_2=True, na_probs=na_probs,
                         na_prob_thresh=thresh) == ours


@given(data=st.data(), thresh=THRESHOLDS)
def test_precision_recall_analysis_equals_evaluate_v2_0(data: st.DataObject,
                                                        thresh: float) -> None:
    """``--out-image-dir``: the pr_*_ap fields, every curve point and the histograms' values.
    (No extra ids: the script crashes on them there.)"""
    squad = data.draw(squad_files(version_2=True))
    predictions = data.draw(predictions_for(squad, complete=True))
    na_probs = data.draw(na_probs_for(squad, extra=False))
    drawn: dict = {}
    expected = official_squad.evaluate_v2(squad, predictions, na_probs, thresh,
                                          image_analysis=True, drawn=drawn)
    ours = evaluate_v2(predictions, squad, na_probs=na_probs, na_prob_thresh=thresh,
                       precision_recall=True)
    assert list(ours.metrics.items()) == list(expected.items())
    curves = {name: (list(c.precisions), list(c.recalls)) for name, c in ours.curves.items()}
    assert {**curves, **ours.histograms} == drawn


@given(data=st.data(), thresh=THRESHOLDS)
def test_a_missing_prediction_is_a_wrong_answer_never_read_as_no_answer(
        data: st.DataObject, thresh: float) -> None:
    """Where the official script crashes: leaving a question out scores as a wrong answer
    ranked below every probability (so no threshold turns it into "no answer")."""
    squad = data.draw(squad_files(version_2=True))
    predictions = data.draw(predictions_for(squad, complete=True))
    na_probs = data.draw(na_probs_for(squad, extra=False))
    missing = data.draw(st.sampled_from(question_ids(squad)))
    left_out = {k: v for k, v in predictions.items() if k != missing}
    wrong = {**predictions, missing: "\u0001"}  # survives normalisation, matches nothing
    ranked_last = {**{k: v for k, v in na_probs.items() if k != missing}, missing: -math.inf}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = evaluate_v2(left_out, squad, na_probs=na_probs, na_prob_thresh=thresh,
                          precision_recall=True)
    assert [w.category for w in caught] == [MissingPredictionWarning]
    want = evaluate_v2(wrong, squad, na_probs=ranked_last, na_prob_thresh=thresh,
                       precision_recall=True)
    assert got.metrics == want.metrics
    assert got.curves == want.curves


def test_an_unanswerable_question_given_an_answer_costs_one_point_in_the_threshold_search() -> None:
    # Start 1 (n2 unanswered). Answer in rising probability: n2 "x" -1 -> 0; a1 +1 -> 1; a3 +1
    # -> 2, best (at 0.3): 2 of 3 questions.
    squad = _squad(("n2", []), ("a1", ["Paris"]), ("a3", ["Rome"]))
    got = compute_squad({"n2": "x", "a1": "Paris", "a3": "Rome"}, squad, version_2=True,
                        na_probs={"n2": 0.1, "a1": 0.2, "a3": 0.3})
    assert (got["best_exact"], got["best_exact_thresh"]) == (100 * 2 / 3, 0.3)


def test_probabilities_that_are_neither_int_nor_float_become_floats() -> None:
    """Ints are kept (printed as given, like the script); other reals (a Fraction) are floats."""
    from fractions import Fraction

    got = compute_squad(PREDS, SQUAD, version_2=True,
                        na_probs={"a1": 1, "a2": Fraction(3, 2), "n1": 2, "n2": 3})
    # Answer a1 (+1 -> 3, best at 1), then a2 (+2/3 F1 -> best at 3/2 as a float).
    assert got["best_exact_thresh"] == 1 and type(got["best_exact_thresh"]) is int
    assert got["best_f1_thresh"] == 1.5 and type(got["best_f1_thresh"]) is float


def test_evaluate_v2_draws_no_curves_unless_asked() -> None:
    """Without ``precision_recall`` (the default) no probabilities are needed and none drawn."""
    assert evaluate_v2(PREDS, SQUAD).curves == {}
    assert evaluate_v2(PREDS, SQUAD, na_probs=PROBS).curves == {}


def _write(path, obj: object):
    import json

    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.mark.filterwarnings("ignore:.*answer not at its answer_start")
def test_evaluate_files_reads_the_probabilities_file_and_threshold(tmp_path) -> None:
    """The files path gives what the in-memory call gives: probabilities and threshold reach
    the scoring."""
    from qa.task.metrics import evaluate_files

    data = _write(tmp_path / "data.json", {"version": "v2.0", "data": SQUAD})
    preds = _write(tmp_path / "preds.json", PREDS)
    probs = _write(tmp_path / "probs.json", PROBS)
    got = evaluate_files(data, preds, version_2=True, na_prob_path=probs, na_prob_thresh=0.5)
    assert got == compute_squad(PREDS, SQUAD, version_2=True, na_probs=PROBS, na_prob_thresh=0.5)
    assert got["exact"] == 75.0 and "best_f1" in got
    assert evaluate_files(data, preds, version_2=True) == compute_squad(PREDS, SQUAD,
                                                                         version_2=True)


@pytest.mark.parametrize("value", [True, "0.5", None])
def test_a_probabilities_file_with_a_non_number_is_refused(tmp_path, value: object) -> None:
    from qa.task.metrics import load_na_probs

    path = _write(tmp_path / "probs.json", {"a1": 0.1, "a2": value})
    with pytest.raises(QABenchError, match="the value of 'a2' must be a number"):
        load_na_probs(path)


def test_an_unreadable_probabilities_file_is_named_as_such(tmp_path) -> None:
    from qa.task.metrics import load_na_probs

    bad = tmp_path / "probs.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(QABenchError) as info:
        load_na_probs(bad)
    assert str(info.value).startswith(
        f"no-answer probabilities file {str(bad)!r} is not valid JSON")
