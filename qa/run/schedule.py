"""Scheduler jobs for a sharded matrix: how many shards, and each one's time limit.

A CI job or a Slurm task needs a time limit before it starts. The only duration known then is
the cost model's estimate (``qa.run.sharding.estimate_cost``: device-seconds from the config,
the same on every host), so the limit is derived from it:

    timeout = estimate × margin + overhead      (minutes, rounded up)

``margin`` (default 1.5) covers the estimate's error — its IPU rate is calibrated on one
measured figure; ``overhead`` (default 30 min) covers what the estimate leaves out: installing
the environment, loading data and models from the cache, tokenizing features. A shard whose
limit would exceed ``max_hours`` (the scheduler's job limit, or the limit chosen for a nightly)
is split: the number of shards of a group grows until every shard fits. One entry (all its
seeds) is never split, so an entry whose own limit exceeds ``max_hours`` is refused with the
entry named: fewer seeds or a bigger pod, not a silent overrun.

Per pod (``qa-bench plan --per-pod``), as the GitHub workflow runs it (one runner label per pod
size, ``qa-bench run --pods POD --shard K/N`` in each job), each group is the matrix as
``--pods POD`` selects it, so its shards are exactly the partition that run computes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from qa.errors import QABenchError
from qa.run import sharding
from qa.run.profiles import Entry

DEFAULT_MARGIN = 1.5
DEFAULT_OVERHEAD_MIN = 30.0
DEFAULT_MAX_HOURS = 24.0
JOB_SLACK_MIN = 30


@dataclass(frozen=True)
class ShardJob:
    """One scheduler job: shard ``shard`` of ``shards`` of one group (a pod, or the matrix)."""

    pod: str  # the group's pod ("" when the matrix is not split by pod)
    shard: int
    shards: int
    entries: int
    estimated_h: float  # the cost model's estimate of this shard, all seeds
    timeout_minutes: int  # estimate × margin + overhead, rounded up

    @property
    def name(self) -> str:
        """``pod4 2/3`` (or ``2/3`` without a pod)."""
        return f"{self.pod} {self.shard}/{self.shards}".strip()


def timeout_minutes(estimated_s: float, margin: float = DEFAULT_MARGIN,
                    overhead_min: float = DEFAULT_OVERHEAD_MIN) -> int:
    """The time limit of a job whose work the cost model puts at ``estimated_s`` seconds."""
    return math.ceil(estimated_s * margin / 60.0 + overhead_min)


def _group_jobs(pod: str, entries: list[Entry], seeds: int, max_minutes: float,
                min_shards: int, margin: float, overhead_min: float) -> list[ShardJob]:
    if not entries:
        return []
    biggest = max(entries, key=lambda e: (sharding.estimate_cost(e.config, seeds), e.id))
    alone = timeout_minutes(sharding.estimate_cost(biggest.config, seeds), margin, overhead_min)
    if alone > max_minutes:
        raise QABenchError(
            f"entry {biggest.id} alone needs {alone} min ({seeds} seed(s), estimate × "
            f"{margin:g} + {overhead_min:g} min) > the {max_minutes / 60:g} h job limit; one "
            "entry's seeds are never split: use fewer seeds, a bigger pod or a higher "
            "--max-hours")
    for count in range(max(min_shards, 1), len(entries) + 1):
        plan = sharding.plan_shards(entries, count, seeds=seeds)
        limits = [timeout_minutes(load, margin, overhead_min) for load in plan.loads()]
        if max(limits) <= max_minutes:
            rows = zip(plan.sizes(), plan.loads(), limits, strict=True)
            return [ShardJob(pod, k, count, size, round(load / 3600.0, 2), limit)
                    for k, (size, load, limit) in enumerate(rows, start=1)]
    raise QABenchError(f"{pod or 'the matrix'}: no split into at most {len(entries)} shards "
                       f"fits the {max_minutes / 60:g} h job limit")


def plan_jobs(groups: dict[str, list[Entry]], seeds: int = 1,
              max_hours: float = DEFAULT_MAX_HOURS, min_shards: int = 1,
              margin: float = DEFAULT_MARGIN,
              overhead_min: float = DEFAULT_OVERHEAD_MIN) -> list[ShardJob]:
    """The jobs that run each group of entries (a pod's entries as ``--pods POD`` selects them,
    or the whole matrix under ``""``), each group in the fewest shards (at least
    ``min_shards``) whose limits all fit ``max_hours``.

    Raises:
        QABenchError: a limit or count out of range, or one entry alone over ``max_hours``.
    """
    if max_hours <= 0 or margin < 1 or overhead_min < 0 or min_shards < 1:
        raise QABenchError("--max-hours must be > 0, --margin >= 1, --overhead-min >= 0 and "
                           "--shards >= 1")
    return [job for pod, members in groups.items()
            for job in _group_jobs(pod, members, seeds, max_hours * 60.0, min_shards, margin,
                                   overhead_min)]


def to_matrix_json(jobs: list[ShardJob], job_slack_min: int = JOB_SLACK_MIN) -> str:
    """A GitHub Actions matrix (``{"include": [...]}``, one object per job), on one line.

    ``timeout_minutes`` limits the ``qa-bench run`` itself; ``job_timeout_minutes`` (the job's
    ``timeout-minutes``: workflow expressions have no arithmetic) adds ``job_slack_min`` for the
    steps around it (checkout, SDK, venv, upload), so that the run's own limit fires first and
    its partial report is uploaded.
    """
    return json.dumps({"include": [{**asdict(job),
                                    "job_timeout_minutes": job.timeout_minutes + job_slack_min}
                                   for job in jobs]}, separators=(",", ":"))


def slurm_line(jobs: list[ShardJob]) -> str:
    """``N HH:MM:SS``: the array size and the longest task's limit (one --time per array)."""
    if len({job.pod for job in jobs}) > 1:
        raise QABenchError("a Slurm array is one group: plan it without --per-pod")
    minutes = max(job.timeout_minutes for job in jobs)
    return f"{len(jobs)} {minutes // 60:02d}:{minutes % 60:02d}:00"


def format_table(jobs: list[ShardJob], max_hours: float, margin: float,
                 overhead_min: float) -> str:
    """The plan as a Markdown table (docs, the workflow's summary)."""
    lines = [f"job limit {max_hours:g} h; timeout = estimate × {margin:g} + "
             f"{overhead_min:g} min", "",
             "| job | entries | estimated | timeout |", "|---|---:|---:|---:|"]
    for job in jobs:
        lines.append(f"| {job.name} | {job.entries} | {job.estimated_h:.1f} h | "
                     f"{job.timeout_minutes} min ({job.timeout_minutes / 60:.1f} h) |")
    total = sum(job.estimated_h for job in jobs)
    lines.append(f"| all {len(jobs)} jobs | {sum(job.entries for job in jobs)} | {total:.1f} h "
                 "| |")
    return "\n".join(lines)
