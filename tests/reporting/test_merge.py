"""Merging shard run folders and re-judging one folder: one verdict, one exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa.files import write_json_atomic
from qa.frontends.cli import main
from qa.reporting.merge import append_history_once, judge_run_dir, merge_runs
from qa.results.store import RunResult, read_history, save_result
from qa.run import profiles, sharding
from qa.run.manifest import build_manifest, write_manifest
from qa.run.pipeline import result_key

PROFILE = """
description = "four tiny entries"
backend = "torch"
models = ["tiny-roformer", "tiny-bert"]
pods = ["cpu"]
datasets = ["synthetic", "synthetic_v2"]
seeds = [42]
"""


@pytest.fixture
def plan(tmp_path: Path) -> sharding.ShardPlan:
    path = tmp_path / "four.toml"
    path.write_text(PROFILE)
    return sharding.plan_shards(profiles.expand(profiles.load_profile(str(path))), 2)


def _result(entry: profiles.Entry, f1: float, commit: str = "c0ffee1", stamp: str = "01",
            status: str = "ok") -> RunResult:
    return RunResult(key=result_key(entry.config), config=entry.config.to_dict(),
                     metrics={"exact_match": f1 - 1, "f1": f1} if status == "ok" else {},
                     status=status, environment={"git_commit": commit},
                     started_at=f"2026-11-{stamp}T01:00:00",
                     finished_at=f"2026-11-{stamp}T02:00:00")


def _shard_dir(root: Path, plan: sharding.ShardPlan, k: int, f1: float = 90.0,
               commit: str = "c0ffee1", deliver: int | None = None) -> Path:
    """A shard's run folder as ``qa-bench run --shard k/N`` leaves it (results, manifest)."""
    out = root / f"shard{k}"
    manifest = build_manifest("four", plan, k, [42])
    manifest["commit"] = commit
    write_manifest(out, manifest)
    for a in plan.shard(k)[:deliver]:
        save_result(_result(a.entry, f1, commit), out, root / f"shard{k}-history.jsonl")
    return out


def _baseline(root: Path, entry: profiles.Entry, f1: float) -> None:
    key = result_key(entry.config)
    write_json_atomic(root / key["backend"] / key["pod"] / f"{key['model']}__{key['dataset']}.json",
                      {"key": key, "provenance": {"measured_by": "test", "date": "2026-11-01"},
                       "metrics": {"f1": {"value": f1, "tolerance": 1.0, "unit": "points",
                                          "higher_is_better": True}}})


def test_two_shards_merge_into_one_passing_report(tmp_path: Path, plan, capsys) -> None:
    baselines = tmp_path / "baselines"
    for a in plan.assignments:
        _baseline(baselines, a.entry, 90.0)
    shards = [_shard_dir(tmp_path, plan, k) for k in (1, 2)]
    history = tmp_path / "cache" / "history.jsonl"
    rc = main(["merge", *map(str, shards), "--out", str(tmp_path / "merged"),
               "--baselines", str(baselines), "--history", str(history)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "4 entries (0 did not finish) · gates: 4 pass, 0 fail" in out
    assert len(list((tmp_path / "merged" / "results").rglob("*.json"))) == 4
    report = (tmp_path / "merged" / "report.md").read_text()
    assert "merged from 2 run folders" in report and "Missing entries" not in report
    assert len(read_history(history)) == 4
    # Merging again (a re-run CI job) does not append the same results twice.
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "merged2"),
                 "--baselines", str(baselines), "--history", str(history)]) == 0
    assert len(read_history(history)) == 4


def test_a_shard_that_never_delivered_is_missing_exit_1(tmp_path: Path, plan, capsys) -> None:
    rc = main(["merge", str(_shard_dir(tmp_path, plan, 1)), "--out", str(tmp_path / "m"),
               "--baselines", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert rc == 1
    lost = [a for a in plan.shard(2)]
    for a in lost:
        assert f"missing: {result_key(a.entry.config)['backend']}/cpu/" in out
    assert f"{len(lost)} entries missing" in out
    report = (tmp_path / "m" / "report.md").read_text()
    assert "## Missing entries" in report and "shards never delivered: 2/2" in report


def test_a_gate_failing_in_one_shard_fails_the_merge(tmp_path: Path, plan, capsys) -> None:
    baselines = tmp_path / "baselines"
    for a in plan.assignments:
        _baseline(baselines, a.entry, 90.0)
    shards = [_shard_dir(tmp_path, plan, 1), _shard_dir(tmp_path, plan, 2, f1=85.0)]
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "m"),
                 "--baselines", str(baselines)]) == 1
    assert "fail" in capsys.readouterr().out


@pytest.mark.parametrize("field, value", [("commit", "deadbee"), ("profile", "other"),
                                          ("qa_bench_version", "9.9")])
def test_runs_that_differ_are_refused_without_force(tmp_path: Path, plan, capsys, field,
                                                    value) -> None:
    first, second = _shard_dir(tmp_path, plan, 1), _shard_dir(tmp_path, plan, 2)
    manifest = json.loads((second / "manifest.json").read_text())
    manifest[field] = value
    (second / "manifest.json").write_text(json.dumps(manifest))
    argv = ["merge", str(first), str(second), "--out", str(tmp_path / "m"),
            "--baselines", str(tmp_path / "none")]
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "cannot merge runs of different" in lines[0]
    assert "--force" in lines[0] and "Traceback" not in captured.err
    assert not (tmp_path / "m" / "report.md").exists()
    assert main([*argv, "--force"]) == 5  # merged; nothing judged (no baselines): not green
    out = capsys.readouterr().out
    assert "merged despite different" in out and "nothing was judged" in out


def test_the_same_entry_from_two_folders_is_refused(tmp_path: Path, plan, capsys) -> None:
    first = _shard_dir(tmp_path, plan, 1)
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    assert main(["merge", str(first), str(copy), "--out", str(tmp_path / "m")]) == 2
    assert "is in both" in capsys.readouterr().err


def test_report_rejudges_a_killed_run_and_names_the_missing_entry(tmp_path: Path, plan,
                                                                   capsys) -> None:
    """The issue's kill -9 case: 2 entries expected, 1 result, no verdicts.json, no report."""
    whole = sharding.plan_shards([a.entry for a in plan.assignments][:2], 1)
    run = tmp_path / "run"
    write_manifest(run, build_manifest("four", whole, None, [42]))
    done, never = whole.assignments
    save_result(_result(done.entry, 80.0), run)
    baselines = tmp_path / "baselines"
    _baseline(baselines, done.entry, 90.0)
    rc = main(["report", str(run), "--baselines", str(baselines)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "gates: 0 pass, 1 fail" in out  # the finished entry was judged (F1 80 vs 90 ± 1)
    never_id = "torch/cpu/" + f"{never.entry.config.model.name}__{never.entry.config.data.dataset}"
    assert f"missing: {never_id}" in out
    text = (run / "report.md").read_text()
    assert "1 ❌ missing (never ran)" in text and never_id in text
    judged = judge_run_dir(run, baselines)
    assert judged.missing == [never_id] and judged.outcome.code == 1


def test_append_history_once(tmp_path: Path, plan) -> None:
    entry = plan.assignments[0].entry
    results = [_result(entry, 90.0, stamp="01"), _result(entry, 91.0, stamp="02")]
    path = tmp_path / "h.jsonl"
    assert append_history_once(path, results) == 2
    assert append_history_once(path, results + [_result(entry, 92.0, stamp="03")]) == 1
    assert [r.metrics["f1"] for r in read_history(path)] == [90.0, 91.0, 92.0]


def test_merge_refuses_an_output_among_its_inputs_and_unknown_folders(tmp_path: Path, plan,
                                                                       capsys) -> None:
    first = _shard_dir(tmp_path, plan, 1)
    assert main(["merge", str(first), "--out", str(first)]) == 2
    assert main(["merge", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such run folder" in err[1]


def test_merge_runs_library_keeps_one_result_per_entry(tmp_path: Path, plan) -> None:
    shards = [_shard_dir(tmp_path, plan, k) for k in (1, 2)]
    judged = merge_runs(shards, tmp_path / "m", baselines_root=tmp_path / "none")
    assert sorted(r.entry_id for r in judged.results) == sorted(
        "torch/cpu/" + f"{a.entry.config.model.name}__{a.entry.config.data.dataset}"
        for a in plan.assignments)
    assert not judged.missing and judged.outcome.code == 5  # no baselines: nothing judged


def test_merge_profile_names_a_pod_whose_every_shard_job_died(tmp_path: Path, capsys) -> None:
    """Per-pod jobs plan only their pod: without --profile a pod with no surviving folder is
    invisible; with it, that pod's entries are missing (exit 1)."""
    path = tmp_path / "profiles" / "four.toml"  # the shard folders ran profile "four"
    path.parent.mkdir()
    path.write_text(PROFILE.replace('pods = ["cpu"]', 'pods = ["cpu", "cuda"]'))
    profile = profiles.load_profile(str(path))
    cpu_only = sharding.plan_shards(profiles.expand(profiles.select(profile, None, None, ["cpu"],
                                                                    None)), 2)
    folders = [str(_shard_dir(tmp_path, cpu_only, k)) for k in (1, 2)]
    none = str(tmp_path / "none")
    assert main(["merge", *folders, "--out", str(tmp_path / "m1"), "--baselines", none]) == 5
    assert "0 entries missing" in capsys.readouterr().out
    rc = main(["merge", *folders, "--out", str(tmp_path / "m2"), "--baselines", none,
               "--profile", str(path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.count("missing: torch/cuda/") == 4 and "missing: torch/cpu/" not in out
    assert read_manifest_entries(tmp_path / "m2") == 8  # the merged manifest names all of them
    other = tmp_path / "other.toml"
    other.write_text(PROFILE.replace("four tiny", "other"))
    rc = main(["merge", *folders, "--out", str(tmp_path / "m3"), "--baselines", none,
               "--profile", str(other)])
    assert rc == 2 and "pass --force" in capsys.readouterr().err


def read_manifest_entries(folder: Path) -> int:
    from qa.run.manifest import read_manifest

    return len(read_manifest(folder)["entries"])
