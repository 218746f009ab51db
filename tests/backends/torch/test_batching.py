"""Batch order, sharding and dynamic padding of the torch backend."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from qa.backends.torch.batching import BatchPlan, FeatureTensors, global_order, shard


def _features(lengths: list[int], max_length: int = 12, side: str = "right") -> Dataset:
    rows = {"input_ids": [], "token_type_ids": [], "attention_mask": [],
            "start_positions": [], "end_positions": []}
    for n in lengths:
        pad = max_length - n
        ids = list(range(1, n + 1))
        mask = [1] * n
        if side == "right":
            rows["input_ids"].append(ids + [0] * pad)
            rows["attention_mask"].append(mask + [0] * pad)
            rows["start_positions"].append(n - 2)
        else:
            rows["input_ids"].append([0] * pad + ids)
            rows["attention_mask"].append([0] * pad + mask)
            rows["start_positions"].append(pad + n - 2)
        rows["token_type_ids"].append([0] * max_length)
        rows["end_positions"].append(rows["start_positions"][-1] + 1)
    return Dataset.from_dict(rows)


def test_order_is_a_seeded_permutation_covering_every_feature() -> None:
    lengths = np.arange(1, 101)
    plan = BatchPlan(batch_size=8, shuffle=True, group_by_length=False, seed=3)
    first = global_order(lengths, plan, epoch=0)
    again = global_order(lengths, plan, epoch=0)
    other_epoch = global_order(lengths, plan, epoch=1)
    flat = np.concatenate(first)
    assert sorted(flat.tolist()) == list(range(100))
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not all((a == b).all() for a, b in zip(first, other_epoch, strict=True))


def test_length_grouping_reduces_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 384, size=2000)
    def padded(group: bool) -> int:
        plan = BatchPlan(batch_size=16, shuffle=True, group_by_length=group, seed=1)
        return sum(int(lengths[b].max()) * len(b) for b in global_order(lengths, plan, 0))
    assert padded(True) < 0.7 * padded(False)


def test_shards_partition_a_global_batch() -> None:
    batch = np.arange(17)
    parts = [shard(batch, rank, 3) for rank in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(17))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


@pytest.mark.parametrize("side", ["right", "left"])
def test_dynamic_padding_cuts_to_the_longest_and_keeps_labels_on_the_same_tokens(side) -> None:
    data = FeatureTensors(_features([5, 9, 3], side=side), padding_side=side)
    static = data.batch(np.array([0, 1, 2]), dynamic=False, with_labels=True)
    dynamic = data.batch(np.array([0, 1, 2]), dynamic=True, with_labels=True)
    assert static["input_ids"].shape == (3, 12)
    assert dynamic["input_ids"].shape == (3, 9)
    for row in range(3):
        s_static = int(static["start_positions"][row])
        s_dynamic = int(dynamic["start_positions"][row])
        # the labelled token is the same token before and after the cut
        assert static["input_ids"][row, s_static] == dynamic["input_ids"][row, s_dynamic]
    assert data.real_tokens(np.array([0, 1, 2])) == 17
