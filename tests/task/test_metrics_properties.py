"""Property: our EM/F1 are the official scripts' numbers, for any prediction set.

Random SQuAD files (several articles and paragraphs, several gold answers per question, gold
answers that normalise to nothing, repeated ids in v2.0) and random predictions (case,
punctuation, articles, whitespace runs, unicode; missing and extra ids where the official
script defines a result) are scored by ``qa.task.metrics.compute_squad`` and by the official
scripts'
functions (``benchmarks/oracles/official_squad.py``): the dicts must be equal, float for float
and key for key, in both reference layouts.
"""

from __future__ import annotations

import warnings

from helpers.squad_files import predictions_for, question_ids, records, squad_files
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.oracles import official_squad
from qa.task.metrics import MissingPredictionWarning, compute_squad


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
    assert _scored(predictions, records(squad), version_2=False) == ours


@given(data=st.data())
def test_v2_scores_equal_evaluate_v2_0(data: st.DataObject) -> None:
    """The official v2.0 script crashes on a missing prediction, so every question has one."""
    squad = data.draw(squad_files(version_2=True))
    predictions = data.draw(predictions_for(squad, complete=True))
    expected = official_squad.evaluate_v2(squad, predictions)
    ours = _scored(predictions, squad, version_2=True)
    assert list(ours.items()) == list(expected.items())
    assert _scored(predictions, records(squad), version_2=True) == ours


@given(data=st.data(), version_2=st.booleans())
def test_a_missing_prediction_scores_zero(data: st.DataObject, version_2: bool) -> None:
    """Leaving a question out scores as predicting something that matches nothing (v1.1 as the
    official script; v2.0, where the script crashes, the same way), with one warning."""
    squad = data.draw(squad_files(version_2=version_2))
    predictions = data.draw(predictions_for(squad, complete=True))
    missing = data.draw(st.sampled_from(question_ids(squad)))
    left_out = {k: v for k, v in predictions.items() if k != missing}
    # A control character survives normalisation: it matches no gold answer and not "".
    wrong = {**predictions, missing: "\u0001"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compute_squad(left_out, squad, version_2=version_2)
    assert [w.category for w in caught] == [MissingPredictionWarning]
    assert got == _scored(wrong, squad, version_2=version_2)
