"""Split an expanded matrix into N shards of about equal estimated cost, the same on every host.

An entry is the unit: its seeds (and repeats) always run together in one shard, so the seed
aggregation and the per-entry baseline update need nothing from other shards. The cost of an
entry is an *estimate* in device-seconds, from the config alone (no hardware probe, no clock),
so that every host of a CI matrix or Slurm array computes the same partition:

    train   = 6 · params · tokens per sample · training samples · epochs   (FLOPs)
    eval    = 2 · params · tokens per sample · evaluation samples
    seconds = backend.cost_seconds(config, train + eval, params), × seeds

The work is the model's and the data's; its price in seconds is the backend's
(``Backend.cost_seconds``): the IPU backend's rate is calibrated on the one measured IPU figure
in the nightly issue (BERT-base, pod16, 387 samples/s at 384 tokens) and adds the graph compile;
the torch backend's CPU/CUDA rates are rough. Only the ratios between entries matter for
balance, and every term moves the right way: bigger models, bigger datasets, more epochs, more
seeds cost more; bigger pods and more replicas cost less.

Partition: longest-processing-time first (entries by descending cost, ties by id, each to the
least loaded shard, ties by shard number), then a pass of pairwise moves and swaps that lower
the most loaded shard while one helps. Deterministic by construction; no randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa import backends
from qa.backends.base import Backend
from qa.errors import QABenchError
from qa.task.models import TINY_MODELS

if TYPE_CHECKING:
    from qa.config.schema import RunConfig
    from qa.run.profiles import Entry

# Parameters (millions) of the models the profiles name; an unknown model counts as BERT-base.
MODEL_PARAMS_M = {
    "bert-base-uncased": 110, "bert-base-cased": 108, "bert-large-uncased": 335,
    "bert-large-cased": 333, "roberta-base": 125, "roberta-large": 355,
    "distilbert-base-uncased": 66, "deberta-base": 184, "deberta-v3-base": 184,
    "bert-base-random": 110,
    "all-minilm-l6-v2": 22.6,  # qa.task.packaged: 22,566,146 with its QA head
}
DEFAULT_PARAMS_M = 110
# (train features, eval features) at 384/128: the official sets' feature counts.
DATASET_FEATURES = {"squad": (88_641, 10_784), "squad_v2": (131_754, 12_134)}


@dataclass(frozen=True)
class Assignment:
    """One entry of the plan: its id, estimated cost (device-seconds, all seeds) and shard."""

    entry: Entry
    cost: float
    shard: int  # 1-based


@dataclass(frozen=True)
class ShardPlan:
    """The whole partition of a matrix into ``count`` shards."""

    count: int
    assignments: tuple[Assignment, ...]

    def shard(self, index: int) -> list[Assignment]:
        """The entries of shard ``index`` (1-based), in matrix order."""
        return [a for a in self.assignments if a.shard == index]

    def loads(self) -> list[float]:
        """Estimated cost of each shard, shard 1 first."""
        return [sum(a.cost for a in self.shard(k)) for k in range(1, self.count + 1)]

    def sizes(self) -> list[int]:
        """Number of entries in each shard, shard 1 first."""
        return [len(self.shard(k)) for k in range(1, self.count + 1)]

    def spread(self) -> float:
        """Most over least loaded shard (inf when a shard is empty)."""
        loads = self.loads()
        return max(loads) / min(loads) if min(loads) > 0 else math.inf


def parse_shard(spec: str) -> tuple[int, int]:
    """``"3/8"`` → ``(3, 8)``.

    Raises:
        QABenchError: not ``K/N`` with ``1 <= K <= N``.
    """
    head, sep, tail = str(spec).partition("/")
    try:
        index, count = int(head), int(tail)
    except ValueError:
        index = count = 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise QABenchError(f"--shard expects K/N with 1 <= K <= N (e.g. 2/8), got {spec!r}")
    return index, count


def _params_m(config: RunConfig) -> float:

    name = config.model.name
    if name in TINY_MODELS:
        spec = TINY_MODELS[name]
        # 12·H² per layer (attention + MLP at 4H) plus the embedding table.
        hidden = spec.hidden_size
        return (12 * hidden * hidden * spec.num_hidden_layers
                + config.model.vocab_size * hidden) / 1e6
    base = name.rsplit("/", 1)[-1]
    return float(MODEL_PARAMS_M.get(base, DEFAULT_PARAMS_M))


def _features(config: RunConfig) -> tuple[float, float]:
    data = config.data
    if data.dataset.startswith("synthetic"):
        per_context = data.synthetic_questions * (1 + 1.5 * data.synthetic_long_fraction)
        train = data.synthetic_train_contexts * per_context
        evaluate = data.synthetic_validation_contexts * per_context
    else:
        train, evaluate = DATASET_FEATURES.get(data.dataset, DATASET_FEATURES["squad"])
    if data.max_train_samples:
        train = min(train, data.max_train_samples)
    if data.max_eval_samples:
        evaluate = min(evaluate, data.max_eval_samples)
    return float(train), float(evaluate)


def estimate_cost(config: RunConfig, seeds: int = 1) -> float:
    """Estimated device-seconds of one entry over ``seeds`` seeds (see the module docstring)."""
    train_cfg, name = config.train, config.hardware.backend
    # A name no backend is registered under never runs (the profile refuses it); its estimate
    # is the contract's default rather than an error, so any accepted config has a cost.
    backend_cls = backends.get(name) if name in backends.names() else Backend
    params = _params_m(config) * 1e6
    train_features, eval_features = _features(config)
    if train_cfg.max_steps and train_cfg.max_steps > 0:
        samples = (train_cfg.max_steps * train_cfg.micro_batch_size
                   * train_cfg.gradient_accumulation_steps
                   * backend_cls.data_parallel(config))
    else:
        samples = train_features * train_cfg.num_train_epochs
    tokens = config.data.max_length
    flops = 6 * params * tokens * samples + 2 * params * tokens * eval_features
    return max(seeds, 1) * backend_cls.cost_seconds(config, flops, params)


def plan_shards(entries: list[Entry], count: int, seeds: int = 1) -> ShardPlan:
    """Partition ``entries`` into ``count`` shards balanced by estimated cost.

    Raises:
        QABenchError: ``count`` < 1.
    """
    if count < 1:
        raise QABenchError("the number of shards must be at least 1")
    costs = {e.id: estimate_cost(e.config, seeds) for e in entries}
    if len(costs) != len(entries):
        raise QABenchError("the matrix has duplicate entry ids; cannot shard it")
    loads = [0.0] * count
    shard_of: dict[str, int] = {}
    for entry in sorted(entries, key=lambda e: (-costs[e.id], e.id)):
        target = min(range(count), key=lambda k: (loads[k], k))
        shard_of[entry.id] = target
        loads[target] += costs[entry.id]
    _improve(shard_of, costs, loads)
    return ShardPlan(count, tuple(Assignment(e, costs[e.id], shard_of[e.id] + 1)
                                  for e in entries))


def _improve(shard_of: dict[str, int], costs: dict[str, float], loads: list[float]) -> None:
    """Move or swap entries out of the most loaded shard while that lowers it (deterministic)."""
    for _ in range(10 * len(costs) + 10):
        top = max(range(len(loads)), key=lambda k: (loads[k], -k))
        best: tuple[float, str, str | None, int] | None = None
        for eid in sorted(i for i, s in shard_of.items() if s == top):
            for other in range(len(loads)):
                if other == top:
                    continue
                candidates: list[str | None] = [None] + sorted(
                    i for i, s in shard_of.items() if s == other)
                for partner in candidates:
                    moved = costs[eid] - (costs[partner] if partner else 0.0)
                    if moved <= 0:
                        continue
                    worst = max(loads[top] - moved, loads[other] + moved)
                    if worst < loads[top] - 1e-9 and (best is None or worst < best[0]):
                        best = (worst, eid, partner, other)
        if best is None:
            return
        _, eid, partner, other = best
        moved = costs[eid] - (costs[partner] if partner else 0.0)
        shard_of[eid] = other
        if partner:
            shard_of[partner] = top
        loads[top] -= moved
        loads[other] += moved


def format_duration(seconds: float) -> str:
    """``42 s``, ``11.4 min``, ``3.2 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_listing(plan: ShardPlan, index: int | None = None) -> str:
    """The entries of shard ``index`` (all shards when None) with their cost, then the balance."""
    lines = []
    for k in [index] if index else range(1, plan.count + 1):
        members = plan.shard(k)
        total = sum(a.cost for a in members)
        lines.append(f"shard {k}/{plan.count}: {len(members)} entries, estimated "
                     f"{format_duration(total)}")
        lines += [f"  {a.entry.id}  ~{format_duration(a.cost)}" for a in members]
    lines.append(f"balance: entries per shard {','.join(map(str, plan.sizes()))}; estimated "
                 f"cost max/min {plan.spread():.3f} (max {format_duration(max(plan.loads()))})")
    return "\n".join(lines)
