"""The seed notebook's pre- and postprocessing, kept as the test oracle (the seed algorithm).

This re-expresses, loop for loop, the three functions of the question-answering notebook this
project grew from (Optimum Graphcore's ``notebooks/question_answering.ipynb``, itself derived from
Hugging Face's ``question_answering.ipynb``). ``qa.task.preprocessing`` and
``qa.task.postprocessing`` are
checked against it for equality and timed against it for speed, so it must stay slow and literal:
do not optimise it, and do not fix its quirks here.

Known quirks of the seed, reproduced on purpose:

* Labelling: the start-token walk is bounded only by the sequence length, so an answer that starts
  on the window's last context token walks on through ``[SEP]`` and the padding (whose offsets are
  ``(0, 0)``) and is labelled with a start position past the context (the last token when the
  sequence is padded on the right).
* Null score (SQuAD v2): the variable is called ``min_null_score`` but the update keeps the
  *largest* null score over an example's features; the answer is non-null iff the best span
  score is strictly greater than it. There is no threshold.

Differences from the notebook that do not change results: the tokenizer, ``pad_on_right`` and
``squad_v2`` are arguments instead of notebook globals; the caller's batch is not mutated; the
postprocessing prints no progress bar. Two keyword-only switches of ``postprocess_qa_predictions``
(``null_score`` and ``null_score_diff_threshold``) select the corrected v2 rule that
``qa.task.postprocessing`` implements, and one of ``prepare_train_features``
(``stop_at_context_end``)
the corrected labelling walk of ``qa.task.preprocessing``, so that both can be compared against
these
loops for equality; by default the loops are the seed's.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import numpy as np


def _tokenize(examples: Mapping[str, Any], tokenizer: Any, max_length: int,
              doc_stride: int) -> tuple[dict[str, Any], Any, bool]:
    """The tokenizer call shared by both preparation functions, as the seed writes it."""
    pad_on_right = tokenizer.padding_side == "right"
    # The seed rewrites examples["question"] in place; copy the batch so the caller's is untouched.
    examples = dict(examples)
    examples["question"] = [q.lstrip() for q in examples["question"]]
    tokenized_examples = tokenizer(
        list(examples["question" if pad_on_right else "context"]),
        list(examples["context" if pad_on_right else "question"]),
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )
    return examples, tokenized_examples, pad_on_right


def prepare_train_features(examples: Mapping[str, Any], tokenizer: Any, max_length: int = 384,
                           doc_stride: int = 128, *, stop_at_context_end: bool = False) -> Any:
    """Tokenize a batch of examples into overflowing windows labelled with answer token indices.

    Args:
        examples: batched columns ``question``, ``context``, ``answers``.
        tokenizer: a fast tokenizer.
        max_length: tokens per feature.
        doc_stride: tokens of overlap between consecutive windows of one context.
        stop_at_context_end: False is the seed's start walk (see the quirk above); True stops
            it at the window's last context token, as ``qa.task.preprocessing`` does.

    Returns:
        The tokenizer's ``BatchEncoding`` plus ``start_positions`` and ``end_positions``.
    """
    examples, tokenized_examples, pad_on_right = _tokenize(examples, tokenizer, max_length,
                                                           doc_stride)
    sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized_examples.pop("offset_mapping")
    tokenized_examples["start_positions"] = []
    tokenized_examples["end_positions"] = []

    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized_examples["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = tokenized_examples.sequence_ids(i)
        sample_index = sample_mapping[i]
        answers = examples["answers"][sample_index]
        if len(answers["answer_start"]) == 0:
            tokenized_examples["start_positions"].append(cls_index)
            tokenized_examples["end_positions"].append(cls_index)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])

        # First and last token of the context inside this window.
        token_start_index = 0
        while sequence_ids[token_start_index] != (1 if pad_on_right else 0):
            token_start_index += 1
        token_end_index = len(input_ids) - 1
        while sequence_ids[token_end_index] != (1 if pad_on_right else 0):
            token_end_index -= 1

        if not (offsets[token_start_index][0] <= start_char
                and offsets[token_end_index][1] >= end_char):
            # The answer is not fully inside this window: label it with the CLS token.
            tokenized_examples["start_positions"].append(cls_index)
            tokenized_examples["end_positions"].append(cls_index)
        else:
            # The quirk: this walk may leave the context (see the module docstring).
            last = token_end_index if stop_at_context_end else len(offsets) - 1
            while token_start_index <= last and offsets[token_start_index][0] <= start_char:
                token_start_index += 1
            tokenized_examples["start_positions"].append(token_start_index - 1)
            while offsets[token_end_index][1] >= end_char:
                token_end_index -= 1
            tokenized_examples["end_positions"].append(token_end_index + 1)

    return tokenized_examples


def prepare_validation_features(examples: Mapping[str, Any], tokenizer: Any,
                                max_length: int = 384, doc_stride: int = 128) -> Any:
    """Tokenize a batch of examples into windows that remember their example and context offsets.

    Returns:
        The tokenizer's ``BatchEncoding`` plus ``example_id``; ``offset_mapping`` holds ``None``
        for every token outside the context.
    """
    examples, tokenized_examples, pad_on_right = _tokenize(examples, tokenizer, max_length,
                                                           doc_stride)
    sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
    tokenized_examples["example_id"] = []

    for i in range(len(tokenized_examples["input_ids"])):
        sequence_ids = tokenized_examples.sequence_ids(i)
        context_index = 1 if pad_on_right else 0
        sample_index = sample_mapping[i]
        tokenized_examples["example_id"].append(examples["id"][sample_index])
        tokenized_examples["offset_mapping"][i] = [
            (o if sequence_ids[k] == context_index else None)
            for k, o in enumerate(tokenized_examples["offset_mapping"][i])
        ]

    return tokenized_examples


def _rows(table: Any) -> Any:
    """Rows of a dict of columns (the seed indexes rows; a ``datasets.Dataset`` already can)."""
    if isinstance(table, Mapping):
        keys = list(table)
        return [dict(zip(keys, values, strict=True))
                for values in zip(*(table[key] for key in keys), strict=True)]
    return table


def postprocess_qa_predictions(
    examples: Any,
    features: Any,
    raw_predictions: tuple[np.ndarray, np.ndarray],
    tokenizer: Any,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    squad_v2: bool = False,
    *,
    null_score: str = "max",
    null_score_diff_threshold: float | None = None,
) -> collections.OrderedDict[str, str]:
    """Pick each example's best answer span from the logits of its features, as the seed does.

    Args:
        examples: ``datasets.Dataset`` (or dict of columns) with ``id`` and ``context``.
        features: ``datasets.Dataset`` (or dict of columns) with ``example_id``,
            ``offset_mapping`` (``None`` or ``[]`` outside the context) and ``input_ids``.
        raw_predictions: ``(start_logits, end_logits)``, each ``[n_features, seq_len]``.
        tokenizer: gives ``cls_token_id`` (the seed reads it from a notebook global).
        n_best_size: start and end indices considered per feature.
        max_answer_length: longest answer in tokens.
        squad_v2: allow the null answer.
        null_score: ``"max"`` is the seed's update (keeps the largest CLS score over an example's
            features); ``"min"`` keeps the smallest, as ``qa.task.postprocessing`` does.
        null_score_diff_threshold: ``None`` is the seed's rule (answer iff best > null); a number
            answers ``""`` iff ``null - best > threshold``, as ``qa.task.postprocessing`` does.

    Returns:
        Example id -> answer text, in example order.
    """
    all_start_logits, all_end_logits = raw_predictions
    example_ids = examples["id"]
    examples = _rows(examples)
    features = _rows(features)
    example_id_to_index = {k: i for i, k in enumerate(example_ids)}
    features_per_example = collections.defaultdict(list)
    for i, feature in enumerate(features):
        features_per_example[example_id_to_index[feature["example_id"]]].append(i)

    predictions: collections.OrderedDict[str, str] = collections.OrderedDict()
    for example_index, example in enumerate(examples):
        feature_indices = features_per_example[example_index]
        min_null_score = None
        valid_answers = []
        context = example["context"]
        for feature_index in feature_indices:
            start_logits = all_start_logits[feature_index]
            end_logits = all_end_logits[feature_index]
            offset_mapping = features[feature_index]["offset_mapping"]

            cls_index = features[feature_index]["input_ids"].index(tokenizer.cls_token_id)
            feature_null_score = start_logits[cls_index] + end_logits[cls_index]
            if null_score == "max":
                # Literally the seed's update: despite the name it keeps the largest score.
                if min_null_score is None or min_null_score < feature_null_score:
                    min_null_score = feature_null_score
            elif min_null_score is None or feature_null_score < min_null_score:
                min_null_score = feature_null_score

            # The n_best highest logits, highest first.
            start_indexes = np.argsort(start_logits)[-1: -n_best_size - 1: -1].tolist()
            end_indexes = np.argsort(end_logits)[-1: -n_best_size - 1: -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    # Skip indices outside the context (or outside the offsets altogether).
                    if (
                        start_index >= len(offset_mapping)
                        or end_index >= len(offset_mapping)
                        or offset_mapping[start_index] is None
                        or offset_mapping[end_index] is None
                        or offset_mapping[start_index] == []
                        or offset_mapping[end_index] == []
                    ):
                        continue
                    # Skip spans of negative length or longer than max_answer_length.
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    start_char = offset_mapping[start_index][0]
                    end_char = offset_mapping[end_index][1]
                    valid_answers.append({
                        "score": start_logits[start_index] + end_logits[end_index],
                        "text": context[start_char:end_char],
                    })

        if len(valid_answers) > 0:
            # sorted() is stable: among equal scores the first candidate met wins.
            best_answer = sorted(valid_answers, key=lambda x: x["score"], reverse=True)[0]
        else:
            best_answer = {"text": "", "score": 0.0}

        if not squad_v2:
            predictions[example["id"]] = best_answer["text"]
        elif null_score_diff_threshold is None:
            predictions[example["id"]] = (
                best_answer["text"] if best_answer["score"] > min_null_score else "")
        else:
            diff = min_null_score - best_answer["score"]
            predictions[example["id"]] = "" if diff > null_score_diff_threshold else (
                best_answer["text"])
    return predictions
