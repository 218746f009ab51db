"""Turn SQuAD-style examples into model features: overflowing windows, labels, context offsets.

Both functions take a batch as a dict of columns (what ``datasets.Dataset.map(batched=True)``
passes) and return a dict of columns with one row per feature: the rows the seed notebook
produces (``benchmarks/oracles/seed.py``), with two differences:

* an answer that starts on a window's last context token is labelled with that token (the seed
  walks past the context and labels a ``[SEP]`` or padding token);
* ``offset_mapping`` rows are ``int64`` arrays of shape ``[max_length, 2]`` holding ``-1`` for
  tokens outside the context (the seed holds ``None`` there), so postprocessing can stack them.

Why it is fast: the tokenizer encodes each member of a pair on its own before cutting,
decorating and padding the pair. So each distinct context (SQuAD has ~5 questions per paragraph)
and each question is encoded once, and numpy assembles the windows by the tokenizer's stride rule
and special-token template. A few examples per batch are checked against the tokenizer's own pair
encoding; on any difference the batch is encoded pair by pair instead. That fallback keeps the
output right but loses the speed, so it is counted (``FastPathStats``, passed as ``stats=``), logged
at debug level, and reported in each RunResult (``timings.features.fast_path``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from qa.errors import QABenchError
from qa.task.chunks import chunks

logger = logging.getLogger(__name__)

# Offsets of tokens outside the context (question, special tokens, padding).
NOT_CONTEXT = -1
# Cells (windows x context tokens) per labelling chunk, bounding its temporary arrays.
_CHUNK_CELLS = 1 << 22


@dataclass
class FastPathStats:
    """How many batches were assembled from pieces, and how many fell back to pair by pair.

    ``reasons`` counts the fallbacks by cause: ``"template"`` (the tokenizer's pair layout could
    not be read), ``"special tokens"`` (the layout has another number of special tokens than the
    tokenizer adds) or ``"disagreement"`` (the spot check found a window that differs).
    """

    batches: int = 0
    fallbacks: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def record(self, fallback: str | None) -> None:
        """Count one encoded batch; ``fallback`` is the reason it was encoded pair by pair."""
        self.batches += 1
        if fallback is not None:
            self.fallbacks += 1
            self.reasons[fallback] = self.reasons.get(fallback, 0) + 1

    def merge(self, other: FastPathStats) -> None:
        """Add the counts of ``other``."""
        self.batches += other.batches
        self.fallbacks += other.fallbacks
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as recorded in a RunResult."""
        return {"batches": self.batches, "fallbacks": self.fallbacks,
                "reasons": dict(sorted(self.reasons.items()))}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FastPathStats:
        """Inverse of ``to_dict``."""
        return cls(int(raw["batches"]), int(raw["fallbacks"]), dict(raw.get("reasons", {})))


@dataclass
class _Windows:
    """One batch's features as arrays, and where their context tokens come from."""

    ids: np.ndarray  # [n_features, max_length] input ids
    types: np.ndarray  # token type ids
    mask: np.ndarray  # attention mask
    sample: np.ndarray  # feature -> example index
    ctx_first: np.ndarray  # feature -> position of its first context token
    ctx_count: np.ndarray  # feature -> number of context tokens
    seg_index: np.ndarray  # feature -> row of its first context token in seg_offsets
    seg_offsets: np.ndarray  # [n, 2] character offsets of context tokens


def prepare_train_features(examples: Mapping[str, Any], tokenizer: Any, max_length: int = 384,
                           doc_stride: int = 128, *,
                           stats: FastPathStats | None = None) -> dict[str, list]:
    """Tokenize a batch into overflowing windows labelled with the answer's token positions.

    Args:
        examples: columns ``question``, ``context`` and ``answers`` (``{"text": [...],
            "answer_start": [...]}``; empty lists for unanswerable questions).
        tokenizer: a fast (Rust-backed) transformers tokenizer.
        max_length: tokens per window.
        doc_stride: tokens shared by consecutive windows of one context.
        stats: where to count fast-path batches and fallbacks (see ``FastPathStats``).

    Returns:
        ``input_ids``, ``token_type_ids`` / ``attention_mask`` (when the tokenizer's model takes
        them), ``start_positions`` and ``end_positions``: the CLS position when the first answer
        is not wholly inside the window, as in the seed.

    Raises:
        QABenchError: not a fast tokenizer, no padding or CLS token, or ``doc_stride`` too large.
    """
    windows, out = _windows(examples, tokenizer, max_length, doc_stride, stats)
    is_cls = windows.ids == tokenizer.cls_token_id
    if not is_cls.any(axis=1).all():
        raise QABenchError("the tokenizer puts no CLS token in its windows; "
                           "unanswerable windows need one for their label")
    # The seed's label for "not in this window": the first CLS position.
    cls_index = is_cls.argmax(axis=1)
    start_char, end_char, known = _first_answers(examples["answers"])
    starts, ends = _label(windows, start_char, end_char, known, cls_index)
    out["start_positions"] = starts.tolist()
    out["end_positions"] = ends.tolist()
    return out


def prepare_validation_features(examples: Mapping[str, Any], tokenizer: Any,
                                max_length: int = 384, doc_stride: int = 128, *,
                                stats: FastPathStats | None = None) -> dict[str, list]:
    """Tokenize a batch into overflowing windows that remember their example and context offsets.

    Args:
        examples: columns ``id``, ``question`` and ``context``.
        tokenizer: a fast (Rust-backed) transformers tokenizer.
        max_length: tokens per window.
        doc_stride: tokens shared by consecutive windows of one context.
        stats: where to count fast-path batches and fallbacks (see ``FastPathStats``).

    Returns:
        ``input_ids``, ``token_type_ids`` / ``attention_mask`` (when the tokenizer's model takes
        them), ``offset_mapping`` (per feature an ``int64`` array ``[max_length, 2]``, ``-1`` off
        the context) and ``example_id``.

    Raises:
        QABenchError: not a fast tokenizer, no padding token, or ``doc_stride`` too large.
    """
    windows, out = _windows(examples, tokenizer, max_length, doc_stride, stats)
    out["offset_mapping"] = list(_offset_rows(windows))
    ids = list(examples["id"])
    out["example_id"] = [ids[i] for i in windows.sample.tolist()]
    return out


def _windows(examples: Mapping[str, Any], tokenizer: Any, max_length: int, doc_stride: int,
             stats: FastPathStats | None = None) -> tuple[_Windows, dict[str, list]]:
    """All windows of a batch, plus the model-input columns the seed's tokenizer call returns."""
    if not getattr(tokenizer, "is_fast", False):
        raise QABenchError("preprocessing needs a fast tokenizer (offsets and sequence ids)")
    if tokenizer.pad_token is None:
        raise QABenchError("the tokenizer has no padding token; windows are padded to max_length")
    # Leading whitespace only costs window room (the seed strips it too).
    questions = [q.lstrip() for q in examples["question"]]
    contexts = list(examples["context"])
    pad_on_right = tokenizer.padding_side == "right"
    if not questions:
        empty = np.zeros((0, max_length), dtype=np.int64)
        none = np.zeros(0, dtype=np.int64)
        windows = _Windows(empty, empty, empty, none, none, none, none, np.zeros((0, 2), np.int64))
        return windows, _columns(windows, tokenizer)
    backend = tokenizer.backend_tokenizer
    unique: dict[str, int] = {}
    context_index = np.array([unique.setdefault(c, len(unique)) for c in contexts], dtype=np.int64)
    with _restored(backend):
        # Single texts are encoded whole: no truncation, no padding.
        _set(backend, None, None)
        if hasattr(backend, "encode_special_tokens"):  # tokenizers >= 0.15.1
            backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
        special = backend.num_special_tokens_to_add(True)
        q_enc = backend.encode_batch(questions, add_special_tokens=False)
        c_enc = backend.encode_batch(list(unique), add_special_tokens=False)
        c_len = np.array([len(e.ids) for e in c_enc], dtype=np.int64)
        _fit_questions(backend, questions, q_enc, c_len[context_index], max_length, doc_stride,
                       special)
        template = _template(backend, questions, contexts, q_enc, c_enc, context_index)
        # Pairs from here on, with the settings transformers gives the seed's tokenizer call.
        _set(backend, {"max_length": max_length, "stride": doc_stride, "direction":
                       tokenizer.truncation_side,
                       "strategy": "only_second" if pad_on_right else "only_first"},
             {"length": max_length, "direction": tokenizer.padding_side,
              "pad_id": tokenizer.pad_token_id, "pad_token": tokenizer.pad_token,
              "pad_type_id": tokenizer.pad_token_type_id})
        windows, fallback = None, "template"
        if template is not None:
            windows = _assemble(q_enc, c_enc, context_index, template, tokenizer, max_length,
                                doc_stride, special)
            fallback = "special tokens"
        if windows is not None:
            fallback = None if _agrees(backend, windows, questions, contexts,
                                       pad_on_right) else "disagreement"
        if fallback is not None:
            logger.debug("fast path rejected (%s): encoding this batch of %d pair by pair",
                         fallback, len(questions))
            windows = _encoded(backend, questions, contexts, pad_on_right)
    if stats is not None:
        stats.record(fallback)
    return windows, _columns(windows, tokenizer)


def _columns(windows: _Windows, tokenizer: Any) -> dict[str, list]:
    """The model inputs transformers returns for this tokenizer, as lists."""
    out: dict[str, list] = {"input_ids": windows.ids.tolist()}
    names = tokenizer.model_input_names
    if "token_type_ids" in names:
        out["token_type_ids"] = windows.types.tolist()
    if "attention_mask" in names:
        out["attention_mask"] = windows.mask.tolist()
    return out


@contextmanager
def _restored(backend: Any) -> Iterator[None]:
    """Put the backend's truncation, padding and special-token settings back on exit."""
    saved = backend.truncation, backend.padding, getattr(backend, "encode_special_tokens", None)
    try:
        yield
    finally:
        _set(backend, saved[0], saved[1])
        if saved[2] is not None:
            backend.encode_special_tokens = saved[2]


def _set(backend: Any, truncation: dict | None, padding: dict | None) -> None:
    """Apply truncation and padding settings in the form the backend reports them (None: off)."""
    if truncation is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(**truncation)
    if padding is None:
        backend.no_padding()
    else:
        backend.enable_padding(**padding)


def _fit_questions(backend: Any, questions: list[str], q_enc: list[Any], c_len: np.ndarray,
                   max_length: int, doc_stride: int, special: int) -> None:
    """Shorten (in place) the questions that would make the tokenizer fail, warning once.

    When the pair overflows, the tokenizer needs ``doc_stride`` < the room the question leaves
    for the context, or it fails for the whole batch (an error, or a Rust panic).
    """
    q_len = np.array([len(e.ids) for e in q_enc], dtype=np.int64)
    failing = np.flatnonzero((q_len + c_len + special > max_length)
                             & (max_length - special - q_len <= doc_stride))
    if not len(failing):
        return
    budget = max_length - special - doc_stride - 1
    if budget < 1:
        raise QABenchError(f"doc_stride={doc_stride} leaves no room for a question in "
                           f"max_length={max_length} ({special} special tokens)")
    for i in failing.tolist():
        questions[i] = _cut(backend, questions[i], q_enc[i], budget)
        q_enc[i] = backend.encode(questions[i], add_special_tokens=False)
    logger.warning("%d question(s) left too little room for the context at max_length=%d, "
                   "doc_stride=%d: truncated to %d tokens", len(failing), max_length, doc_stride,
                   budget)


def _cut(backend: Any, text: str, encoding: Any, budget: int) -> str:
    """``text`` cut after as many of its tokens as fit in ``budget`` once re-encoded.

    Cutting inside a word can re-tokenize into more pieces, hence the check and the retreat.
    """
    for keep in range(budget, 0, -1):
        # Character end of the last token kept.
        cut = text[: encoding.offsets[keep - 1][1]]
        if len(backend.encode(cut, add_special_tokens=False).ids) <= budget:
            return cut
    return ""


def _flat(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated ``lists`` with each one's first row and length."""
    length = np.array([len(x) for x in lists], dtype=np.int64)
    flat = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(length.sum()))
    return flat, np.cumsum(length) - length, length


def _template(backend: Any, questions: list[str], contexts: list[str], q_enc: list[Any],
              c_enc: list[Any], context_index: np.ndarray) -> list[tuple[int, int, int]] | None:
    """The tokenizer's pair layout: ``(kind, id, type_id)`` items where kind -1 is a special
    token and kind 0 / 1 the first / second sequence. None when it cannot be read."""
    probe = next((i for i, e in enumerate(q_enc)
                  if e.ids and c_enc[context_index[i]].ids), None)
    if probe is None:
        return None
    encoding = backend.encode(questions[probe], contexts[probe])
    layout: list[tuple[int, int, int]] = []
    for seq, token, type_id in zip(encoding.sequence_ids, encoding.ids, encoding.type_ids,
                                   strict=True):
        if seq is None:
            layout.append((-1, token, type_id))
        elif not layout or layout[-1][:2] != (seq, -1):
            layout.append((seq, -1, type_id))
        elif layout[-1][2] != type_id:
            return None  # one sequence with mixed type ids: not a template we can replay
    kinds = [kind for kind, _, _ in layout if kind >= 0]
    return layout if sorted(kinds) == [0, 1] else None


def _assemble(q_enc: list[Any], c_enc: list[Any], u: np.ndarray,
              template: list[tuple[int, int, int]], tokenizer: Any, max_length: int,
              doc_stride: int, special: int) -> _Windows | None:
    """Cut, decorate and pad every window with numpy, following ``Encoding::truncate``.

    ``q_enc`` holds each example's question encoded alone, ``c_enc`` each distinct context, and
    ``u`` maps examples to distinct contexts.
    """
    pad_on_right = tokenizer.padding_side == "right"
    if sum(kind < 0 for kind, _, _ in template) != special:
        return None
    q_flat, q_base, q_len = _flat([e.ids for e in q_enc])
    c_flat, c_base, c_len = _flat([e.ids for e in c_enc])
    c_base, c_len = c_base[u], c_len[u]
    room = max_length - special - q_len  # context tokens per window
    over = q_len + c_len + special > max_length
    step = np.where(over, room - doc_stride, 1)
    count = np.where(over, 1 + (c_len - room + step - 1) // step, 1)
    sample = np.repeat(np.arange(len(q_len)), count)
    rank = np.arange(len(sample)) - np.repeat(np.cumsum(count) - count, count)
    room, step, c_len_f = room[sample], step[sample], c_len[sample]
    if tokenizer.truncation_side == "left":
        # Windows are cut from the context's end backwards.
        stop = c_len_f - rank * step
        start = np.maximum(0, stop - room)
    else:
        start = rank * step
        stop = np.minimum(start + room, c_len_f)
    n_ctx = stop - start
    n_feat, question_seq = len(sample), 0 if pad_on_right else 1
    length = special + q_len[sample] + n_ctx
    ids = np.full((n_feat, max_length), tokenizer.pad_token_id, dtype=np.int64)
    types = np.full((n_feat, max_length), tokenizer.pad_token_type_id, dtype=np.int64)
    # Left padding shifts each window's tokens right by its padding length.
    pos = np.zeros(n_feat, dtype=np.int64) if pad_on_right else max_length - length
    mask = ((np.arange(max_length) >= pos[:, None])
            & (np.arange(max_length) < (pos + length)[:, None])).astype(np.int64)
    rows = np.arange(n_feat)
    ctx_first = pos
    for kind, token, type_id in template:
        if kind < 0:
            ids[rows, pos], types[rows, pos] = token, type_id
            pos = pos + 1
            continue
        if kind == question_seq:
            source, begin, size = q_flat, q_base[sample], q_len[sample]
        else:
            source, begin, size = c_flat, c_base[sample] + start, n_ctx
            ctx_first = pos
        _scatter(ids, types, source, type_id, pos, begin, size)
        pos = pos + size
    offsets = _to_array([e.offsets for e in c_enc], len(c_flat))
    ctx_first = np.where(n_ctx > 0, ctx_first, 0)  # as _encoded reports windows without context
    return _Windows(ids, types, mask, sample, ctx_first, n_ctx, c_base[sample] + start, offsets)


def _scatter(ids: np.ndarray, types: np.ndarray, source: np.ndarray, type_id: int,
             dest: np.ndarray, begin: np.ndarray, size: np.ndarray) -> None:
    """Copy ``source[begin[f]: begin[f] + size[f]]`` to row f of ``ids`` from column dest[f]."""
    total = int(size.sum())
    if not total:
        return
    rows = np.repeat(np.arange(len(size)), size)
    within = np.arange(total) - np.repeat(np.cumsum(size) - size, size)
    cols = np.repeat(dest, size) + within
    ids[rows, cols] = source[np.repeat(begin, size) + within]
    types[rows, cols] = type_id


def _agrees(backend: Any, windows: _Windows, questions: list[str], contexts: list[str],
            pad_on_right: bool) -> bool:
    """Whether the tokenizer's own pair encoding of a few examples gives the same windows: the
    first example, the one with the most windows, the longest question, the least context."""
    per_example = np.bincount(windows.sample, minlength=len(questions))
    chosen = sorted({0, int(per_example.argmax()), int(np.argmax([len(q) for q in questions])),
                     int(windows.sample[np.argmin(windows.ctx_count)])})
    check = _encoded(backend, [questions[i] for i in chosen], [contexts[i] for i in chosen],
                     pad_on_right)
    rows = np.flatnonzero(np.isin(windows.sample, chosen))
    if not np.array_equal(np.array(chosen)[check.sample], windows.sample[rows]):
        return False
    mine = _Windows(windows.ids[rows], windows.types[rows], windows.mask[rows],
                    windows.sample[rows], windows.ctx_first[rows], windows.ctx_count[rows],
                    windows.seg_index[rows], windows.seg_offsets)
    same = [np.array_equal(getattr(check, k), getattr(mine, k))
            for k in ("ids", "types", "mask", "ctx_first", "ctx_count")]
    return all(same) and np.array_equal(_offset_rows(check), _offset_rows(mine))


def _encoded(backend: Any, questions: list[str], contexts: list[str],
             pad_on_right: bool) -> _Windows:
    """The windows as the tokenizer encodes whole pairs (the fallback; slower)."""
    pairs = zip(questions, contexts, strict=True) if pad_on_right else zip(
        contexts, questions, strict=True)
    try:
        encoded = backend.encode_batch(list(pairs))
    except Exception as exc:
        raise QABenchError(f"the tokenizer failed on this batch: {exc}") from exc
    # Each example's first window, then its overflowing ones (transformers' order).
    windows = [(i, w) for i, e in enumerate(encoded) for w in (e, *e.overflowing)]
    context_seq = 1 if pad_on_right else 0
    first, count, pieces = [], [], []
    for _, w in windows:
        sequence_ids = w.sequence_ids
        n = sequence_ids.count(context_seq)
        p = sequence_ids.index(context_seq) if n else 0
        first.append(p)
        count.append(n)
        pieces.append(w.offsets[p: p + n])
    count_arr = np.array(count, dtype=np.int64)
    return _Windows(
        np.array([w.ids for _, w in windows], dtype=np.int64),
        np.array([w.type_ids for _, w in windows], dtype=np.int64),
        np.array([w.attention_mask for _, w in windows], dtype=np.int64),
        np.array([i for i, _ in windows], dtype=np.int64), np.array(first, dtype=np.int64),
        count_arr, np.cumsum(count_arr) - count_arr, _to_array(pieces, int(count_arr.sum())))


def _to_array(pieces: list[list[tuple[int, int]]], n: int) -> np.ndarray:
    """Stack lists of ``(start, end)`` pairs into an ``[n, 2]`` int64 array (fast path)."""
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(pieces)), dtype=np.int64,
                       count=2 * n)
    return flat.reshape(n, 2)


def _first_answers(answers: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Character start, end and presence of each example's first answer (the one labelled)."""
    firsts = [(a["answer_start"][0], len(a["text"][0])) if len(a["answer_start"]) else (0, -1)
              for a in answers]
    start, length = np.array(firsts, dtype=np.int64).reshape(-1, 2).T
    return start, start + length, length >= 0


def _label(windows: _Windows, start_char: np.ndarray, end_char: np.ndarray, known: np.ndarray,
           cls_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token positions of each window's answer, or its CLS position when not wholly inside."""
    starts, ends = cls_index.copy(), cls_index.copy()
    offsets = windows.seg_offsets
    candidates = np.flatnonzero(known[windows.sample] & (windows.ctx_count > 0))
    if not len(candidates):
        return starts, ends
    width = int(windows.ctx_count[candidates].max())
    per_chunk = max(1, _CHUNK_CELLS // width)
    for piece in chunks(len(candidates), per_chunk):
        feats = candidates[piece]
        n = windows.ctx_count[feats]
        base = windows.seg_index[feats]
        first = windows.ctx_first[feats]
        s_char = start_char[windows.sample[feats]]
        e_char = end_char[windows.sample[feats]]
        # The answer must lie between the window's first and last context characters.
        inside = (offsets[base, 0] <= s_char) & (offsets[base + n - 1, 1] >= e_char)
        j = np.arange(width)
        in_context = j < n[:, None]
        rows = base[:, None] + np.minimum(j, n[:, None] - 1)
        # Start: the seed walks right while tokens start at or before the answer's first
        # character and steps back one; here the walk stops at the last context token.
        passed = (offsets[rows, 0] > s_char[:, None]) & in_context
        stop = np.where(passed.any(axis=1), passed.argmax(axis=1), n)
        # End: walk left while tokens end at or after the answer's end, then step forward one.
        short = (offsets[rows, 1] < e_char[:, None]) & in_context
        back = np.where(short.any(axis=1), width - 1 - short[:, ::-1].argmax(axis=1), -1)
        starts[feats[inside]] = (first + stop - 1)[inside]
        ends[feats[inside]] = (first + back + 1)[inside]
    return starts, ends


def _offset_rows(windows: _Windows) -> np.ndarray:
    """``[n_features, max_length, 2]`` offsets: context tokens' character spans, -1 elsewhere."""
    n_feat, width = windows.ids.shape
    rows = np.full((n_feat, width, 2), NOT_CONTEXT, dtype=np.int64)
    if not n_feat or not len(windows.seg_offsets):
        return rows
    # Position p of window f holds context token p - first[f] when that is in [0, count[f]).
    rel = np.arange(width) - windows.ctx_first[:, None]
    inside = (rel >= 0) & (rel < windows.ctx_count[:, None])
    source = windows.seg_index[:, None] + np.clip(rel, 0, None)
    rows[inside] = windows.seg_offsets[source[inside]]
    return rows
