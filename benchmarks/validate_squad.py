"""Check qa.task.preprocessing and qa.task.postprocessing against the seed notebook on SQuAD; time
both.

Usage (from the repository root):

    python benchmarks/validate_squad.py --squad-dir DIR --vocab VOCAB_TXT

    DIR holds the official dev-v1.1.json / dev-v2.0.json; VOCAB_TXT is bert-base-uncased's
    vocab.txt (neither ships with qa-bench).

For each dev file found (v1.1, v2.0) it checks that our features equal the seed's (offsets
compared with the seed's ``None`` read as ``[-1, -1]``; labels equal except answers starting on a
window's last context token, which are counted), that our answers equal the seed's for random and
for model-like logits, and times train preprocessing, validation preprocessing and
postprocessing (median of ``--rounds`` rounds after a warm-up round, with the spread).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:
    from benchmarks.oracles import seed
except ModuleNotFoundError:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.oracles import seed

from qa.task import postprocessing, preprocessing
from qa.task.models import tokenizer_from_vocab

DEV_FILES = ("dev-v1.1.json", "dev-v2.0.json")


def load_examples(path: Path) -> dict[str, list]:
    """An official-layout SQuAD file as the hub's columns (id, title, context, question, ...)."""
    columns: dict[str, list] = {k: [] for k in ("id", "title", "context", "question", "answers")}
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                columns["id"].append(qa["id"])
                columns["title"].append(article["title"])
                columns["context"].append(paragraph["context"])
                columns["question"].append(qa["question"])
                columns["answers"].append({
                    "text": [a["text"] for a in qa["answers"]],
                    "answer_start": [a["answer_start"] for a in qa["answers"]],
                })
    return columns


def check_features(examples: dict, tokenizer: Any, max_length: int, stride: int) -> dict:
    """Compare our train and validation features with the seed's; classify label differences."""
    seed_train = seed.prepare_train_features(examples, tokenizer, max_length, stride)
    ours_train = preprocessing.prepare_train_features(examples, tokenizer, max_length, stride)
    inputs = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in ours_train]
    report: dict[str, Any] = {
        "features": len(ours_train["input_ids"]),
        "train_inputs_equal": all(seed_train[k] == ours_train[k] for k in inputs)
        and list(seed_train.keys()) == list(ours_train.keys()),
    }
    seed_val = seed.prepare_validation_features(examples, tokenizer, max_length, stride)
    ours_val = preprocessing.prepare_validation_features(examples, tokenizer, max_length, stride)
    report["validation_inputs_equal"] = (
        all(seed_val[k] == ours_val[k] for k in [*inputs, "example_id"])
        and list(seed_val.keys()) == list(ours_val.keys()))
    report["offsets_equal"] = all(
        [(-1, -1) if o is None else tuple(o) for o in theirs] == list(map(tuple, mine.tolist()))
        for theirs, mine in zip(seed_val["offset_mapping"], ours_val["offset_mapping"],
                                strict=True))
    # Label differences: expected only where our start is the window's last context token and
    # the seed's walk ran past it.
    context = 1 if tokenizer.padding_side == "right" else 0
    last_token, other = 0, 0
    for f, (s_start, s_end, o_start, o_end) in enumerate(zip(
            seed_train["start_positions"], seed_train["end_positions"],
            ours_train["start_positions"], ours_train["end_positions"], strict=True)):
        if (s_start, s_end) == (o_start, o_end):
            continue
        sequence_ids = seed_train.sequence_ids(f)
        last = max(i for i, s in enumerate(sequence_ids) if s == context)
        if s_end == o_end and o_start == last and s_start > last:
            last_token += 1
        else:
            other += 1
    report["label_diffs_last_context_token"] = last_token
    report["label_diffs_other"] = other
    return report | {"_val": ours_val, "_seed_val": seed_val, "_train": ours_train}


def model_like_logits(train: dict, offsets: list, rng: np.random.Generator) -> tuple:
    """Logits a fine-tuned model might give: context tokens favoured, the gold span (or CLS when
    the window has no answer) peaked, a few decoys, noise; float32 like a model's output."""
    starts = np.array(train["start_positions"])
    ends = np.array(train["end_positions"])
    grid = np.stack(offsets)
    n_feat, width = grid.shape[:2]
    rows = np.arange(n_feat)
    logits = []
    for gold in (starts, ends):
        x = rng.normal(0.0, 1.0, (n_feat, width))
        x[grid[:, :, 0] >= 0] += 2.0
        x[rows, gold] += rng.normal(5.0, 1.5, n_feat)
        for _ in range(3):  # decoys anywhere, so that answers are sometimes wrong or null
            x[rows, rng.integers(0, width, n_feat)] += rng.normal(4.0, 1.5, n_feat)
        logits.append(x.astype(np.float32))
    return tuple(logits)


def check_answers(examples: dict, report: dict, tokenizer: Any, version_2: bool,
                  rng: np.random.Generator) -> dict:
    """Our answers against the seed loop's, for random and model-like logits."""
    ours_val, seed_val = report["_val"], report["_seed_val"]
    seed_rows = seed._rows({k: seed_val[k] for k in seed_val})
    n_feat, width = len(ours_val["input_ids"]), len(ours_val["input_ids"][0])
    kinds = {
        "random": tuple(rng.normal(size=(2, n_feat, width)).astype(np.float32)),
        "model-like": model_like_logits(report["_train"], ours_val["offset_mapping"], rng),
    }
    out = {}
    for kind, (start, end) in kinds.items():
        settings = [(None, "max", None)] if not version_2 else [
            (0.0, "min", 0.0), (1.5, "min", 1.5), (-1.5, "min", -1.5), (0.0, "max", None)]
        for threshold, null, seed_threshold in settings:
            theirs = seed.postprocess_qa_predictions(
                examples, seed_rows, (start, end), tokenizer, squad_v2=version_2,
                null_score=null, null_score_diff_threshold=seed_threshold)
            mine = postprocessing.postprocess_qa_predictions(
                examples, ours_val, start, end, version_2=version_2,
                null_score_diff_threshold=threshold or 0.0, cls_token_id=tokenizer.cls_token_id)
            label = kind if not version_2 else (
                f"{kind} thr={threshold}" + (" vs pure seed (max null, no threshold)"
                                             if seed_threshold is None else ""))
            out[label] = (sum(theirs[k] != mine[k] for k in theirs), len(theirs),
                          sum(v == "" for v in mine.values()))
    return out


def seconds(fn: Callable[[], Any]) -> float:
    """Wall time of one call (the result is freed outside the timing)."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def time_all(examples: dict, report: dict, tokenizer: Any, max_length: int, stride: int,
             rounds: int) -> list[tuple[str, list[float], list[float]]]:
    """(stage, seed times, our times); seed and ours alternate each round to share the noise."""
    import datasets

    ours_val, seed_val = report["_val"], report["_seed_val"]
    start, end = model_like_logits(report["_train"], ours_val["offset_mapping"],
                                   np.random.default_rng(0))
    seed_rows = seed._rows({k: seed_val[k] for k in seed_val})
    example_ds = datasets.Dataset.from_dict(examples)
    seed_ds = datasets.Dataset.from_dict({k: seed_val[k] for k in seed_val})
    ours_ds = datasets.Dataset.from_dict(ours_val)
    stages = {
        "train preprocessing": (
            lambda: seed.prepare_train_features(examples, tokenizer, max_length, stride),
            lambda: preprocessing.prepare_train_features(examples, tokenizer, max_length, stride)),
        "validation preprocessing": (
            lambda: seed.prepare_validation_features(examples, tokenizer, max_length, stride),
            lambda: preprocessing.prepare_validation_features(examples, tokenizer, max_length,
                                                              stride)),
        "postprocessing, Dataset inputs": (
            lambda: seed.postprocess_qa_predictions(example_ds, seed_ds, (start, end), tokenizer),
            lambda: postprocessing.postprocess_qa_predictions(example_ds, ours_ds, start, end)),
        "postprocessing, in-memory inputs": (
            lambda: seed.postprocess_qa_predictions(examples, seed_rows, (start, end), tokenizer),
            lambda: postprocessing.postprocess_qa_predictions(examples, ours_val, start, end)),
    }
    results = []
    for stage, (theirs, mine) in stages.items():
        theirs(), mine()  # warm-up
        seed_times, our_times = [], []
        for _ in range(rounds):
            seed_times.append(seconds(theirs))
            our_times.append(seconds(mine))
        results.append((stage, seed_times, our_times))
    return results


def summary(times: list[float]) -> str:
    """``median (min-max)`` in seconds."""
    return f"{statistics.median(times):7.3f} s ({min(times):.3f}-{max(times):.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad-dir", type=Path, required=True,
                        help="folder with dev-v1.1.json and/or dev-v2.0.json")
    parser.add_argument("--vocab", type=Path, required=True, help="bert-base-uncased vocab.txt")
    parser.add_argument("--max-length", type=int, default=384, help="tokens per window")
    parser.add_argument("--doc-stride", type=int, default=128, help="overlap between windows")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up")
    parser.add_argument("--padding-sides", default="right,left",
                        help="padding sides whose features are compared (timing uses the first)")
    parser.add_argument("--no-timing", action="store_true", help="check equality only")
    args = parser.parse_args(argv)
    tokenizer = tokenizer_from_vocab(args.vocab)
    rng = np.random.default_rng(1234)
    for name in DEV_FILES:
        path = args.squad_dir / name
        if not path.exists():
            continue
        examples = load_examples(path)
        version_2 = "v2" in name
        print(f"\n== {name}: {len(examples['id'])} examples, max_length={args.max_length}, "
              f"doc_stride={args.doc_stride}")
        for side in args.padding_sides.split(","):
            tokenizer.padding_side = side
            report = check_features(examples, tokenizer, args.max_length, args.doc_stride)
            public = {k: v for k, v in report.items() if not k.startswith("_")}
            print(f"features, padding {side}: {public}")
            for label, (diff, total, empty) in check_answers(
                    examples, report, tokenizer, version_2, rng).items():
                print(f"  answers [{label}]: {diff} of {total} differ ({empty} empty)")
        tokenizer.padding_side = args.padding_sides.split(",")[0]
        if args.no_timing:
            continue
        report = check_features(examples, tokenizer, args.max_length, args.doc_stride)
        print(f"\n{'stage':34s} {'seed: median (min-max)':>28s} {'ours: median (min-max)':>28s}"
              f" {'speed-up':>9s}")
        totals = [0.0, 0.0]
        for stage, theirs, mine in time_all(examples, report, tokenizer, args.max_length,
                                            args.doc_stride, args.rounds):
            ratio = statistics.median(theirs) / statistics.median(mine)
            if "preprocessing" in stage:
                totals[0] += statistics.median(theirs)
                totals[1] += statistics.median(mine)
            print(f"{stage:34s} {summary(theirs):>28s} {summary(mine):>28s} {ratio:8.1f}x")
        print(f"{'train + validation preprocessing':34s} {totals[0]:9.3f} s {'':18s}"
              f"{totals[1]:9.3f} s {'':18s}{totals[0] / totals[1]:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
