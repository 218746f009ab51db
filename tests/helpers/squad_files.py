"""Hypothesis strategies for SQuAD files, predictions and no-answer probabilities.

Shared by the property tests that score them against the official scripts' re-expression
(``benchmarks/oracles/official_squad.py``): ``tests/task/test_metrics_properties.py`` and
``tests/task/test_metrics_no_answer.py``.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Pieces that normalisation treats specially: articles (alone and inside words), punctuation
# (ASCII only is removed), case, unicode letters and digits, whitespace runs.
PIECES = ("the", "The", "a", "an", "An", "theory", "Paris", "paris", "blue", "whale", "1990",
          "1,000", "co-op", "U.S.", "naïve", "Ωmega", "東京", "é", "—", "«x»", "!", "'", ".",
          "(", ")")
GAPS = (" ", "", "  ", "\t", "\n", "\u00a0", "-")
answer_texts = st.builds("".join, st.lists(st.one_of(st.sampled_from(PIECES),
                                                     st.sampled_from(GAPS)), max_size=8))

# No-answer probabilities: few distinct values so that ties (whose order the file decides) are
# common, ints as a JSON file may hold them, and any float (unbounded null-score differences).
PROBABILITIES = st.one_of(st.sampled_from((0.0, 0.25, 0.5, 0.5, 1.0, 0, 1)),
                          st.floats(-10, 10, allow_nan=False))
# --na-prob-thresh values: the default, inside the probabilities' range, and around it.
THRESHOLDS = st.one_of(st.sampled_from((1.0, 0.5, 0.25, 0.0, -1.0)),
                       st.floats(-11, 11, allow_nan=False))


@st.composite
def squad_files(draw: st.DrawFn, version_2: bool) -> list[dict]:
    """The ``data`` list of an official-layout file: articles of paragraphs of questions
    (v2.0: ids drawn from a small set, so some repeat)."""
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


def question_ids(data: list[dict]) -> list[str]:
    """Every question id of a file, in order (repeats included)."""
    return [qa["id"] for article in data for p in article["paragraphs"] for qa in p["qas"]]


def records(data: list[dict]) -> list[dict]:
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


@st.composite
def na_probs_for(draw: st.DrawFn, data: list[dict], extra: bool) -> dict[str, float]:
    """A no-answer probability per question id, in a drawn key order (it breaks ties), and
    with ``extra`` some ids the file does not have."""
    ids = draw(st.permutations(list(dict.fromkeys(question_ids(data)))))
    if extra:
        ids += draw(st.lists(st.sampled_from(("x1", "x3")), unique=True))
        ids = draw(st.permutations(ids))
    return {qid: draw(PROBABILITIES) for qid in ids}
