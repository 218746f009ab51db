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
"""

from __future__ import annotations

import os
from typing import Any

from qa.errors import QABenchError

ENV = "QA_BENCH_INJECT_FAULT"
FAULTS = ("label_shift", "lowercase_mismatch", "sample_mapping", "end_offsets", "float64")


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
    """``lowercase_mismatch``: a tokenizer built for ``lowercase`` text normalises the other way."""
    if active() != "lowercase_mismatch":
        return tok
    from tokenizers import normalizers

    tok.backend_tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=not lowercase)
    return tok


def model(net: Any) -> Any:
    """``float64``: every parameter and buffer cast to float64."""
    return net.double() if active() == "float64" else net


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
