"""The official SQuAD evaluation scripts' scoring, kept as the test oracle (the official semantics).

This re-expresses, function for function, the scoring parts of ``evaluate-v1.1.py`` and
``evaluate-v2.0.py`` (the scripts published with SQuAD 1.1 and 2.0; the ``evaluate`` hub metrics
wrap the same code). ``qa.task.metrics`` is checked against it by property tests
(``tests/task/test_metrics_properties.py``), so it must stay literal: do not optimise it, and do not
give it the defined results ``qa.task.metrics`` adds where the scripts crash.

The no-answer options are here too: ``--na-prob-file`` (``na_probs``), ``--na-prob-thresh``,
the best-threshold search and the ``--out-image-dir`` precision-recall analysis (its average
precisions, and the curve points and histogram values it would draw, returned instead of drawn).
Left out, because they do not change the numbers: command-line parsing, drawing and printing.
"""

from __future__ import annotations

import collections
import re
import string
from collections import Counter
from typing import Any

# ----------------------------------------------------------------------------- evaluate-v1.1.py


def normalize_answer_v1(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (v1.1)."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text: str) -> str:
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score_v1(prediction: str, ground_truth: str) -> float:
    """Token F1 of one prediction against one gold answer (v1.1)."""
    prediction_tokens = normalize_answer_v1(prediction).split()
    ground_truth_tokens = normalize_answer_v1(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score_v1(prediction: str, ground_truth: str) -> bool:
    """Whether both normalise to the same text (v1.1)."""
    return normalize_answer_v1(prediction) == normalize_answer_v1(ground_truth)


def metric_max_over_ground_truths(metric_fn: Any, prediction: str,
                                  ground_truths: list[str]) -> Any:
    """The best score over the gold answers (v1.1)."""
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def evaluate_v1(dataset: list[dict], predictions: dict[str, str]) -> dict[str, float]:
    """``evaluate-v1.1.py``'s ``evaluate``: an unanswered question scores 0."""
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue  # the script prints "Unanswered question ... will receive score 0."
                ground_truths = list(map(lambda x: x["text"], qa["answers"]))
                prediction = predictions[qa["id"]]
                exact_match += metric_max_over_ground_truths(
                    exact_match_score_v1, prediction, ground_truths)
                f1 += metric_max_over_ground_truths(f1_score_v1, prediction, ground_truths)
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {"exact_match": exact_match, "f1": f1}


# ----------------------------------------------------------------------------- evaluate-v2.0.py


def make_qid_to_has_ans(dataset: list[dict]) -> dict[str, bool]:
    """Question id -> whether its raw answer list is non-empty."""
    qid_to_has_ans = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid_to_has_ans[qa["id"]] = bool(qa["answers"])
    return qid_to_has_ans


def normalize_answer_v2(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (v2.0)."""

    def remove_articles(text: str) -> str:
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text: str) -> str:
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def get_tokens(s: str) -> list[str]:
    """Normalised tokens; none for an empty string."""
    if not s:
        return []
    return normalize_answer_v2(s).split()


def compute_exact(a_gold: str, a_pred: str) -> int:
    """1 when both normalise to the same text (v2.0)."""
    return int(normalize_answer_v2(a_gold) == normalize_answer_v2(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Token F1; when either side has no tokens, 1 if both have none, else 0 (v2.0)."""
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def get_raw_scores(dataset: list[dict], preds: dict[str, str]) -> tuple[dict, dict]:
    """Per question id: the best exact and F1 over its usable gold answers."""
    exact_scores = {}
    f1_scores = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                gold_answers = [a["text"] for a in qa["answers"] if normalize_answer_v2(a["text"])]
                if not gold_answers:
                    # For unanswerable questions, only correct answer is empty string
                    gold_answers = [""]
                if qid not in preds:
                    continue  # the script prints "Missing prediction for ..."
                a_pred = preds[qid]
                # Take max over all gold answers
                exact_scores[qid] = max(compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qid] = max(compute_f1(a, a_pred) for a in gold_answers)
    return exact_scores, f1_scores


def apply_no_ans_threshold(scores: dict, na_probs: dict, qid_to_has_ans: dict,
                           na_prob_thresh: float) -> dict:
    """Scores with predictions above the no-answer probability threshold replaced."""
    new_scores = {}
    for qid, s in scores.items():
        pred_na = na_probs[qid] > na_prob_thresh
        if pred_na:
            new_scores[qid] = float(not qid_to_has_ans[qid])
        else:
            new_scores[qid] = s
    return new_scores


def make_eval_dict(exact_scores: dict, f1_scores: dict,
                   qid_list: list[str] | None = None) -> collections.OrderedDict:
    """Percentages over all scored ids, or over ``qid_list``."""
    if not qid_list:
        total = len(exact_scores)
        return collections.OrderedDict([
            ("exact", 100.0 * sum(exact_scores.values()) / total),
            ("f1", 100.0 * sum(f1_scores.values()) / total),
            ("total", total),
        ])
    total = len(qid_list)
    return collections.OrderedDict([
        ("exact", 100.0 * sum(exact_scores[k] for k in qid_list) / total),
        ("f1", 100.0 * sum(f1_scores[k] for k in qid_list) / total),
        ("total", total),
    ])


def merge_eval(main_eval: dict, new_eval: dict, prefix: str) -> None:
    """Add ``new_eval``'s entries to ``main_eval`` as ``prefix_key``."""
    for k in new_eval:
        main_eval[f"{prefix}_{k}"] = new_eval[k]


def make_precision_recall_eval(scores: dict, na_probs: dict, num_true_pos: int,
                               qid_to_has_ans: dict) -> tuple[dict, list, list]:
    """Average precision (percent) of the curve over rising no-answer probability, and the
    curve's points (the script plots them with ``plot_pr_curve``)."""
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    true_pos = 0.0
    cur_p = 1.0
    cur_r = 0.0
    precisions = [1.0]
    recalls = [0.0]
    avg_prec = 0.0
    for i, qid in enumerate(qid_list):
        if qid_to_has_ans[qid]:
            true_pos += scores[qid]
        cur_p = true_pos / float(i + 1)
        cur_r = true_pos / float(num_true_pos)
        if i == len(qid_list) - 1 or na_probs[qid] != na_probs[qid_list[i + 1]]:
            # a threshold can be put after this point
            avg_prec += cur_p * (cur_r - recalls[-1])
            precisions.append(cur_p)
            recalls.append(cur_r)
    return {"ap": 100.0 * avg_prec}, precisions, recalls


def run_precision_recall_analysis(main_eval: dict, exact_raw: dict, f1_raw: dict,
                                  na_probs: dict, qid_to_has_ans: dict) -> dict:
    """The exact, F1 and oracle curves; their average precisions merged as ``pr_*_ap``."""
    num_true_pos = sum(1 for v in qid_to_has_ans.values() if v)
    if num_true_pos == 0:
        return {}
    pr_exact, p_exact, r_exact = make_precision_recall_eval(
        exact_raw, na_probs, num_true_pos, qid_to_has_ans)
    pr_f1, p_f1, r_f1 = make_precision_recall_eval(f1_raw, na_probs, num_true_pos,
                                                   qid_to_has_ans)
    oracle_scores = {k: float(v) for k, v in qid_to_has_ans.items()}
    pr_oracle, p_oracle, r_oracle = make_precision_recall_eval(
        oracle_scores, na_probs, num_true_pos, qid_to_has_ans)
    merge_eval(main_eval, pr_exact, "pr_exact")
    merge_eval(main_eval, pr_f1, "pr_f1")
    merge_eval(main_eval, pr_oracle, "pr_oracle")
    return {"exact": (p_exact, r_exact), "f1": (p_f1, r_f1), "oracle": (p_oracle, r_oracle)}


def histogram_values(na_probs: dict, qid_list: list[str]) -> list | None:
    """What ``histogram_na_prob`` draws (nothing for no questions)."""
    if not qid_list:
        return None
    return [na_probs[k] for k in qid_list]


def find_best_thresh(preds: dict, scores: dict, na_probs: dict,
                     qid_to_has_ans: dict) -> tuple[float, Any]:
    """The best total score over thresholds, starting from "no answer" for every question."""
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    qid_list = sorted(na_probs, key=lambda k: na_probs[k])
    for qid in qid_list:
        if qid not in scores:
            continue
        # answerable: its score; unanswerable: -1 if given an answer, else 0
        diff = scores[qid] if qid_to_has_ans[qid] else -1 if preds[qid] else 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def find_all_best_thresh(main_eval: dict, preds: dict, exact_raw: dict, f1_raw: dict,
                         na_probs: dict, qid_to_has_ans: dict) -> None:
    """Add ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``."""
    best_exact, exact_thresh = find_best_thresh(preds, exact_raw, na_probs, qid_to_has_ans)
    best_f1, f1_thresh = find_best_thresh(preds, f1_raw, na_probs, qid_to_has_ans)
    main_eval["best_exact"] = best_exact
    main_eval["best_exact_thresh"] = exact_thresh
    main_eval["best_f1"] = best_f1
    main_eval["best_f1_thresh"] = f1_thresh


def evaluate_v2(dataset: list[dict], preds: dict[str, str], na_probs: dict | None = None,
                na_prob_thresh: float = 1.0, image_analysis: bool = False,
                drawn: dict | None = None) -> dict[str, Any]:
    """``evaluate-v2.0.py``'s ``main``: ``na_probs`` is ``--na-prob-file``'s content,
    ``image_analysis`` is ``--out-image-dir``; ``drawn`` (a dict) receives the curves
    (``"exact"``, ``"f1"``, ``"oracle"``: (precisions, recalls)) and histogram values
    (``"hasAns"``, ``"noAns"``) the script would draw."""
    na_prob_file = na_probs is not None
    if not na_prob_file:
        na_probs = {k: 0.0 for k in preds}
    qid_to_has_ans = make_qid_to_has_ans(dataset)  # maps qid to True/False
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw, f1_raw = get_raw_scores(dataset, preds)
    exact_thresh = apply_no_ans_threshold(exact_raw, na_probs, qid_to_has_ans, na_prob_thresh)
    f1_thresh = apply_no_ans_threshold(f1_raw, na_probs, qid_to_has_ans, na_prob_thresh)
    out_eval = make_eval_dict(exact_thresh, f1_thresh)
    if has_ans_qids:
        has_ans_eval = make_eval_dict(exact_thresh, f1_thresh, qid_list=has_ans_qids)
        merge_eval(out_eval, has_ans_eval, "HasAns")
    if no_ans_qids:
        no_ans_eval = make_eval_dict(exact_thresh, f1_thresh, qid_list=no_ans_qids)
        merge_eval(out_eval, no_ans_eval, "NoAns")
    if na_prob_file:
        find_all_best_thresh(out_eval, preds, exact_raw, f1_raw, na_probs, qid_to_has_ans)
    if na_prob_file and image_analysis:
        curves = run_precision_recall_analysis(out_eval, exact_raw, f1_raw, na_probs,
                                               qid_to_has_ans)
        hists = {"hasAns": histogram_values(na_probs, has_ans_qids),
                 "noAns": histogram_values(na_probs, no_ans_qids)}
        if drawn is not None:
            drawn.update(curves)
            drawn.update({k: v for k, v in hists.items() if v is not None})
    return dict(out_eval)
