"""Pre- and postprocessing throughput against the seed notebook's algorithms (the reference).

Each case first checks that our outputs equal the seed's, then times both in the same test: our
rounds through ``benchmark.pedantic`` (one warm-up round, then ``rounds``), and one seed round just
before each of ours (pytest-benchmark's ``setup``, which it does not time), so that machine noise
hits both alike and the ratio comes from one run. ``benchmark.extra_info`` holds the seed's and
our median / min / max seconds, the speed-up (ratio of medians), the spread of the per-round
ratios, and the floor the speed-up is gated on.

Cases:

* ``synthetic`` (always runs): 300 generated paragraphs, 4 questions each, a quarter of them long
  enough to overflow a 384-token window; a WordPiece tokenizer trained on them in a temporary
  folder. No files outside the repository are needed.
* ``squad-v1.1``, ``squad-v2.0``: the official dev files with bert-base-uncased's vocab. They run
  when a SQuAD folder is given (``--squad-dir`` or ``$QA_BENCH_SQUAD_DIR``, holding
  ``dev-v1.1.json`` / ``dev-v2.0.json``) and ``$QA_BENCH_VOCAB`` names a WordPiece ``vocab.txt``
  (bert-base-uncased's); otherwise they are skipped with the reason. About 2.5 minutes each.

What is compared:

* train and validation preprocessing: the feature checks of ``benchmarks/validate_squad.py``
  (model inputs and ``example_id`` equal, offsets equal with the seed's ``None`` read as
  ``[-1, -1]``, start/end labels equal apart from the seed's documented last-context-token quirk);
* postprocessing, as the notebook runs it: examples and features are ``datasets.Dataset``s that
  the seed's loop reads row by row; the logits are model-like (seeded, see
  ``validate_squad.model_like_logits``). For v2 the seed runs with the corrected null rule
  (minimum null score, threshold 0.0; same loop, same cost) so that the answers must be equal.

Run (``--benchmark-disable`` runs each stage once: outputs are still compared, speed not gated)::

    pytest benchmarks/test_pipeline_speed.py --benchmark-disable-gc
    QA_BENCH_SQUAD_DIR=/path/to/squad QA_BENCH_VOCAB=/path/to/bert-base-uncased/vocab.txt \\
        pytest benchmarks/test_pipeline_speed.py --benchmark-disable-gc
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.oracles import seed
from benchmarks.validate_squad import check_features, load_examples, model_like_logits
from qa.config.schema import squad_dir_from_env
from qa.task import postprocessing, preprocessing
from qa.task.models import tokenizer_from_vocab, train_wordpiece
from qa.task.synthetic import generate_squad

MAX_LENGTH, DOC_STRIDE = 384, 128
# A claim about the suite itself, run when asked: `pytest benchmarks -m perf` or by its file.
pytestmark = pytest.mark.perf
VOCAB_ENV = "QA_BENCH_VOCAB"

# Speed-up floors (seed median / our median). Real SQuAD dev v1.1: the gates this project
# promises (measured 2.4-3.6x per preprocessing stage, 31-43x postprocessing on 2 loaded cores);
# dev v2.0 is held to the same. Gating train and validation each at 1.5x implies the promised
# 1.5x for train + validation together.
# Synthetic: measured on a 2-core machine shared with other jobs (load 3-4) at 1.8-2.7x for
# train and validation preprocessing (single rounds down to 1.4x) and 28-31x for postprocessing
# (single rounds down to 22x). Synthetic paragraphs are shorter than SQuAD's and have 4
# questions each, so the per-context savings are smaller. The floors sit well under the worst
# medians seen, so a busy neighbour does not fail them, while a fast path that silently fell
# back to pair-by-pair encoding (~1x) or to Python loops over candidates (~1-3x) does.
REAL_FLOORS = {"train": 1.5, "validation": 1.5, "postprocessing": 20.0}
FLOORS = {
    "synthetic": {"train": 1.2, "validation": 1.2, "postprocessing": 10.0},
    "squad-v1.1": REAL_FLOORS,
    "squad-v2.0": REAL_FLOORS,
}
# Timed rounds after one warm-up round. Synthetic rounds take well under a second.
ROUNDS = {"synthetic": 7, "squad-v1.1": 5, "squad-v2.0": 5}
REAL_FILES = {"squad-v1.1": "dev-v1.1.json", "squad-v2.0": "dev-v2.0.json"}


@dataclass
class Case:
    """One data set with its tokenizer and the seed's and our features (compared once)."""

    name: str
    examples: dict[str, list]
    tokenizer: Any
    version_2: bool
    report: dict[str, Any]  # validate_squad.check_features' result


def _synthetic(folder: Path) -> tuple[dict[str, list], Any]:
    path = folder / "synthetic.json"
    path.write_text(json.dumps(generate_squad(300, seed=1234)), encoding="utf-8")
    examples = load_examples(path)
    texts = list(dict.fromkeys(examples["context"])) + examples["question"]
    return examples, train_wordpiece(texts, vocab_size=4000, cache_dir=folder)


def _real(config: pytest.Config, name: str) -> tuple[dict[str, list], Any]:
    squad_dir = squad_dir_from_env(config.getoption("--squad-dir"))
    vocab = os.environ.get(VOCAB_ENV)
    if not squad_dir:
        pytest.skip(f"{name}: no SQuAD folder (--squad-dir or $QA_BENCH_SQUAD_DIR)")
    path = Path(squad_dir) / REAL_FILES[name]
    if not path.is_file():
        pytest.skip(f"{name}: {path} not found")
    if not vocab or not Path(vocab).is_file():
        pytest.skip(f"{name}: no vocab file (set ${VOCAB_ENV} to bert-base-uncased's vocab.txt)")
    return load_examples(path), tokenizer_from_vocab(vocab)


@pytest.fixture(scope="module", params=["synthetic", "squad-v1.1", "squad-v2.0"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    """A data set, tokenized once by the seed and by us and checked with validate_squad's checks."""
    name = request.param
    if name == "synthetic":
        examples, tokenizer = _synthetic(tmp_path_factory.mktemp("synthetic"))
    else:
        examples, tokenizer = _real(request.config, name)
    tokenizer.padding_side = "right"
    report = check_features(examples, tokenizer, MAX_LENGTH, DOC_STRIDE)
    return Case(name, examples, tokenizer, name.endswith("v2.0"), report)


def _seed_round(fn: Callable[[], Any], disable_gc: bool) -> tuple[float, Any]:
    """One timed call of the seed under the same gc rule as pytest-benchmark applies to ours."""
    gc.collect()
    enabled = gc.isenabled()
    if disable_gc:
        gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result
    finally:
        if enabled:
            gc.enable()


def race(
    benchmark: Any,
    request: pytest.FixtureRequest,
    case: Case,
    stage: str,
    seed_fn: Callable[[], Any],
    ours_fn: Callable[[], Any],
) -> tuple[Any, Any]:
    """Time ours (pedantic) and the seed (interleaved), record both and gate the speed-up.

    Returns:
        The last (seed, ours) outputs, for the caller to compare.
    """
    disable_gc = bool(request.config.getoption("benchmark_disable_gc"))
    seed_times: list[float] = []
    last: dict[str, Any] = {}

    def seed_then_ours() -> None:
        # pytest-benchmark calls this before every round, warm-up included, and does not time it.
        elapsed, last["seed"] = _seed_round(seed_fn, disable_gc)
        seed_times.append(elapsed)

    warmup, rounds = 1, ROUNDS[case.name]
    ours = benchmark.pedantic(
        ours_fn, setup=seed_then_ours, teardown=gc.collect, rounds=rounds, warmup_rounds=warmup
    )
    if benchmark.disabled:  # --benchmark-disable: ran once; compare outputs only
        return last["seed"], ours
    seed_times = seed_times[warmup:]
    our_times = list(benchmark.stats.stats.data)
    speedup = statistics.median(seed_times) / statistics.median(our_times)
    per_round = [s / o for s, o in zip(seed_times, our_times, strict=True)]
    floor = FLOORS[case.name][stage]
    benchmark.extra_info.update(
        {
            "case": case.name,
            "stage": stage,
            "examples": len(case.examples["id"]),
            "features": case.report["features"],
            "rounds": rounds,
            "warmup_rounds": warmup,
            "seed_median_s": statistics.median(seed_times),
            "seed_min_s": min(seed_times),
            "seed_max_s": max(seed_times),
            "ours_median_s": statistics.median(our_times),
            "ours_min_s": min(our_times),
            "ours_max_s": max(our_times),
            "speedup": speedup,
            "speedup_round_min": min(per_round),
            "speedup_round_max": max(per_round),
            "floor": floor,
        }
    )
    print(
        f"\n{case.name} {stage}: seed {statistics.median(seed_times):.3f} s "
        f"({min(seed_times):.3f}-{max(seed_times):.3f}), ours {statistics.median(our_times):.3f}"
        f" s ({min(our_times):.3f}-{max(our_times):.3f}), speed-up {speedup:.1f}x "
        f"(rounds {min(per_round):.1f}-{max(per_round):.1f}x), floor {floor}x"
    )
    assert speedup >= floor, (
        f"{case.name} {stage}: {speedup:.2f}x the seed, below the "
        f"{floor}x floor (seed {seed_times}, ours {our_times})"
    )
    return last["seed"], ours


def test_train_features_speed(benchmark: Any, request: pytest.FixtureRequest, case: Case) -> None:
    report = case.report
    assert report["features"] > len(case.examples["id"]), "no context overflowed a window"
    assert report["train_inputs_equal"], "model inputs differ from the seed's"
    assert report["label_diffs_other"] == 0, (
        f"{report['label_diffs_other']} start/end labels differ from the seed's"
    )
    race(
        benchmark,
        request,
        case,
        "train",
        lambda: seed.prepare_train_features(case.examples, case.tokenizer, MAX_LENGTH, DOC_STRIDE),
        lambda: preprocessing.prepare_train_features(
            case.examples, case.tokenizer, MAX_LENGTH, DOC_STRIDE
        ),
    )


def test_validation_features_speed(
    benchmark: Any, request: pytest.FixtureRequest, case: Case
) -> None:
    assert case.report["validation_inputs_equal"], "model inputs or example ids differ"
    assert case.report["offsets_equal"], "context offsets differ from the seed's"
    race(
        benchmark,
        request,
        case,
        "validation",
        lambda: seed.prepare_validation_features(
            case.examples, case.tokenizer, MAX_LENGTH, DOC_STRIDE
        ),
        lambda: preprocessing.prepare_validation_features(
            case.examples, case.tokenizer, MAX_LENGTH, DOC_STRIDE
        ),
    )


def test_postprocessing_speed(benchmark: Any, request: pytest.FixtureRequest, case: Case) -> None:
    import datasets

    ours_val, seed_val = case.report["_val"], case.report["_seed_val"]
    start, end = model_like_logits(
        case.report["_train"], ours_val["offset_mapping"], np.random.default_rng(0)
    )
    example_ds = datasets.Dataset.from_dict(case.examples)
    seed_ds = datasets.Dataset.from_dict({k: seed_val[k] for k in seed_val})
    ours_ds = datasets.Dataset.from_dict(ours_val)
    # v2: the seed with the corrected null rule, which ours implements (see the module docstring).
    null = {"null_score": "min", "null_score_diff_threshold": 0.0} if case.version_2 else {}
    theirs, mine = race(
        benchmark,
        request,
        case,
        "postprocessing",
        lambda: seed.postprocess_qa_predictions(
            example_ds, seed_ds, (start, end), case.tokenizer, squad_v2=case.version_2, **null
        ),
        lambda: postprocessing.postprocess_qa_predictions(
            example_ds,
            ours_ds,
            start,
            end,
            version_2=case.version_2,
            cls_token_id=case.tokenizer.cls_token_id,
        ),
    )
    assert list(mine) == list(theirs), "answers are not keyed by the examples in order"
    differ = [k for k in theirs if theirs[k] != mine[k]]
    assert not differ, f"{len(differ)} of {len(theirs)} answers differ, e.g. {differ[:3]}"
    answered = sum(bool(v) for v in mine.values())
    assert answered > 0.5 * len(mine), "too few answers for the comparison to mean much"
    if case.version_2:
        assert answered < len(mine), "no null answers: the v2 path was not exercised"
