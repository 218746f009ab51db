"""One entry trained data-parallel across hosts: torchrun's multi-node options, passed through.

The end-to-end test starts two ``qa-bench run`` processes on this machine as two "nodes" (one
torchrun launcher each, c10d rendezvous on localhost, gloo): both must train as one world of two
processes and both run folders must hold rank 0's result.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.launchers.torchrun import torchrun_command
from qa.run.runner import prepare_run

TINY = ["data.synthetic_train_contexts=40", "data.synthetic_validation_contexts=8",
        "data.max_length=128", "data.doc_stride=64", "train.max_steps=6", "target.every=0",
        "train.compile_eval=false", "train.eval_timing_rounds=1", "model.vocab_size=800",
        "hardware.threads=1", "torch.device=cpu"]


def _config(**settings: object) -> RunConfig:
    return RunConfig.from_dict({"torch": settings})


def test_one_host_is_standalone_and_nodes_meet_at_the_rendezvous(tmp_path: Path) -> None:
    single = torchrun_command(_config(replicas=2), tmp_path / "c", tmp_path / "o")
    assert "--standalone" in single and "--nproc_per_node=2" in single
    assert not any(a.startswith("--nnodes") for a in single)
    nodes = [torchrun_command(_config(replicas=2, nodes=2, node_rank=k,
                                      rdzv_endpoint="head:29400"), tmp_path / "c", tmp_path / "o")
             for k in (0, 1)]
    for k, cmd in enumerate(nodes):
        assert "--standalone" not in cmd
        assert {"--nnodes=2", f"--node_rank={k}", "--rdzv_backend=c10d",
                "--rdzv_endpoint=head:29400", "--nproc_per_node=2"} <= set(cmd)
    ids = [[a for a in cmd if a.startswith("--rdzv_id=")] for cmd in nodes]
    assert ids[0] == ids[1] and len(ids[0]) == 1  # both hosts join the same group
    other_seed = RunConfig.from_dict({"torch": {"nodes": 2, "rdzv_endpoint": "head:29400"},
                                      "train": {"seed": 43}})
    assert [a for a in torchrun_command(other_seed, tmp_path, tmp_path)
            if a.startswith("--rdzv_id=")] != ids[0]  # another seed never joins this group


@pytest.mark.parametrize("hardware, message", [
    ({"nodes": 2}, "needs torch.rdzv_endpoint"),
    # One format for every refusal (qa.config.validation): the field, its value, what is allowed.
    ({"nodes": 2, "node_rank": 2, "rdzv_endpoint": "h:1"},
     "torch.node_rank = 2: must be in 0 .. 1"),
    ({"nodes": 0}, "torch.nodes = 0: must be an integer >= 1"),
    ({"replicas": 0}, "torch.replicas = 0: must be an integer >= 1"),
])
def test_bad_node_settings_are_one_clear_error(hardware: dict, message: str) -> None:
    with pytest.raises(QABenchError, match=message):
        _config(**hardware)


def test_multinode_options_become_the_entrys_hardware(tmp_path: Path) -> None:
    from qa.frontends.options import RUN_OPTIONS, dest

    values = {dest(flag).removeprefix("qa_"): kw.get("default") for flag, kw in RUN_OPTIONS}
    values.update(profile="smoke", set=[], out=str(tmp_path / "run"), nnodes=2, node_rank=1,
                  rdzv_endpoint="127.0.0.1:29500")
    hw = prepare_run(values, tmp_path).entries[0].config.torch
    assert (hw.nodes, hw.node_rank, hw.rdzv_endpoint, hw.world_size) == (
        2, 1, "127.0.0.1:29500", 2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.e2e
@pytest.mark.slow
def test_two_nodes_on_this_machine_train_one_entry(tmp_path: Path) -> None:
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    sets = [arg for item in TINY for arg in ("--set", item)]
    endpoint = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "qa.frontends.cli", "run", "--profile", "smoke", "--nnodes", "2",
         "--node-rank", str(k), "--rdzv-endpoint", endpoint, "--out", str(tmp_path / f"node{k}"),
         "--baselines", str(tmp_path / "none"), "--no-progress", *sets],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for k in (0, 1)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        # Trained and finished, but no baseline judged it: never green (exit 5).
        assert proc.returncode == 5 and "nothing was judged" in out, out[-3000:]
    results = []
    for k in (0, 1):
        files = list((tmp_path / f"node{k}" / "results").rglob("*.json"))
        assert [f.parent.name for f in files] == ["cpux1n2"]
        results.append(json.loads(files[0].read_text()))
    first, second = results
    assert first["status"] == "ok"
    assert first["timings"]["world_size"] == 2  # the two launchers formed one group
    assert first["hardware"]["nodes"] == 2 and first["config"]["torch"]["nodes"] == 2
    assert first["timings"]["train_samples_per_s"] > 0
    # Rank 0's result on both hosts: the same metrics and timings, whichever host it ran on.
    assert first["metrics"] == second["metrics"] and first["timings"] == second["timings"]
