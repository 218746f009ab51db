"""Property: our answers are the seed loop's, for any logits, settings and input form.

Random batches (``squad_strategies``) go through both preprocessing paths; random logits,
``n_best_size``, ``max_answer_length``, SQuAD v2 on or off and null thresholds go through
``qa.task.postprocessing`` and the seed's loop (with its corrected v2 rule: minimum null score,
threshold). The logits of a batch are a permutation of integers, so no two logits tie (where
the documented tie rules differ from the seed's) while span scores, null scores and thresholds
often do (where they must not differ). Features come as our arrays, the seed's lists with
``None`` or ``[]`` off the context, a 3-D ndarray, or Arrow-backed ``datasets.Dataset``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from helpers.squad_strategies import SHAPES, bert_tokenizer, squad_batches
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.oracles import seed
from qa.task.postprocessing import postprocess_qa_predictions
from qa.task.preprocessing import prepare_validation_features

FORMS = ("ours", "ours-arrow", "ndarray", "seed-none", "seed-empty", "seed-arrow")


def features_in(form: str, ours: dict, theirs: Any) -> Any:
    """The same features in one of the accepted forms."""
    import datasets

    seed_form = {key: theirs[key] for key in theirs}
    if form == "ours":
        return ours
    if form == "ours-arrow":
        return datasets.Dataset.from_dict(ours)
    if form == "ndarray":
        return {**ours, "offset_mapping": np.stack(ours["offset_mapping"])}
    if form == "seed-empty":
        return {**seed_form, "offset_mapping": [[[] if o is None else o for o in row]
                                                for row in seed_form["offset_mapping"]]}
    if form == "seed-arrow":
        return datasets.Dataset.from_dict(seed_form)
    return seed_form


def integer_logits(n_feat: int, width: int, seed_: int, null_bias: int,
                   cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits: distinct integers, the CLS ones raised by ``null_bias + 0.5`` (so
    null answers win often, and stay distinct from every other logit)."""
    values = np.random.default_rng(seed_).permutation(2 * n_feat * width).astype(np.float64)
    start, end = values.reshape(2, n_feat, width) - n_feat * width
    rows = np.arange(n_feat)
    start[rows, cls] += null_bias + 0.5
    end[rows, cls] += null_bias + 0.5
    return start, end


@given(data=st.data(), shape=st.sampled_from(SHAPES[1:]), side=st.sampled_from(("right", "left")),
       version_2=st.booleans(), n_best=st.sampled_from((1, 2, 3, 20)),
       max_answer=st.sampled_from((1, 2, 4, 30)), form=st.sampled_from(FORMS),
       arrow_examples=st.booleans())
def test_answers_equal_the_seed_loop(data: st.DataObject, shape: tuple[int, int], side: str,
                                     version_2: bool, n_best: int, max_answer: int, form: str,
                                     arrow_examples: bool) -> None:
    import datasets

    tokenizer = bert_tokenizer(side)
    batch = data.draw(squad_batches(tokenizer, *shape))
    ours = prepare_validation_features(batch, tokenizer, *shape)
    theirs = seed.prepare_validation_features(batch, tokenizer, *shape)
    n_feat = len(ours["input_ids"])
    cls = np.array([ids.index(tokenizer.cls_token_id) for ids in ours["input_ids"]])
    width = shape[0]
    start, end = integer_logits(n_feat, width, data.draw(st.integers(0, 2**32 - 1)),
                                data.draw(st.integers(-2 * width, 2 * width)), cls)
    threshold = data.draw(st.one_of(st.integers(-6, 6).map(float),
                                    st.floats(-20, 20, allow_nan=False)))
    expected = dict(seed.postprocess_qa_predictions(
        batch, seed._rows({k: theirs[k] for k in theirs}), (start, end), tokenizer, n_best,
        max_answer, version_2,
        null_score="min", null_score_diff_threshold=threshold if version_2 else None))
    examples = datasets.Dataset.from_dict(batch) if arrow_examples else batch
    got = postprocess_qa_predictions(examples, features_in(form, ours, theirs), start, end,
                                     n_best, max_answer, version_2, threshold,
                                     cls_token_id=tokenizer.cls_token_id)
    assert list(got) == list(expected)
    assert got == expected


@given(data=st.data(), n_best=st.sampled_from((1, 20)), max_answer=st.sampled_from((1, 30)))
def test_examples_without_features_answer_nothing(data: st.DataObject, n_best: int,
                                                  max_answer: int) -> None:
    """An example whose features were all dropped gets "" (the seed's v1 loop too); the others
    keep the answers they have with every feature present."""
    tokenizer = bert_tokenizer()
    batch = data.draw(squad_batches(tokenizer, 40, 12, max_examples=4))
    dropped = data.draw(st.sampled_from(batch["id"]))
    ours = prepare_validation_features(batch, tokenizer, 40, 12)
    cls = np.zeros(len(ours["input_ids"]), dtype=np.int64)
    start, end = integer_logits(len(cls), 40, data.draw(st.integers(0, 2**32 - 1)), 0, cls)
    keep = [f for f, eid in enumerate(ours["example_id"]) if eid != dropped]
    kept = {key: [ours[key][f] for f in keep] for key in ours}
    for version_2 in (False, True):
        full = postprocess_qa_predictions(batch, ours, start, end, n_best, max_answer, version_2)
        got = postprocess_qa_predictions(batch, kept, start[keep], end[keep], n_best,
                                         max_answer, version_2)
        assert got == {**full, dropped: ""}
