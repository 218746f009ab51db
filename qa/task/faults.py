"""Injected faults: realistic pipeline bugs, switched on only by ``$QA_BENCH_INJECT_FAULT``.

This is test equipment, not a user option: it exists to show that the accuracy gates catch
real bugs (the detection table in ``benchmarks/detection.py``). No config field, CLI option or
profile reaches it, and every result of a run with a fault says so in ``config``-independent
form (``RunResult.environment["injected_fault"]``), so such a result can never pass for a
clean one.

Faults (``QA_BENCH_INJECT_FAULT=name``):

- ``label_shift``: training labels one token to the right (an off-by-one in the character →
  token mapping of the answer span).
- ``lowercase_mismatch``: the tokenizer lower-cases differently from the vocabulary it was
  trained with (the normaliser flipped after training: capitalised words leave the vocabulary).
- ``sample_mapping``: validation features are attributed to examples by feature index instead
  of the tokenizer's overflow-to-sample mapping (every example after the first overflowing
  context is scored against another example's features).
- ``end_offsets``: an answer's text ends where its last token *starts* (the end character taken
  from the start of the offset pair): every answer loses its last token. Evaluation only, so a
  model trained from scratch cannot learn around it.
- ``float64``: the model runs in float64 (a default-dtype slip, e.g. an SDK that changes torch's
  default dtype): about the same answers, much slower training and prediction. It is the bug the
  *timing* gates exist for.
- ``skip_weights``: a pretrained model's weights are not loaded and nothing says so (a renamed
  checkpoint prefix, a loader that falls back to the config): the model fine-tunes from random
  weights. Injected after the loader's own check, so that only the accuracy gate can catch it.
- ``vocab_mismatch``: the tokenizer is not the checkpoint's (another vocabulary of the same
  size, same special tokens): the words are split the same way but their ids point at other
  words' embeddings.
"""

from __future__ import annotations

import os
from typing import Any

from qa.errors import QABenchError

ENV = "QA_BENCH_INJECT_FAULT"
FAULTS = ("label_shift", "lowercase_mismatch", "sample_mapping", "end_offsets", "float64",
          "skip_weights", "vocab_mismatch")
#: The seed of vocab_mismatch's permutation: the same wrong vocabulary in every run.
VOCAB_SEED = 25


def active() -> str | None:
    """The injected fault's name, or None (the normal case).

    Raises:
        QABenchError: an unknown fault name (a typo must not silently test nothing).
    """
    name = os.environ.get(ENV, "").strip()
    if not name:
        return None
    if name not in FAULTS:
        raise QABenchError(f"${ENV}={name!r}: unknown fault (choose from {', '.join(FAULTS)})")
    return name


def tokenizer(tok: Any, lowercase: bool) -> Any:
    """``lowercase_mismatch``: a tokenizer built for ``lowercase`` text normalises the other way;
    ``vocab_mismatch``: the ids of every non-special token permuted among themselves."""
    if active() == "vocab_mismatch":
        return _permuted_vocabulary(tok)
    if active() != "lowercase_mismatch":
        return tok
    from tokenizers import normalizers

    tok.backend_tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=not lowercase)
    return tok


def model(net: Any) -> Any:
    """``float64``: every parameter and buffer cast to float64."""
    return net.double() if active() == "float64" else net


def pretrained_weights(net: Any, seed: int) -> Any:
    """``skip_weights``: the loaded model replaced by the same architecture, randomly
    initialised (seeded), as a loader that skipped the weights file would leave it."""
    if active() != "skip_weights":
        return net
    import torch
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(seed)
    return AutoModelForQuestionAnswering.from_config(net.config)


def _permuted_vocabulary(tok: Any) -> Any:
    """A tokenizer like ``tok`` whose non-special token ids are permuted (seeded)."""
    import json

    import numpy as np
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    state = json.loads(tok.backend_tokenizer.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    special = set(tok.all_special_tokens)
    movable = sorted(i for t, i in vocab.items() if t not in special)
    shuffled = np.random.default_rng(VOCAB_SEED).permutation(movable).tolist()
    moved = dict(zip(movable, shuffled, strict=True))
    state["model"]["vocab"] = {t: (i if t in special else moved[i]) for t, i in vocab.items()}
    backend = Tokenizer.from_str(json.dumps(state))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_input_names=list(tok.model_input_names),
        padding_side=tok.padding_side, **{k: v for k, v in tok.special_tokens_map.items()
                                          if isinstance(v, str)})


def train_features(features: Any) -> Any:
    """``label_shift``: answer spans one token to the right ([CLS] labels stay)."""
    if active() != "label_shift":
        return features

    def shift(batch: dict[str, list[int]]) -> dict[str, list[int]]:
        return {name: [p + 1 if p > 0 else p for p in batch[name]]
                for name in ("start_positions", "end_positions")}

    return features.map(shift, batched=True, desc="inject label_shift")


def validation_features(features: Any, examples: Any) -> Any:
    """``sample_mapping``: feature i belongs to example i (the classic overflow bug);
    ``end_offsets``: every context token's character span ends where it starts."""
    if active() == "end_offsets":
        def starts_only(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            return {"offset_mapping": [[pair if pair is None else [pair[0], pair[0]]
                                        for pair in row] for row in batch["offset_mapping"]]}

        return features.map(starts_only, batched=True, desc="inject end_offsets")
    if active() != "sample_mapping":
        return features
    ids = list(examples["id"])

    def by_index(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        return {"example_id": [ids[min(i, len(ids) - 1)] for i in indices]}

    return features.map(by_index, batched=True, with_indices=True, desc="inject sample_mapping")
