"""Sharding: a deterministic, cost-balanced partition of the expanded matrix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qa.config.schema import RunConfig, apply_overrides
from qa.errors import QABenchError
from qa.run import profiles, sharding


def _nightly() -> list[profiles.Entry]:
    return profiles.expand(profiles.load_profile("nightly"))


def test_every_entry_in_exactly_one_shard_and_balanced() -> None:
    entries = _nightly()
    plan = sharding.plan_shards(entries, 8, seeds=3)
    ids = [a.entry.id for k in range(1, 9) for a in plan.shard(k)]
    assert sorted(ids) == sorted(e.id for e in entries)  # each once, none lost
    assert sum(plan.sizes()) == len(entries) == 40
    # No partition can beat the costliest single entry; the plan is within 10 % of that bound
    # and of the mean load.
    lower = max(max(a.cost for a in plan.assignments), sum(plan.loads()) / 8)
    assert max(plan.loads()) <= 1.10 * lower
    assert plan.spread() < 1.2


def test_the_same_plan_in_another_process() -> None:
    """Hosts of a CI matrix compute the shards independently: the plan must not vary."""
    code = ("from qa.run import profiles, sharding;"
            "e = profiles.expand(profiles.load_profile('nightly'));"
            "p = sharding.plan_shards(e, 8, seeds=3);"
            "print([(a.entry.id, a.shard) for a in p.assignments])")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
            for seed in ("1", "2")]
    here = sharding.plan_shards(_nightly(), 8, seeds=3)
    assert runs[0] == runs[1] == str([(a.entry.id, a.shard) for a in here.assignments]) + "\n"


def test_cost_moves_the_right_way() -> None:
    base = apply_overrides(RunConfig(), ["hardware.backend=ipu", "hardware.pod=pod16",
                                         "model.name=bert-base-uncased", "data.dataset=squad",
                                         "train.num_train_epochs=3"])
    cost = sharding.estimate_cost(base)
    # Calibration point: BERT-base on pod16 at 387 samples/s, 3 epochs of 88k features ≈ 11 min
    assert 10 * 60 < cost < 14 * 60

    def changed(*sets: str, seeds: int = 1) -> float:
        return sharding.estimate_cost(apply_overrides(base, list(sets)), seeds)

    assert changed("model.name=bert-large-uncased") > cost
    assert changed("model.name=distilbert-base-uncased") < cost
    assert changed("hardware.pod=pod4") > cost > changed("hardware.pod=pod64")
    assert changed("data.dataset=squad_v2") > cost
    assert changed("train.num_train_epochs=1") < cost
    assert changed(seeds=3) == pytest.approx(3 * cost)


def test_seeds_stay_with_their_entry_and_shard_count_bounds() -> None:
    entries = _nightly()[:3]
    plan = sharding.plan_shards(entries, 5)
    assert plan.sizes().count(0) == 2  # more shards than entries: some are empty
    assert plan.spread() == float("inf")
    one = sharding.plan_shards(entries, 1)
    assert one.sizes() == [3]


@pytest.mark.parametrize("spec", ["3", "0/4", "5/4", "a/b", "2/", "-1/3", ""])
def test_bad_shard_spec_is_one_clear_error(spec: str) -> None:
    with pytest.raises(QABenchError, match="--shard expects K/N"):
        sharding.parse_shard(spec)


def test_listing_names_entries_costs_and_balance() -> None:
    plan = sharding.plan_shards(_nightly(), 8, seeds=3)
    text = sharding.format_listing(plan, 2)
    assert text.startswith("shard 2/8:")
    assert all(a.entry.id in text for a in plan.shard(2))
    assert not any(a.entry.id in text for a in plan.shard(3))
    assert "max/min" in text.splitlines()[-1]
