"""SQuAD v1.1 / v2.0 exact match and F1, scored exactly as the official evaluation scripts.

The two official scripts differ in small ways, and both are reproduced here:

* v1.1 takes the best score over the gold answers as given; a prediction and a gold answer that
  both normalise to nothing get EM 1 but F1 0. Scores are accumulated question by question.
* v2.0 drops gold answers that normalise to nothing and, when none are left, scores against
  ``""`` alone; F1 is 1 when prediction and gold are both empty and 0 when only one is. A
  question counts as answerable when its raw answer list is non-empty. Scores are kept per
  question id (a repeated id counts once) and summed per split (``HasAns`` / ``NoAns``).

Where the official scripts would crash (a question without a prediction in v2.0, a question
without gold answers in v1.1, no questions at all) we give a defined result or a
:class:`~qa.errors.QABenchError` instead. A missing prediction scores 0 in both versions and is
reported once with a :class:`MissingPredictionWarning`.
"""

from __future__ import annotations

import importlib.resources
import re
import string
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qa.errors import QABenchError
from qa.files import read_json
from qa.task.squad_file import ignored_summary, read_squad_file

__all__ = [
    "IgnoredInputWarning",
    "MissingPredictionWarning",
    "compute_squad",
    "evaluate_files",
    "exact_match",
    "f1",
    "load_evaluate_metric",
    "load_predictions",
    "load_squad_json",
    "normalize_answer",
]

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


class MissingPredictionWarning(UserWarning):
    """Some questions in the references have no prediction; each of them scores 0."""


# --------------------------------------------------------------------------- single answers


def normalize_answer(s: str) -> str:
    """Lower-case, then drop punctuation, then the articles a/an/the, then collapse whitespace.

    The order matters and follows the official scripts: punctuation goes before articles, so
    ``"the-end"`` becomes ``"theend"`` (no article left), while ``"the end"`` becomes ``"end"``.
    """
    text = s.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, ground_truth: str) -> int:
    """Return 1 when both strings normalise to the same text, else 0 (same in v1.1 and v2.0)."""
    return int(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1(prediction: str, ground_truth: str, *, version_2: bool = False) -> float:
    """Token-level F1 between a prediction and one gold answer, after normalisation.

    Args:
        prediction: The predicted answer text.
        ground_truth: One gold answer text.
        version_2: Use v2.0's rule for empty answers: if either side normalises to no tokens,
            F1 is 1.0 when both do and 0.0 otherwise. In v1.1 an empty side always gives 0.0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if version_2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    # Same operation order as the official scripts, so the floats agree bit for bit.
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


# --------------------------------------------------------------------------- references


def _answer_texts(answers: Any, where: str) -> list[str]:
    """Gold texts from either answers layout: a list of {"text", ...} or {"text": [...], ...}."""
    if isinstance(answers, Mapping):
        texts = answers.get("text")
    elif isinstance(answers, list):
        texts = [a.get("text") if isinstance(a, Mapping) else None for a in answers]
    else:
        raise QABenchError(f"{where}: 'answers' must be a list or a mapping, got {_kind(answers)}")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise QABenchError(f"{where}: every answer needs a string 'text'")
    return texts


def _question(qa: Any, where: str) -> tuple[str, list[str]]:
    """(id, gold texts) of one question record of either layout."""
    if not isinstance(qa, Mapping) or "id" not in qa or "answers" not in qa:
        raise QABenchError(f"{where}: a question needs 'id' and 'answers'")
    if not isinstance(qa["id"], str):
        raise QABenchError(f"{where}: question id must be a string, got {_kind(qa['id'])}")
    return qa["id"], _answer_texts(qa["answers"], where)


def _questions(references: Any) -> list[tuple[str, list[str]]]:
    """Flatten references (official "data" list or HF-style records) to (id, gold texts)."""
    if isinstance(references, Mapping) and "data" in references:
        references = references["data"]
    if isinstance(references, (str, bytes, Mapping)) or not isinstance(references, Iterable):
        raise QABenchError(
            "references must be the SQuAD 'data' list or a list of {'id', 'answers'} records, "
            f"got {_kind(references)}"
        )
    questions: list[tuple[str, list[str]]] = []
    for i, item in enumerate(references):
        if isinstance(item, Mapping) and "paragraphs" in item:
            paragraphs = item["paragraphs"]
            if not isinstance(paragraphs, list):
                raise QABenchError(f"data[{i}].paragraphs must be a list")
            for j, paragraph in enumerate(paragraphs):
                qas = paragraph.get("qas") if isinstance(paragraph, Mapping) else None
                if not isinstance(qas, list):
                    raise QABenchError(f"data[{i}].paragraphs[{j}] needs a 'qas' list")
                for k, qa in enumerate(qas):
                    questions.append(_question(qa, f"data[{i}].paragraphs[{j}].qas[{k}]"))
        elif isinstance(item, Mapping) and "id" in item:
            questions.append(_question(item, f"references[{i}]"))
        else:
            raise QABenchError(
                f"references[{i}] is neither an article (with 'paragraphs') "
                "nor a question record (with 'id' and 'answers')"
            )
    if not questions:
        raise QABenchError("references contain no questions")
    return questions


def _check_predictions(predictions: Any) -> None:
    """Raise unless predictions map string ids to string answers."""
    if not isinstance(predictions, Mapping):
        raise QABenchError(
            f"predictions must map question id to answer text, got {_kind(predictions)}"
        )
    for qid, text in predictions.items():
        if not isinstance(qid, str) or not isinstance(text, str):
            raise QABenchError(
                f"prediction for id {qid!r} must be a string, got {_kind(text)}"
                if isinstance(qid, str)
                else f"prediction id {qid!r} must be a string, got {_kind(qid)}"
            )


def _kind(obj: Any) -> str:
    """A short name for the JSON-ish type of ``obj``, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(obj), type(obj).__name__)


# --------------------------------------------------------------------------- datasets


def _warn_missing(missing: list[str], total: int) -> None:
    """One warning for all questions without a prediction."""
    if missing:
        warnings.warn(
            f"{len(missing)} of {total} questions have no prediction and score 0 "
            f"(first: {missing[0]!r})",
            MissingPredictionWarning,
            stacklevel=4,  # the caller of compute_squad
        )


def _score_v1(predictions: Mapping[str, str], questions: list[tuple[str, list[str]]]) -> dict:
    """v1.1: running sums over every question in order, best score over the gold answers."""
    exact_total = 0
    f1_total = 0.0
    missing: list[str] = []
    for qid, golds in questions:
        if not golds:
            raise QABenchError(
                f"question {qid!r} has no gold answers; SQuAD v1.1 scoring needs at least one "
                "(use version 2 for SQuAD 2.0 data)"
            )
        if qid not in predictions:
            missing.append(qid)
            continue
        prediction = predictions[qid]
        exact_total += max(exact_match(prediction, gold) for gold in golds)
        f1_total += max(f1(prediction, gold) for gold in golds)
    _warn_missing(missing, len(questions))
    total = len(questions)
    return {"exact_match": 100.0 * exact_total / total, "f1": 100.0 * f1_total / total}


def _score_v2(predictions: Mapping[str, str], questions: list[tuple[str, list[str]]]) -> dict:
    """v2.0: per-id scores (a repeated id keeps its last value), summed per split."""
    has_answer: dict[str, bool] = {}
    exact_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    missing: list[str] = []
    for qid, golds in questions:
        has_answer[qid] = bool(golds)
        # Gold answers that normalise to nothing are dropped; with none left, only "" is right.
        usable = [gold for gold in golds if normalize_answer(gold)] or [""]
        if qid not in predictions:
            missing.append(qid)
            exact_scores[qid] = f1_scores[qid] = 0
            continue
        prediction = predictions[qid]
        exact_scores[qid] = max(exact_match(prediction, gold) for gold in usable)
        f1_scores[qid] = max(f1(prediction, gold, version_2=True) for gold in usable)
    _warn_missing(missing, len(has_answer))

    def split(qids: list[str]) -> tuple[float, float, int]:
        # sum() over ids in dataset order, as the official script does (float-identical).
        total = len(qids)
        exact = 100.0 * sum(exact_scores[k] for k in qids) / total
        return exact, 100.0 * sum(f1_scores[k] for k in qids) / total, total

    result: dict[str, float | int] = {}
    result["exact"], result["f1"], result["total"] = split(list(has_answer))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has is wanted]
        if qids:
            scores = split(qids)
            for name, value in zip(("exact", "f1", "total"), scores, strict=True):
                result[f"{prefix}_{name}"] = value
    return result


def compute_squad(
    predictions: Mapping[str, str], references: Any, version_2: bool = False
) -> dict[str, float | int]:
    """Score predictions against SQuAD references, identically to the official scripts.

    Args:
        predictions: Question id -> predicted answer text (``""`` means "no answer" in v2.0).
            Ids that are not in the references are ignored.
        references: The official file's ``"data"`` list (articles -> paragraphs -> qas), the
            whole file as a dict, or a list of ``{"id", "answers": {"text": [...], ...}}``
            records (the Hugging Face datasets layout).
        version_2: Score as evaluate-v2.0.py instead of evaluate-v1.1.py.

    Returns:
        v1.1: ``{"exact_match", "f1"}``; v2.0: ``{"exact", "f1", "total"}`` plus ``HasAns_*``
        and ``NoAns_*`` for each kind of question present. Scores are percentages.

    Raises:
        QABenchError: Malformed predictions or references, or no questions to score.
    """
    _check_predictions(predictions)
    questions = _questions(references)
    if version_2:
        return _score_v2(predictions, questions)
    return _score_v1(predictions, questions)


# --------------------------------------------------------------------------- files


class IgnoredInputWarning(UserWarning):
    """``evaluate`` accepted a dataset that training would refuse, and says what it ignored."""


def load_squad_json(path: str | Path) -> list[dict]:
    """Load an official-layout SQuAD file and return its ``"data"`` list (checked).

    The one SQuAD validator (``qa.task.squad_file``) in its lenient mode: what the official scripts
    accept is accepted; what only training needs (contexts, answer_start, unique ids) is not
    checked, and a ``IgnoredInputWarning`` says what was found and ignored.

    Raises:
        QABenchError: The file is unreadable, not UTF-8, not JSON, or not in the SQuAD layout.
    """
    return _load_squad(path, stacklevel=3)


def _load_squad(path: str | Path, stacklevel: int) -> list[dict]:
    squad = read_squad_file(path, version_2=None, strict=False)
    if squad.ignored:  # attributed to the caller of the public function
        warnings.warn(f"dataset file {str(path)!r}: ignored what only training checks: "
                      f"{ignored_summary(squad.ignored)}", IgnoredInputWarning,
                      stacklevel=stacklevel)
    return squad.data


def load_predictions(path: str | Path) -> dict[str, str]:
    """Load a predictions file: a JSON object mapping question id to answer text.

    Raises:
        QABenchError: The file is unreadable, not UTF-8, not JSON, or not an id -> string map.
    """
    preds = read_json(path, "predictions")
    if not isinstance(preds, dict):
        raise QABenchError(
            f"predictions file {str(path)!r} must be a JSON object mapping question id to "
            f"answer text, got {_kind(preds)}"
        )
    try:
        _check_predictions(preds)
    except QABenchError as err:
        raise QABenchError(f"predictions file {str(path)!r}: {err}") from None
    return preds


def evaluate_files(
    data_path: str | Path, predictions_path: str | Path, version_2: bool = False
) -> dict[str, float | int]:
    """Score a predictions file against a dataset file (what ``qa-bench evaluate`` prints).

    A drop-in for ``evaluate-v1.1.py DATA PRED`` / ``evaluate-v2.0.py DATA PRED``: same
    inputs, same numbers, same keys.
    """
    data = _load_squad(data_path, stacklevel=3)
    predictions = load_predictions(predictions_path)
    return compute_squad(predictions, data, version_2=version_2)


# --------------------------------------------------------------------------- evaluate module


def load_evaluate_metric(version_2: bool = False, **load_kwargs: Any) -> Any:
    """Load this package's ``evaluate`` metric module (works offline).

    Args:
        version_2: Score as SQuAD v2.0 (predictions may carry ``no_answer_probability``).
        **load_kwargs: Passed to ``evaluate.load``. ``keep_in_memory`` defaults to True for a
            single process, so parallel runs share no cache files.

    Returns:
        An ``evaluate.EvaluationModule`` whose ``compute`` delegates to :func:`compute_squad`.
    """
    import evaluate  # deferred: slow to import and only needed here

    if load_kwargs.get("num_process", 1) == 1:
        load_kwargs.setdefault("keep_in_memory", True)
    module = importlib.resources.files("qa.task") / "squad_metric" / "squad_metric.py"
    with importlib.resources.as_file(module) as path:
        return evaluate.load(str(path), version_2=version_2, **load_kwargs)
