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
import numbers
import re
import string
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QABenchError
from qa.files import read_json
from qa.task.squad_file import ignored_summary, read_squad_file

__all__ = [
    "DEFAULT_NA_PROB_THRESH",
    "IgnoredInputWarning",
    "MissingPredictionWarning",
    "PrecisionRecall",
    "V2Evaluation",
    "compute_squad",
    "evaluate_files",
    "evaluate_v2",
    "exact_match",
    "f1",
    "load_evaluate_metric",
    "load_na_probs",
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


# --------------------------------------------------------------------------- SQuAD v2.0

#: ``evaluate-v2.0.py``'s default ``--na-prob-thresh``: a prediction is replaced by "no answer"
#: only when its no-answer probability *exceeds* the threshold, so with probabilities in [0, 1]
#: the default changes nothing.
DEFAULT_NA_PROB_THRESH = 1.0

_NEVER = float("-inf")  # the no-answer probability a missing prediction is ranked with


@dataclass(frozen=True)
class PrecisionRecall:
    """One precision-recall curve of ``evaluate-v2.0.py --out-image-dir``.

    Questions are taken in rising no-answer probability. Wherever a threshold can fall (after
    the last of a run of equal probabilities) the curve records the precision and recall of
    answering exactly the questions taken so far, each counting its score (exact, F1, or 1 for
    the oracle) when it is answerable. It starts at recall 0, precision 1.
    """

    precisions: tuple[float, ...]
    recalls: tuple[float, ...]
    average_precision: float  # percent: the sum of precision x recall step over the points


@dataclass
class V2Evaluation:
    """Everything ``evaluate-v2.0.py`` computes for one predictions file.

    Attributes:
        metrics: the script's JSON output, key for key and in its order.
        curves: with ``precision_recall``: ``"exact"``, ``"f1"`` and ``"oracle"`` curves (none
            when no question is answerable, as the script draws none).
        histograms: with ``precision_recall``: the no-answer probabilities of the answerable
            (``"hasAns"``) and unanswerable (``"noAns"``) questions, for those present.
    """

    metrics: dict[str, Any]
    curves: dict[str, PrecisionRecall] = field(default_factory=dict)
    histograms: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class _RawV2:
    """Per question id, before any no-answer threshold: what every v2.0 figure is built from.

    All dicts share one key order: the dataset's, a repeated id at its first place with its
    last values (as the official script's dicts behave).
    """

    has_answer: dict[str, bool]
    exact: dict[str, float]
    f1: dict[str, float]
    answered: dict[str, bool]  # the prediction is not "" (a missing one counts as answered)
    missing: list[str]  # ids without a prediction, once each


def _raw_v2(predictions: Mapping[str, str], questions: list[tuple[str, list[str]]]) -> _RawV2:
    raw = _RawV2({}, {}, {}, {}, [])
    for qid, golds in questions:
        raw.has_answer[qid] = bool(golds)
        # Gold answers that normalise to nothing are dropped; with none left, only "" is right.
        usable = [gold for gold in golds if normalize_answer(gold)] or [""]
        if qid not in predictions:
            raw.missing.append(qid)
            raw.exact[qid] = raw.f1[qid] = 0
            raw.answered[qid] = True
            continue
        prediction = predictions[qid]
        raw.exact[qid] = max(exact_match(prediction, gold) for gold in usable)
        raw.f1[qid] = max(f1(prediction, gold, version_2=True) for gold in usable)
        raw.answered[qid] = bool(prediction)
    raw.missing = list(dict.fromkeys(raw.missing))
    return raw


def _check_na_probs(na_probs: Any, raw: _RawV2) -> dict[str, float]:
    """The probabilities of the predicted questions, in the mapping's order; refuses a mapping
    that is not id -> number or lacks a predicted question (the official script crashes)."""
    if not isinstance(na_probs, Mapping):
        raise QABenchError("no-answer probabilities must map question id to a number, got "
                           f"{_kind(na_probs)}")
    checked: dict[str, float] = {}
    missing = set(raw.missing)
    for qid, value in na_probs.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
            raise QABenchError(f"no-answer probability of {qid!r} must be a number, got "
                               f"{'NaN' if value != value else _kind(value)}")
        if qid in raw.has_answer and qid not in missing:
            # ints and floats are kept as given: the best thresholds are printed as given.
            checked[qid] = value if isinstance(value, (int, float)) else float(value)
    lacking = [qid for qid in raw.has_answer if qid not in checked and qid not in missing]
    if lacking:
        raise QABenchError(
            f"no-answer probabilities lack {len(lacking)} of the "
            f"{len(raw.has_answer) - len(missing)} predicted questions (first: {lacking[0]!r})")
    return checked


def _thresholded(scores: dict[str, float], raw: _RawV2, probs: Mapping[str, float],
                 thresh: float) -> dict[str, float]:
    """Scores with a prediction whose no-answer probability exceeds ``thresh`` read as "no
    answer": right (1.0) for an unanswerable question, wrong (0.0) for an answerable one."""
    return {qid: float(not raw.has_answer[qid]) if probs.get(qid, _NEVER) > thresh else score
            for qid, score in scores.items()}


def _summary(exact: dict[str, float], f1s: dict[str, float],
             has_answer: dict[str, bool]) -> dict[str, Any]:
    """``exact``, ``f1``, ``total``, then the same for the ``HasAns`` and ``NoAns`` questions
    present; sums run over ids in dataset order, as the official script's (float-identical)."""

    def split(qids: list[str]) -> tuple[float, float, int]:
        total = len(qids)
        return (100.0 * sum(exact[k] for k in qids) / total,
                100.0 * sum(f1s[k] for k in qids) / total, total)

    result: dict[str, Any] = {}
    result["exact"], result["f1"], result["total"] = split(list(has_answer))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has is wanted]
        if qids:
            for name, value in zip(("exact", "f1", "total"), split(qids), strict=True):
                result[f"{prefix}_{name}"] = value
    return result


def _ranked(raw: _RawV2, probs: dict[str, float]) -> list[tuple[str, float]]:
    """Questions in rising no-answer probability; equal ones keep the probabilities' order (the
    official script's stable sort). Missing predictions come first: never read as no answer."""
    known = sorted(probs.items(), key=lambda item: item[1])
    return [(qid, _NEVER) for qid in raw.missing] + known


def _best_threshold(scores: dict[str, float], raw: _RawV2,
                    ranked: list[tuple[str, float]]) -> tuple[float, float]:
    """The best score over every threshold, and the threshold (a probability) that gives it.

    Start from "no answer" everywhere (every unanswerable question right), then answer the
    questions one by one in rising probability: an answerable one adds its score, an
    unanswerable one given an answer loses its point. The first strict best wins; 0.0 if none
    beats answering nothing. As the official script, points inside a run of equal
    probabilities count too.
    """
    score = sum(not has for has in raw.has_answer.values())
    best, threshold = score, 0.0
    for qid, prob in ranked:
        if raw.has_answer[qid]:
            score += scores[qid]
        elif raw.answered[qid]:
            score -= 1
        if score > best:
            best, threshold = score, prob
    return 100.0 * best / len(scores), threshold


def _precision_recall(scores: Mapping[str, float], raw: _RawV2,
                      ranked: list[tuple[str, float]], answerable: int) -> PrecisionRecall:
    """See :class:`PrecisionRecall`."""
    true_pos = 0.0
    precisions, recalls = [1.0], [0.0]
    area = 0.0
    for i, (qid, prob) in enumerate(ranked):
        if raw.has_answer[qid]:
            true_pos += scores[qid]
        if i + 1 < len(ranked) and ranked[i + 1][1] == prob:
            continue  # no threshold falls between equal probabilities
        precision = true_pos / float(i + 1)
        recall = true_pos / float(answerable)
        area += precision * (recall - recalls[-1])
        precisions.append(precision)
        recalls.append(recall)
    return PrecisionRecall(tuple(precisions), tuple(recalls), 100.0 * area)


def _evaluate_v2(predictions: Mapping[str, str], questions: list[tuple[str, list[str]]],
                 na_probs: Mapping[str, float] | None, na_prob_thresh: float,
                 precision_recall: bool) -> V2Evaluation:
    """evaluate-v2.0.py's ``main`` (see :func:`evaluate_v2`); warns from its caller's caller."""
    if na_prob_thresh != na_prob_thresh:
        raise QABenchError("the no-answer probability threshold must be a number, got NaN")
    if precision_recall and na_probs is None:
        raise QABenchError("precision-recall curves need no-answer probabilities: they rank "
                           "the questions by them")
    raw = _raw_v2(predictions, questions)
    _warn_missing(raw.missing, len(raw.has_answer))
    missing = set(raw.missing)
    # Without a file every prediction has probability 0.0 (so a negative threshold reads
    # every prediction as "no answer", as the official script does).
    probs = (_check_na_probs(na_probs, raw) if na_probs is not None else
             {qid: 0.0 for qid in raw.exact if qid not in missing})
    metrics = _summary(_thresholded(raw.exact, raw, probs, na_prob_thresh),
                       _thresholded(raw.f1, raw, probs, na_prob_thresh), raw.has_answer)
    evaluation = V2Evaluation(metrics)
    if na_probs is None:
        return evaluation
    ranked = _ranked(raw, probs)
    metrics["best_exact"], metrics["best_exact_thresh"] = _best_threshold(raw.exact, raw, ranked)
    metrics["best_f1"], metrics["best_f1_thresh"] = _best_threshold(raw.f1, raw, ranked)
    if not precision_recall:
        return evaluation
    answerable = sum(raw.has_answer.values())
    if answerable:
        oracle = {qid: float(has) for qid, has in raw.has_answer.items()}
        for name, scores in (("exact", raw.exact), ("f1", raw.f1), ("oracle", oracle)):
            curve = _precision_recall(scores, raw, ranked, answerable)
            evaluation.curves[name] = curve
            metrics[f"pr_{name}_ap"] = curve.average_precision
    for name, wanted in (("hasAns", True), ("noAns", False)):
        values = [na_probs[qid] for qid, has in raw.has_answer.items()
                  if has is wanted and qid in na_probs]
        if values:
            evaluation.histograms[name] = values
    return evaluation


def evaluate_v2(
    predictions: Mapping[str, str], references: Any, *,
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = DEFAULT_NA_PROB_THRESH, precision_recall: bool = False,
) -> V2Evaluation:
    """Score as ``evaluate-v2.0.py DATA PRED [-n NA_PROB] [-t THRESH] [-p DIR]`` does.

    Args:
        predictions: Question id -> answer text (``""`` means "no answer").
        references: As for :func:`compute_squad`.
        na_probs: Question id -> the model's estimate that the question has no answer (higher
            means more likely unanswerable; any real numbers, e.g. null-score differences).
            Every predicted question needs one; other ids are ignored. Adds ``best_exact``,
            ``best_exact_thresh``, ``best_f1`` and ``best_f1_thresh``: the scores had each
            question above a threshold been answered "no answer", at the best threshold.
        na_prob_thresh: A prediction whose probability exceeds this counts as "no answer" in
            ``exact``/``f1`` and the ``HasAns_``/``NoAns_`` splits.
        precision_recall: Also the precision-recall curves, their ``pr_exact_ap``,
            ``pr_f1_ap`` and ``pr_oracle_ap`` and the probabilities' histograms (what the
            script computes with ``--out-image-dir``); needs ``na_probs``.

    A missing prediction scores 0 (one :class:`MissingPredictionWarning`) and is never read
    as "no answer", whatever its probability: as a wrong answer ranked below every other.

    Raises:
        QABenchError: Malformed predictions, references or probabilities, a predicted question
            without a probability, or ``precision_recall`` without ``na_probs``.
    """
    _check_predictions(predictions)
    return _evaluate_v2(predictions, _questions(references), na_probs, na_prob_thresh,
                        precision_recall)

def compute_squad(
    predictions: Mapping[str, str], references: Any, version_2: bool = False, *,
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = DEFAULT_NA_PROB_THRESH,
) -> dict[str, Any]:
    """Score predictions against SQuAD references, identically to the official scripts.

    Args:
        predictions: Question id -> predicted answer text (``""`` means "no answer" in v2.0).
            Ids that are not in the references are ignored.
        references: The official file's ``"data"`` list (articles -> paragraphs -> qas), the
            whole file as a dict, or a list of ``{"id", "answers": {"text": [...], ...}}``
            records (the Hugging Face datasets layout).
        version_2: Score as evaluate-v2.0.py instead of evaluate-v1.1.py.
        na_probs: v2.0 only: question id -> no-answer probability (``--na-prob-file``); adds
            the best-threshold fields (see :func:`evaluate_v2`).
        na_prob_thresh: v2.0 only: ``--na-prob-thresh``.

    Returns:
        v1.1: ``{"exact_match", "f1"}``; v2.0: ``{"exact", "f1", "total"}`` plus ``HasAns_*``
        and ``NoAns_*`` for each kind of question present, and with ``na_probs``
        ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``. Scores are
        percentages.

    Raises:
        QABenchError: Malformed predictions, references or probabilities, no questions to
            score, or no-answer options with v1.1.
    """
    _check_predictions(predictions)
    questions = _questions(references)
    if version_2:
        return _evaluate_v2(predictions, questions, na_probs, na_prob_thresh, False).metrics
    if na_probs is not None or na_prob_thresh != DEFAULT_NA_PROB_THRESH:
        raise QABenchError("no-answer probabilities and thresholds are SQuAD v2.0 options "
                           "(score with version 2)")
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


def load_na_probs(path: str | Path) -> dict[str, float]:
    """Load a no-answer probabilities file (``--na-prob-file``): a JSON object mapping
    question id to a number (its key order is kept: it breaks ties between equal numbers).

    Raises:
        QABenchError: The file is unreadable, not UTF-8, not JSON, or not an id -> number map.
    """
    probs = read_json(path, "no-answer probabilities")
    if not isinstance(probs, dict):
        raise QABenchError(
            f"no-answer probabilities file {str(path)!r} must be a JSON object mapping "
            f"question id to a number, got {_kind(probs)}")
    for qid, value in probs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise QABenchError(
                f"no-answer probabilities file {str(path)!r}: the value of {qid!r} must be a "
                f"number, got {'NaN' if value != value else _kind(value)}")
    return probs


def evaluate_files(
    data_path: str | Path, predictions_path: str | Path, version_2: bool = False, *,
    na_prob_path: str | Path | None = None, na_prob_thresh: float = DEFAULT_NA_PROB_THRESH,
) -> dict[str, Any]:
    """Score a predictions file against a dataset file (what ``qa-bench evaluate`` prints).

    A drop-in for ``evaluate-v1.1.py DATA PRED`` / ``evaluate-v2.0.py DATA PRED [-n NA_PROB]
    [-t THRESH]``: same inputs, same numbers, same keys.
    """
    data = _load_squad(data_path, stacklevel=3)
    predictions = load_predictions(predictions_path)
    na_probs = load_na_probs(na_prob_path) if na_prob_path is not None else None
    return compute_squad(predictions, data, version_2=version_2, na_probs=na_probs,
                         na_prob_thresh=na_prob_thresh)


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
