"""Property: our EM/F1 are the official scripts' numbers, for any prediction set.

Random SQuAD files (several articles and paragraphs, several gold answers per question, gold
answers that normalise to nothing, repeated ids in v2.0) and random predictions (case,
punctuation, articles, whitespace runs, unicode; missing and extra ids where the official
script defines a result) are scored by ``qa.task.metrics.compute_squad`` and by the official
scripts'
functions (``benchmarks/reference/official_squad.py``): the dicts must be equal, float for float
and key for key, in both reference layouts.
"""

from __future__ import annotations

import warnings

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.reference import official_squad
from qa.task.metrics import MissingPredictionWarning, compute_squad

# Pieces that normalisation treats specially: articles (alone and inside words), punctuation
# (ASCII only is removed), case, unicode letters and digits, whitespace runs.
PIECES = ("the", "The", "a", "an", "An", "theory", "Paris", "paris", "blue", "whale", "1990",
          "1,000", "co-op", "U.S.", "naïve", "Ωmega", "東京", "é", "—", "«x»", "!", "'", ".",
          "(", ")")
GAPS = (" ", "", "  ", "\t", "\n", "\u00a0", "-")
answer_texts = st.builds("".join, st.lists(st.one_of(st.sampled_from(PIECES),
                                                     st.sampled_from(GAPS)), max_size=8))


@st.composite
def squad_files(draw: st.DrawFn, version_2: bool) -> list[dict]:
    """The ``data`` list of an official-layout file: articles of paragraphs of questions."""
    ids = st.sampled_from([f"q{i}" for i in range(12)]) if version_2 else None
    data, counter = [], 0
    for a in range(draw(st.integers(1, 3))):
        paragraphs = []
        for _ in range(draw(st.integers(1, 2))):
            qas = []
            for _ in range(draw(st.integers(1, 4))):
                qid = draw(ids) if ids is not None else f"q{counter}"
                counter += 1
                golds = draw(st.lists(answer_texts, min_size=0 if version_2 else 1, max_size=3))
                qas.append({"id": qid, "question": "?", "answers": [
                    {"text": text, "answer_start": 0} for text in golds]})
            paragraphs.append({"context": "c", "qas": qas})
        data.append({"title": f"t{a}", "paragraphs": paragraphs})
    return data


def _question_ids(data: list[dict]) -> list[str]:
    return [qa["id"] for article in data for p in article["paragraphs"] for qa in p["qas"]]


def _records(data: list[dict]) -> list[dict]:
    """The same questions in the Hugging Face datasets layout."""
    qas = [qa for article in data for p in article["paragraphs"] for qa in p["qas"]]
    return [{"id": qa["id"], "answers": {key: [a[key] for a in qa["answers"]]
                                         for key in ("text", "answer_start")}}
            for qa in qas]


@st.composite
def predictions_for(draw: st.DrawFn, data: list[dict], complete: bool) -> dict[str, str]:
    """A prediction per question (some copied from a gold answer, some ""), ids left out
    unless ``complete``, and a few ids the file does not have."""
    predictions = {}
    for qa in (qa for article in data for p in article["paragraphs"] for qa in p["qas"]):
        if not complete and draw(st.integers(0, 4)) == 0:
            continue
        golds = [a["text"] for a in qa["answers"]]
        choice = draw(st.sampled_from(("gold", "random", "empty")) if golds else
                      st.sampled_from(("random", "empty")))
        predictions[qa["id"]] = (draw(st.sampled_from(golds)) if choice == "gold" else
                                 draw(answer_texts) if choice == "random" else "")
    for extra in draw(st.lists(st.sampled_from(("x1", "x2")), unique=True)):
        predictions[extra] = draw(answer_texts)
    return predictions


def _scored(predictions: dict[str, str], references: list[dict], version_2: bool) -> dict:
    """compute_squad, with the missing-prediction warning (checked elsewhere) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingPredictionWarning)
        return compute_squad(predictions, references, version_2=version_2)


@given(data=st.data())
def test_v1_scores_equal_evaluate_v1_1(data: st.DataObject) -> None:
    squad = data.draw(squad_files(version_2=False))
    predictions = data.draw(predictions_for(squad, complete=False))
    expected = official_squad.evaluate_v1(squad, predictions)
    ours = _scored(predictions, squad, version_2=False)
    assert list(ours.items()) == list(expected.items())
    assert _scored(predictions, _records(squad), version_2=False) == ours


@given(data=st.data())
def test_v2_scores_equal_evaluate_v2_0(data: st.DataObject) -> None:
    """The official v2.0 script crashes on a missing prediction, so every question has one."""
    squad = data.draw(squad_files(version_2=True))
    predictions = data.draw(predictions_for(squad, complete=True))
    expected = official_squad.evaluate_v2(squad, predictions)
    ours = _scored(predictions, squad, version_2=True)
    assert list(ours.items()) == list(expected.items())
    assert _scored(predictions, _records(squad), version_2=True) == ours


@given(data=st.data(), version_2=st.booleans())
def test_a_missing_prediction_scores_zero(data: st.DataObject, version_2: bool) -> None:
    """Leaving a question out scores as predicting something that matches nothing (v1.1 as the
    official script; v2.0, where the script crashes, the same way), with one warning."""
    squad = data.draw(squad_files(version_2=version_2))
    predictions = data.draw(predictions_for(squad, complete=True))
    missing = data.draw(st.sampled_from(_question_ids(squad)))
    left_out = {k: v for k, v in predictions.items() if k != missing}
    # A control character survives normalisation: it matches no gold answer and not "".
    wrong = {**predictions, missing: "\u0001"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute_squad(left_out, squad, version_2=version_2)
    assert [w.category for w in caught] == [MissingPredictionWarning]
    assert got == _scored(wrong, squad, version_2=version_2)
