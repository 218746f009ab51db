"""qa.run.schedule and `qa-bench plan`: shards and time limits from the cost model."""

from __future__ import annotations

import json
from functools import cache

import pytest

from qa.errors import QABenchError
from qa.frontends.cli import main
from qa.run import profiles, schedule, sharding


def _groups(pods: list[str] | None = None) -> dict[str, list[profiles.Entry]]:
    """The nightly per pod, each group as `qa-bench run --pods POD` selects it."""
    return {pod: list(_pod(pod)) for pod in pods or profiles.load_profile("nightly").pods}


@cache
def _pod(pod: str) -> tuple[profiles.Entry, ...]:
    return tuple(profiles.expand(profiles.select(profiles.load_profile("nightly"), None, None,
                                                 [pod], None)))


def test_timeout_is_estimate_times_margin_plus_overhead() -> None:
    assert schedule.timeout_minutes(3600, 1.5, 30) == 120
    assert schedule.timeout_minutes(3601, 1.5, 30) == 121  # rounded up, never down
    assert schedule.timeout_minutes(0, 1.5, 30) == 30


@pytest.mark.parametrize("max_hours", [18.0, 24.0, 72.0])
def test_every_shard_fits_and_is_the_partition_run_computes(max_hours: float) -> None:
    groups = _groups()
    jobs = schedule.plan_jobs(groups, seeds=3, max_hours=max_hours)
    assert all(job.timeout_minutes <= max_hours * 60 for job in jobs)
    for pod, entries in groups.items():
        mine = [job for job in jobs if job.pod == pod]
        count = mine[0].shards
        assert [job.shard for job in mine] == list(range(1, count + 1))
        plan = sharding.plan_shards(entries, count, seeds=3)  # what `run --shard K/N` does
        assert [job.entries for job in mine] == plan.sizes()
        assert [job.estimated_h for job in mine] == [round(x / 3600, 2) for x in plan.loads()]
        if count > 1:  # the fewest shards: one fewer would not fit
            fewer = sharding.plan_shards(entries, count - 1, seeds=3)
            assert max(schedule.timeout_minutes(x) for x in fewer.loads()) > max_hours * 60


def test_a_tighter_limit_never_gives_fewer_shards() -> None:
    counts = [len(schedule.plan_jobs(_groups(), seeds=3, max_hours=h)) for h in (72, 24, 18)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_an_entry_too_long_alone_is_refused_by_name() -> None:
    with pytest.raises(QABenchError, match=r"bert-large-uncased__squad_v2 alone needs"):
        schedule.plan_jobs(_groups(["pod4"]), seeds=3, max_hours=10)


def test_bad_limits_are_refused() -> None:
    for kwargs in ({"max_hours": 0}, {"margin": 0.5}, {"min_shards": 0}):
        with pytest.raises(QABenchError):
            schedule.plan_jobs(_groups(["pod64"]), **kwargs)


def test_min_shards_is_honoured() -> None:
    jobs = schedule.plan_jobs(_groups(["pod64"]), seeds=1, max_hours=72, min_shards=3)
    assert [(j.shard, j.shards) for j in jobs] == [(1, 3), (2, 3), (3, 3)]


def test_cli_json_matrix_and_slurm_line(capsys) -> None:
    assert main(["plan", "--profile", "nightly", "--seeds", "3", "--pods", "pod16,pod64",
                 "--per-pod", "--json"]) == 0
    matrix = json.loads(capsys.readouterr().out)["include"]
    assert {job["pod"] for job in matrix} == {"pod16", "pod64"}
    assert all(job["job_timeout_minutes"] == job["timeout_minutes"] + schedule.JOB_SLACK_MIN
               and job["timeout_minutes"] <= 24 * 60 for job in matrix)
    assert sum(job["entries"] for job in matrix) == 20
    assert main(["plan", "--profile", "nightly-rehearsal", "--shards", "3", "--slurm"]) == 0
    assert capsys.readouterr().out.strip() == "3 00:31:00"
    # A Slurm array is one group: --per-pod with several pods is refused (exit 2).
    assert main(["plan", "--profile", "nightly", "--pods", "pod16,pod64", "--per-pod",
                 "--slurm"]) == 2
