"""Turn start/end logits of overflowing windows into one answer text per example, with numpy.

Same answers as the seed notebook's loop (``benchmarks/oracles/seed.py``): per feature the
``n_best_size`` highest start and end logits, spans inside the context with
``0 < end - start + 1 <= max_answer_length``, score ``start_logit + end_logit``, best over all of
an example's features. For SQuAD v2 the null score is the CLS start + end logit, the *minimum* over
an example's features (the seed's loop keeps the maximum despite calling it ``min_null_score``),
and the answer is ``""`` when ``null - best > null_score_diff_threshold`` (as in transformers'
``utils_qa.py``; the seed has no threshold and answers ``""`` unless ``best > null``).

Ties (only exactly equal logits or scores can make results differ from the seed):

* equal logits are ranked by token index, lowest first; at the ``n_best_size`` cut a tie is
  resolved by ``np.argpartition`` (the seed: by ``np.argsort``'s unspecified order, reversed);
* equal span scores go to the earlier feature, then to the higher-ranked start, then to the
  higher-ranked end: the order in which the seed's loop meets them (its sort is stable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from qa.errors import QABenchError
from qa.task.chunks import chunks

# Features per chunk of the [features, n_best, n_best] candidate grid (bounds its memory).
_CHUNK = 1024


def postprocess_qa_predictions(
    examples: Any,
    features: Any,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2: bool = False,
    null_score_diff_threshold: float = 0.0,
    *,
    cls_token_id: int | None = None,
) -> dict[str, str]:
    """Pick each example's answer span from the logits of its features.

    Args:
        examples: ``datasets.Dataset`` or dict of columns with ``id`` and ``context``.
        features: ``datasets.Dataset`` or dict of columns with ``example_id`` and
            ``offset_mapping`` (rows of ``[start, end]``; ``[-1, -1]``, ``None`` or ``[]`` off
            the context), as ``qa.task.preprocessing.prepare_validation_features`` makes them.
        start_logits: ``[n_features, seq_len]``.
        end_logits: ``[n_features, seq_len]``.
        n_best_size: start and end positions considered per feature.
        max_answer_length: longest answer, in tokens.
        version_2: allow the null answer (SQuAD v2).
        null_score_diff_threshold: answer ``""`` when ``null - best`` exceeds it.
        cls_token_id: with ``version_2``, find each feature's CLS token in its ``input_ids`` (as
            the seed does); by default the null score is read at position 0.

    Returns:
        Example id -> answer text, in example order.

    Raises:
        QABenchError: missing columns, mismatched shapes, or an ``example_id`` that is not
            among the examples.
    """
    return _postprocess(examples, features, start_logits, end_logits, n_best_size,
                        max_answer_length, version_2, null_score_diff_threshold,
                        cls_token_id)[0]


def postprocess_with_null_odds(
    examples: Any,
    features: Any,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
    *,
    cls_token_id: int | None = None,
) -> tuple[dict[str, str], dict[str, float]]:
    """SQuAD v2 answers, and each example's null odds: its no-answer probability file.

    The null odds of an example are ``null score - best span score`` (the quantity the answer
    rule compares with ``null_score_diff_threshold``): higher means more likely unanswerable,
    as ``evaluate-v2.0.py --na-prob-file`` expects (BERT's and transformers' SQuAD scripts
    write the same as ``null_odds.json``). They are ``inf`` where no span is allowed. So:

    * an answer is ``""`` where its odds exceed ``null_score_diff_threshold`` (compared in
      the logits' dtype), so scoring with ``na_prob_thresh=null_score_diff_threshold``
      changes nothing (but where every gold answer normalises to nothing);
    * ``qa.task.metrics.compute_squad(..., na_probs=odds)`` adds ``best_f1`` and
      ``best_f1_thresh``: the threshold that would have scored best (a threshold only turns
      answers into ``""``; an answer already ``""`` stays so, as with the official tooling).

    Arguments and errors as :func:`postprocess_qa_predictions` with ``version_2=True``.

    Returns:
        (example id -> answer text, example id -> null odds), both in example order.
    """
    return _postprocess(examples, features, start_logits, end_logits, n_best_size,
                        max_answer_length, True, null_score_diff_threshold, cls_token_id)


def _postprocess(examples: Any, features: Any, start_logits: np.ndarray,
                 end_logits: np.ndarray, n_best_size: int, max_answer_length: int,
                 version_2: bool, null_score_diff_threshold: float,
                 cls_token_id: int | None) -> tuple[dict[str, str], dict[str, float]]:
    """Answers and, with ``version_2``, every example's null odds (else none)."""
    start_logits, end_logits = _logits(start_logits), _logits(end_logits)
    examples, features = _readable(examples), _readable(features)
    example_ids = _column(examples, "id")
    index = {eid: i for i, eid in enumerate(example_ids)}
    try:
        owner = np.array([index[eid] for eid in _column(features, "example_id")], dtype=np.int64)
    except KeyError as exc:
        raise QABenchError(f"feature example_id {exc.args[0]!r} is not an example id") from None
    n_feat = len(owner)
    if start_logits.shape != end_logits.shape or len(start_logits) != n_feat:
        raise QABenchError(f"logits of shapes {start_logits.shape} and {end_logits.shape} do not "
                           f"match {n_feat} features")
    offsets = _offset_grid(_column(features, "offset_mapping", as_list=False))
    if len(offsets) != n_feat:
        raise QABenchError(f"offset_mapping has {len(offsets)} rows for {n_feat} features")
    seq_len = start_logits.shape[1]
    # Positions past a feature's offsets are skipped by the seed (index >= len(offset_mapping)).
    in_context = np.zeros((n_feat, seq_len), dtype=bool)
    width = min(seq_len, offsets.shape[1])
    in_context[:, :width] = offsets[:, :width, 0] >= 0
    score, best_start, best_end = _best_spans(start_logits, end_logits, in_context, n_best_size,
                                              max_answer_length)
    # Per example, the feature with the highest best score; equal scores: the first feature.
    order = np.lexsort((np.arange(n_feat), -score, owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    winner = np.full(len(example_ids), -1, dtype=np.int64)
    winner[owner[order][first]] = order[first]
    found = winner >= 0
    found[found] &= np.isfinite(score[winner[found]])
    odds = np.empty(0)
    if version_2:  # null odds: in float64, so the no-span examples' inf fits any logits dtype
        null = _null_scores(features, start_logits, end_logits, owner, len(example_ids),
                            cls_token_id)
        # Compared in the logits' dtype, as the seed's scalar arithmetic is.
        odds = np.full(len(example_ids), np.inf)
        odds[found] = null[found] - score[winner[found]]
        found[found] &= ~(null[found] - score[winner[found]] > null_score_diff_threshold)
    contexts = _column(examples, "context") if found.any() else []
    answers = {eid: "" for eid in example_ids}
    chosen = np.flatnonzero(found)
    f = winner[chosen]
    # Character span from the start token's start to the end token's end.
    spans = zip(chosen.tolist(), offsets[f, best_start[f], 0].tolist(),
                offsets[f, best_end[f], 1].tolist(), strict=True)
    for i, begin, stop in spans:
        answers[example_ids[i]] = contexts[i][begin:stop]
    return answers, dict(zip(example_ids, odds.tolist(), strict=True)) if version_2 else {}


def _logits(values: Any) -> np.ndarray:
    """Logits as a 2-D float array (accepts lists and CPU tensors)."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise QABenchError(f"logits must be [n_features, seq_len], got shape {array.shape}")
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)


def _readable(table: Any) -> Any:
    """A ``datasets.Dataset`` viewed in Arrow format (columns read without Python objects)."""
    if hasattr(table, "with_format") and hasattr(table, "column_names"):
        return table.with_format("arrow")
    return table


def _column(table: Any, name: str, as_list: bool = True) -> Any:
    """A column of an Arrow-format ``datasets.Dataset`` or of a dict of columns."""
    names = getattr(table, "column_names", None)
    if names is not None:
        if name not in names:
            raise QABenchError(f"dataset lacks column {name!r} (has {names})")
        return table[name].to_pylist() if as_list else table[name]
    if not isinstance(table, Mapping) or name not in table:
        raise QABenchError(f"expected a column {name!r}")
    return list(table[name]) if as_list else table[name]


def _offset_grid(column: Any) -> np.ndarray:
    """``[n_features, width, 2]`` character offsets with -1 off the context.

    Accepts an Arrow list column, a ``[n, w, 2]`` array, a list of ``[w, 2]`` arrays (what
    preprocessing returns), or nested lists with ``None`` / ``[]`` off the context (the seed's).
    Shorter rows are padded with -1.
    """
    if _is_arrow(column):
        pairs, lengths = _arrow_pairs(column)
    elif isinstance(column, np.ndarray) and column.ndim == 3:
        return column.astype(np.int64, copy=False)
    else:
        pairs, lengths = _python_pairs(list(column))
    if pairs.ndim == 3:
        return pairs
    # Ragged rows: place each feature's pairs at the start of its row.
    grid = np.full((len(lengths), int(lengths.max(initial=0)), 2), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    grid[rows, np.arange(len(pairs)) - np.repeat(np.cumsum(lengths) - lengths, lengths)] = pairs
    return grid


def _is_arrow(column: Any) -> bool:
    """Whether ``column`` is a pyarrow array (what a Dataset column read through Arrow is)."""
    return type(column).__module__.startswith("pyarrow")


def _arrow_pairs(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of an Arrow ``list<list<int>>`` column: ``[n, w, 2]`` if rows are even, else flat."""
    import pyarrow.compute as pc

    outer = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    lengths = pc.fill_null(pc.list_value_length(outer), 0).to_numpy().astype(np.int64)
    inner = outer.flatten()  # one entry per token; null rows contribute nothing
    values = inner.flatten().to_numpy().astype(np.int64, copy=False)
    if inner.null_count == 0 and len(values) == 2 * len(inner):
        pairs = values.reshape(-1, 2)  # our form: every token has a pair
    else:
        # The seed's form: None (or []) for tokens off the context.
        sizes = pc.fill_null(pc.list_value_length(inner), 0).to_numpy()
        if np.any((sizes != 0) & (sizes != 2)):
            raise QABenchError("offset_mapping entries must be [start, end] pairs")
        pairs = np.full((len(inner), 2), -1, dtype=np.int64)
        pairs[sizes == 2] = values.reshape(-1, 2)
    if len(lengths) and (lengths == lengths[0]).all():
        return pairs.reshape(len(lengths), int(lengths[0]), 2), lengths
    return pairs, lengths


def _python_pairs(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of in-memory rows: stacked at C speed when regular, else token by token."""
    try:
        stacked = np.stack(rows) if rows and isinstance(rows[0], np.ndarray) else np.array(rows)
        if stacked.ndim == 3 and stacked.shape[2] == 2 and stacked.dtype != object:
            return stacked.astype(np.int64, copy=False), np.full(len(rows), stacked.shape[1])
    except (ValueError, TypeError):
        pass  # ragged rows, or None among the pairs
    # None and [] (the seed's marks for non-context tokens) become [-1, -1].
    flat = [(-1, -1) if o is None or len(o) == 0 else (o[0], o[1]) for row in rows for o in row]
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    pairs = np.array(flat, dtype=np.int64).reshape(-1, 2)
    if len(lengths) and (lengths == lengths[0]).all():
        return pairs.reshape(len(rows), int(lengths[0]), 2), lengths
    return pairs, lengths


def _top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` highest logits, in index order (ties at the cut: lowest)."""
    n_rows, width = logits.shape
    if k >= width:
        return np.broadcast_to(np.arange(width, dtype=np.int32), (n_rows, width))
    # Members are the logits >= the k-th largest; numpy's SIMD value sort beats argpartition.
    kth = np.sort(logits, axis=1)[:, width - k]
    member = logits >= kth[:, None]
    regular = member.sum(axis=1) == k
    if regular.all():
        return (np.flatnonzero(member) % width).astype(np.int32).reshape(n_rows, k)
    top = np.empty((n_rows, k), dtype=np.int32)
    top[regular] = (np.flatnonzero(member[regular]) % width).reshape(-1, k)
    top[~regular] = np.sort(np.argsort(-logits[~regular], axis=1, kind="stable")[:, :k], axis=1)
    return top


def _by_rank(logits: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``top`` reordered highest logit first (equal logits: lower index first), the seed's order."""
    order = np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _best_spans(start_logits: np.ndarray, end_logits: np.ndarray, in_context: np.ndarray,
                n_best_size: int, max_answer_length: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each feature's best span: score (-inf if none is valid), start and end token."""
    n_feat, seq_len = start_logits.shape
    k = max(1, min(n_best_size, seq_len))
    score = np.full(n_feat, -np.inf, dtype=start_logits.dtype)
    best_start = np.zeros(n_feat, dtype=np.int64)
    best_end = np.zeros(n_feat, dtype=np.int64)
    for rows in chunks(n_feat, _CHUNK):
        chunk = (start_logits[rows], end_logits[rows], in_context[rows])
        starts, ends = _top_k(chunk[0], k), _top_k(chunk[1], k)
        found = _grid_best(*chunk, starts, ends, max_answer_length)
        # Equal best scores: redo those rows with candidates in the seed's rank order, where
        # the first maximum is the candidate the seed's loop meets first.
        tied = found[3]
        if tied.any():
            ranked = [part[tied] for part in chunk]
            again = _grid_best(*ranked, _by_rank(ranked[0], starts[tied]),
                               _by_rank(ranked[1], ends[tied]), max_answer_length)
            for part, redo in zip(found[:3], again[:3], strict=True):
                part[tied] = redo
        score[rows], best_start[rows], best_end[rows] = found[:3]
    return score, best_start, best_end


def _grid_best(start_logits: np.ndarray, end_logits: np.ndarray, in_context: np.ndarray,
               starts: np.ndarray, ends: np.ndarray, max_answer_length: int) -> tuple:
    """Best of the [start candidate, end candidate] grid per row: score, start, end, and
    whether another candidate has the same score. Grid order decides between equal scores."""
    start_score = np.take_along_axis(start_logits, starts, axis=1)
    end_score = np.take_along_axis(end_logits, ends, axis=1)
    # Off-context candidates score -inf, so that a pair using one is never picked.
    start_score[~np.take_along_axis(in_context, starts, axis=1)] = -np.inf
    end_score[~np.take_along_axis(in_context, ends, axis=1)] = -np.inf
    grid = start_score[:, :, None] + end_score[:, None, :]
    # end - start must lie in [0, max_answer_length); as unsigned, negatives are huge.
    span = (ends[:, None, :] - starts[:, :, None]).astype(np.uint32)
    np.putmask(grid, span >= max_answer_length, -np.inf)
    grid = grid.reshape(len(grid), -1)
    pick = grid.argmax(axis=1)  # the first of equal maxima
    rows = np.arange(len(grid))
    best = grid[rows, pick]
    tied = np.isfinite(best) & ((grid == best[:, None]).sum(axis=1) > 1)
    k = starts.shape[1]
    return best, starts[rows, pick // k], ends[rows, pick % k], tied


def _null_scores(features: Any, start_logits: np.ndarray, end_logits: np.ndarray,
                 owner: np.ndarray, n_examples: int, cls_token_id: int | None) -> np.ndarray:
    """Each example's null score: min over its features of the CLS start + end logits."""
    cls_index = np.zeros(len(owner), dtype=np.int64)
    if cls_token_id is not None:
        cls_index = _cls_positions(_column(features, "input_ids", as_list=False), cls_token_id)
    rows = np.arange(len(owner))
    per_feature = start_logits[rows, cls_index] + end_logits[rows, cls_index]
    null = np.full(n_examples, np.inf, dtype=per_feature.dtype)
    np.minimum.at(null, owner, per_feature)
    return null


def _cls_positions(input_ids: Any, cls_token_id: int) -> np.ndarray:
    """Each feature's first CLS position (the seed's ``input_ids.index(cls_token_id)``)."""
    if _is_arrow(input_ids):
        import pyarrow.compute as pc

        column = input_ids.combine_chunks() if hasattr(input_ids, "combine_chunks") else input_ids
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths == lengths[0]).all():
            ids = column.flatten().to_numpy().reshape(len(lengths), -1)
        else:
            ids = column.to_pylist()
    else:
        ids = input_ids
    if isinstance(ids, np.ndarray):
        is_cls = ids == cls_token_id
        if is_cls.any(axis=1).all():
            return is_cls.argmax(axis=1)
    else:
        try:
            return np.array([(row if isinstance(row, list) else list(row)).index(cls_token_id)
                             for row in ids], dtype=np.int64)
        except ValueError:
            pass
    raise QABenchError(f"some features have no CLS token (id {cls_token_id})")
