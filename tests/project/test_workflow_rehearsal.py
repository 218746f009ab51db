"""The nightly workflow's jobs run on this machine (tools/ci/run_workflow.py), CPU rehearsal.

One night of the `nightly-rehearsal` profile in two shard jobs, of which the second is never
picked up by a runner (as when no runner carries its label): the plan job emits the matrix with
its timeouts, shard 1/2 runs every step of the shard job (the SDK and its venv stood in for by
QA_BENCH_CPU_STANDIN) and exits 5 (no baselines: nothing judged, which fails the job), shard
2/2 is cancelled, and the merge job, on a light install without torch, names the lost shard and
its entries and exits 1, with shard 1's entries in the merged report.

The harness's own pieces (expressions, conditions, the files between steps) are checked by
the fast tests in tests/project/test_run_workflow.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_a_night_with_a_shard_no_runner_picked_up(tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools/ci/run_workflow.py"),
         str(ROOT / ".github/workflows/nightly.yml"), "--work", str(work),
         "--input", "profile=nightly-rehearsal", "--input", "seeds=1",
         "--input", "min_shards=2", "--input", f"data_dir={tmp_path / 'data'}",
         "--runner-labels", "self-hosted,linux,ipu-cpu", "--unpicked", "cpu shard 2/2",
         "--standin-venv", str(Path(sys.executable).parent.parent)],
        env=env, capture_output=True, text=True, timeout=1500)
    log = proc.stdout + proc.stderr
    print(log[-6000:])
    assert proc.returncode == 1, log[-4000:]  # a night with a lost shard is never green
    summary = json.loads((work / "summary.json").read_text())

    plan = summary["plan"]
    assert plan["result"] == "success"
    matrix = json.loads(plan["outputs"]["matrix"])["include"]
    assert [(j["pod"], j["shard"], j["shards"]) for j in matrix] == [("cpu", 1, 2), ("cpu", 2, 2)]
    assert all(j["timeout_minutes"] >= 30 and j["job_timeout_minutes"] > j["timeout_minutes"]
               for j in matrix)

    first, second = summary["shard"]["runs"]
    assert first["name"] == "cpu shard 1/2" and second["name"] == "cpu shard 2/2"
    assert first["labels"] == ["self-hosted", "linux", "ipu-cpu"]
    steps = {s["name"]: s["outcome"] for s in first["steps"]}
    assert steps["Enable the Poplar SDK"] == "success"
    assert steps["Check the data and model cache"] == "success"
    assert steps["Run the shard"] == "failure (exit 5)"  # nothing judged fails the job
    assert "shard cpu 1/2: nothing was judged (exit 5)" in log
    assert second["result"] == "cancelled"

    merge = summary["merge"]["runs"][0]
    steps = {s["name"]: s["outcome"] for s in merge["steps"]}
    assert steps["Install (light, no torch)"] == "success"
    assert steps["Merge (the report goes to the job summary)"] == "failure (exit 1)"
    assert "::error::shard cpu 2/2 delivered nothing" in log
    workspace = Path(merge["workspace"])
    lost = {"torch/cpu/tiny-roformer__synthetic_v2", "torch/cpu/tiny-bert__synthetic_v2",
            "torch/cpu/tiny-roformer__synthetic", "torch/cpu/tiny-bert__synthetic"} - {
        str(p.relative_to(workspace / "runs/shard-cpu-1/run/results").with_suffix(""))
        for p in (workspace / "runs/shard-cpu-1/run/results").rglob("*.json")}
    assert len(lost) == 2
    for entry in lost:
        assert f"missing: {entry}" in log
    report = (workspace / "runs/merged/report.md").read_text()
    assert "merged from 1 run folder" in report
    # The light install really had no torch.
    assert subprocess.run([str(workspace / ".venv-light/bin/python"), "-c", "import torch"],
                          capture_output=True).returncode != 0
