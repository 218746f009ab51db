"""Every stop ends like Ctrl-C: a real ``qa-bench run`` process stopped by SIGTERM or SIGHUP
keeps its finished results and the history, writes the partial report marked incomplete, and
exits 128 + N (``qa.run.stopping``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Two tiny entries: the first finishes in seconds, the second would train for hours.
PROFILE = """
description = "two tiny entries: the second never ends by itself"
backend = "torch"
models = ["tiny-roformer"]
pods = ["cpu"]
datasets = ["synthetic", "synthetic_v2"]
seeds = [42]

[defaults.data]
synthetic_train_contexts = 40
synthetic_validation_contexts = 10
max_length = 128
doc_stride = 64

[defaults.model]
vocab_size = 500

[defaults.train]
max_steps = 4
compile_eval = false
timing_warmup_steps = 1

[defaults.target]
every = 0.0

[dataset.synthetic_v2.train]
max_steps = 1000000
"""


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_run_like_ctrl_c(tmp_path: Path, sig: signal.Signals) -> None:
    profile = tmp_path / "two.toml"
    profile.write_text(PROFILE)
    out = tmp_path / "runs" / "run"
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.frontends.cli", "run", "--profile", str(profile), "--out",
         str(out), "--baselines", str(tmp_path / "none"), "--no-progress"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((out / "results").rglob("*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(2)  # the second entry is preparing or training now
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr[-2000:]
    assert f"stopped by {sig.name}" in stderr and "Traceback" not in stderr
    report = (out / "report.md").read_text()
    assert "INCOMPLETE" in report and f"stopped by {sig.name}" in report
    (kept,) = list((out / "results").rglob("*.json"))
    assert json.loads(kept.read_text())["status"] == "ok"
    history = (tmp_path / "runs" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 and json.loads(history[0])["status"] == "ok"
