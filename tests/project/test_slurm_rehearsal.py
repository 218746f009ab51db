"""The Slurm launcher on a real cluster: examples/slurm/ submitted to slurmctld + slurmd.

`tox -e slurm` starts a single-node cluster on this machine (tools/slurm/start-local.sh: root,
Debian's slurm-wlm and munge) and runs this file. Two nights of the CPU rehearsal profile
(`nightly-rehearsal`: 4 tiny entries, 3 array tasks), each submitted with
examples/slurm/submit-nightly.sh exactly as a user would:

1. night 1 bootstraps the rehearsal's own baselines (``--update-baselines`` into a temporary
   folder): every task exits 5 (nothing judged: no baseline yet) and writes its entries'
   baseline files;
2. night 2 is judged against them: every task exits 0, the merge job (afterany) exits 0, its
   report lists the 4 entries, each task kept its own history and the shared history got the
   night's 4 results once.

Then the merge is run again without shard 3 (a task that never delivered): exit 1, naming the
missing entries. Without a cluster the file skips with the reason, unless
``QA_BENCH_REQUIRE_SLURM`` is set (the tox env sets it): then it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = ROOT / "examples" / "slurm" / "submit-nightly.sh"
ENTRIES = {"torch/cpu/tiny-roformer__synthetic", "torch/cpu/tiny-roformer__synthetic_v2",
           "torch/cpu/tiny-bert__synthetic", "torch/cpu/tiny-bert__synthetic_v2"}
WAIT_S = float(os.environ.get("QA_BENCH_SLURM_WAIT_S", "900"))


def _cluster() -> tuple[bool, str]:
    if not shutil.which("sbatch"):
        return False, "no sbatch on the PATH (tools/slurm/start-local.sh installs and starts one)"
    conf = os.environ.get("SLURM_CONF")
    if not conf or not Path(conf).exists():
        return False, "SLURM_CONF is unset or missing: run tools/slurm/start-local.sh first"
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s in ("idle", "mix", "alloc") for s in states):
        return False, f"no usable Slurm node: {proc.stderr.strip() or states}"
    return True, ""


READY, WHY = _cluster()
if os.environ.get("QA_BENCH_REQUIRE_SLURM") and not READY:
    # `tox -e slurm` must never pass by skipping.
    pytest.fail(f"QA_BENCH_REQUIRE_SLURM is set but {WHY}", pytrace=False)
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not READY, reason=WHY)]


def _jobcomp() -> Path:
    text = Path(os.environ["SLURM_CONF"]).read_text()
    return Path(re.search(r"^JobCompLoc=(.+)$", text, re.M).group(1))


def _finished(job_ids: set[str]) -> dict[str, dict[str, str]]:
    """Job-completion records (key=value fields) of the given job ids (array tasks included)."""
    path = _jobcomp()
    records = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("JobId") in job_ids or fields.get("ArrayJobId") in job_ids:
            records[fields["JobId"]] = fields
    return records


def _night(tmp: Path, env: dict[str, str], extra_run: str, baselines: Path) -> dict:
    """Submit the array and the merge; wait for the merge; the ids and completion records."""
    proc = subprocess.run([str(SUBMIT)], cwd=tmp, env={
        **env, "QA_RUN_ARGS": f"--baselines {baselines} {extra_run}",
        "QA_MERGE_ARGS": f"--baselines {baselines}"}, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"^array (\d+) \((\d+) tasks, --time ([\d:]+)\) merge (\d+)$",
                      proc.stdout, re.M)
    assert found, proc.stdout
    array, tasks, limit, merge = found.groups()
    started = time.monotonic()
    while time.monotonic() - started < WAIT_S:
        records = _finished({array, merge})
        if merge in records:
            break
        time.sleep(2)
    else:
        queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
        pytest.fail(f"merge job {merge} not finished after {WAIT_S:.0f} s:\n{queue}")
    wall = time.monotonic() - started
    task_records = {r["ArrayTaskId"]: r for r in records.values()
                    if r.get("ArrayJobId") == array}
    print(f"\narray job {array}: {tasks} tasks (--time {limit}), merge job {merge}: "
          f"{wall:.0f} s from submission to the merge's end")
    for k, rec in sorted(task_records.items()):
        print(f"  task {array}_{k}: {rec['JobState']} exit {rec['ExitCode']} "
              f"{rec['StartTime']} -> {rec['EndTime']}")
    print(f"  merge {merge}: {records[merge]['JobState']} exit {records[merge]['ExitCode']}")
    return {"array": array, "tasks": int(tasks), "merge": merge, "records": task_records,
            "merge_record": records[merge], "wall": wall, "run": tmp / "runs" / array}


def test_two_nights_on_a_real_cluster_then_a_lost_shard(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "QA_BENCH": str(bindir / "qa-bench"), "QA_PROFILE": "nightly-rehearsal",
           "QA_SEEDS": "1", "QA_SHARDS": "3", "QA_RUNS": str(tmp_path / "runs"),
           "QA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    baselines = tmp_path / "baselines"

    first = _night(tmp_path, env, "--update-baselines", baselines)
    assert first["tasks"] == 3 and sorted(first["records"]) == ["1", "2", "3"]
    # No baseline before the first night: nothing judged is exit 5, never 0.
    assert {r["ExitCode"] for r in first["records"].values()} == {"5:0"}, first["records"]
    written = {str(p.relative_to(baselines).with_suffix("")) for p in baselines.rglob("*.json")}
    assert written == ENTRIES

    second = _night(tmp_path, env, "", baselines)
    assert {r["JobState"] for r in second["records"].values()} == {"COMPLETED"}
    assert {r["ExitCode"] for r in second["records"].values()} == {"0:0"}
    assert second["merge_record"]["JobState"] == "COMPLETED"
    assert second["merge_record"]["ExitCode"] == "0:0"
    run = second["run"]
    report = (run / "merged" / "report.md").read_text()
    for entry in ENTRIES:
        assert entry in report
    merged_results = list((run / "merged" / "results").rglob("*.json"))
    assert len(merged_results) == 4
    # Each task its own history; the shared one got this night's 4 results once.
    histories = sorted((run / "histories").glob("*.jsonl"))
    assert [h.name for h in histories] == ["1.jsonl", "2.jsonl", "3.jsonl"]
    assert sum(len(h.read_text().splitlines()) for h in histories) == 4
    shared = tmp_path / "runs" / "history.jsonl"
    assert len(shared.read_text().splitlines()) == 8  # two nights of 4
    log = next((tmp_path / "runs" / "logs").glob(f"{second['merge']}-merge.log")).read_text()
    assert "merged 4 results from 3 run folders" in log

    # A task that never delivered: its entries are named missing and the merge fails.
    shards = sorted((run / "shards").iterdir())
    lost = shards[-1]
    lost_entries = {str(p.relative_to(lost / "results").with_suffix(""))
                    for p in (lost / "results").rglob("*.json")}
    proc = subprocess.run(
        [env["QA_BENCH"], "merge", *map(str, shards[:-1]), "--out", str(tmp_path / "half"),
         "--profile", "nightly-rehearsal", "--baselines", str(baselines),
         "--history", str(tmp_path / "half.jsonl")],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for entry in lost_entries:
        assert f"missing: {entry}" in proc.stdout, proc.stdout
