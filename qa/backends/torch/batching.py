"""Batch order and padding for the torch backend.

Features come out of preprocessing padded to ``max_length``. With dynamic padding each batch
is cut down to its longest real sequence; with length grouping, features of similar length are
batched together so that the cut removes most of the padding. The order is a pure function of
the seed, so every replica of a distributed run computes the same global order and takes its
own slice of each global batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from qa.backends.torch.lazy import lazy_torch

torch = lazy_torch()  # imported on first use (qa.backends.torch.lazy)

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
LABELS = ("start_positions", "end_positions")


@dataclass(frozen=True)
class BatchPlan:
    """How features are grouped into batches."""

    batch_size: int
    shuffle: bool
    group_by_length: bool
    seed: int
    drop_last: bool = False


def global_order(lengths: np.ndarray, plan: BatchPlan, epoch: int) -> list[np.ndarray]:
    """Feature indices of each global batch for one epoch.

    Length grouping: shuffle, cut into mega-batches of 50 batches, sort each mega-batch by length
    (longest first), cut into batches, then shuffle the batches so that long and short batches
    alternate across the epoch instead of running in a block.
    """
    rng = np.random.default_rng([plan.seed, epoch])
    n = len(lengths)
    order = rng.permutation(n) if plan.shuffle else np.arange(n)
    if plan.group_by_length:
        mega = plan.batch_size * 50
        chunks = [order[i:i + mega] for i in range(0, n, mega)]
        order = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in chunks])
    batches = [order[i:i + plan.batch_size] for i in range(0, n, plan.batch_size)]
    if plan.drop_last and batches and len(batches[-1]) < plan.batch_size:
        batches.pop()
    if plan.group_by_length and plan.shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def shard(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This replica's slice of a global batch (strided, so sizes differ by at most one)."""
    return batch[rank::world_size]


class FeatureTensors:
    """All features of a split as tensors, padded to ``max_length``, indexable by batch."""

    def __init__(self, features, padding_side: str = "right") -> None:
        columns = [c for c in (*MODEL_INPUTS, *LABELS) if c in features.column_names]
        table = features.with_format("numpy", columns=columns)
        self.tensors = {c: torch.from_numpy(np.asarray(table[c], dtype=np.int64)) for c in columns}
        self.lengths = self.tensors["attention_mask"].sum(dim=1).numpy()
        self.padding_side = padding_side
        self.max_length = self.tensors["input_ids"].shape[1]

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, indices: np.ndarray, dynamic: bool, with_labels: bool) -> dict:
        """Tensors of one batch; with ``dynamic`` cut to the batch's longest sequence."""
        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        names = (*MODEL_INPUTS, *LABELS) if with_labels else MODEL_INPUTS
        out = {n: self.tensors[n].index_select(0, index) for n in names if n in self.tensors}
        if dynamic:
            keep = int(self.lengths[indices].max())
            cut = self.max_length - keep
            for name in MODEL_INPUTS:
                if name in out:
                    # Right padding: real tokens first, drop the tail. Left padding: drop the head
                    # and shift the label positions by the number of dropped columns.
                    out[name] = out[name][:, :keep] if self.padding_side == "right" \
                        else out[name][:, cut:]
            if self.padding_side == "left" and with_labels and cut:
                for name in LABELS:
                    out[name] = out[name] - cut
        return out

    def real_tokens(self, indices: np.ndarray) -> int:
        """Non-padding tokens in a batch (what tokens/s counts)."""
        return int(self.lengths[indices].sum())


def iterate_eval(n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Contiguous index batches in feature order (prediction keeps the order)."""
    for start in range(0, n, batch_size):
        yield np.arange(start, min(n, start + batch_size))
