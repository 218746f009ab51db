"""Multi-replica torch runs: the entry runs under torchrun, one result comes back.

The parent process (CLI or pytest) launches ``torchrun --standalone --nproc_per_node N`` on this
module with the entry's config; every rank runs the whole pipeline (each trains on its shard of
every global batch and predicts its shard of the features), and rank 0 computes the RunResult.
Throughput is therefore the global figure and EM/F1 are computed once, on rank 0.

Across hosts (``torch.nodes`` > 1) every host starts the same command with its own
``--node-rank``; their torchrun launchers meet at a c10d rendezvous (``torch.rdzv_endpoint``),
which hands out the global ranks. Rank 0 may be on any host, so it broadcasts its RunResult and
every host's local rank 0 writes it: each host's run folder holds the same result and verdict.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from qa import progress
from qa.config.schema import RunConfig, config_hash
from qa.files import write_json_atomic
from qa.launchers import LaunchFailed, Worker, dotted_name
from qa.results.store import RunResult, load_result


def torchrun_command(config: RunConfig, config_path: Path, out_path: Path) -> list[str]:
    """The torchrun command line for one entry (one host's part of it when nodes > 1)."""
    hw = config.torch  # the torch backend's own settings
    if hw.nodes > 1:
        # Every host derives the same rendezvous id from the entry, so two entries (or seeds)
        # started at once on the same endpoint never join each other's group.
        rdzv_id = f"qa-bench-{config_hash(config)}-{config.train.seed}"
        where = [f"--nnodes={hw.nodes}", f"--node_rank={hw.node_rank}", "--rdzv_backend=c10d",
                 f"--rdzv_endpoint={hw.rdzv_endpoint}", f"--rdzv_id={rdzv_id}"]
    else:
        where = ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *where,
            f"--nproc_per_node={hw.replicas}", "-m", __name__,
            str(config_path), str(out_path)]


def run_under_torchrun(config: RunConfig, options: Any, worker: Worker) -> RunResult:
    """Run ``worker`` for ``config`` under torchrun: ``torch.replicas`` processes on each of
    ``torch.nodes`` hosts; every process imports ``worker`` by its dotted name.

    Raises:
        LaunchFailed: torchrun ended before rank 0 wrote a result.
    """
    with tempfile.TemporaryDirectory(prefix="qa-bench-ddp-") as tmp:
        config_path, out_path = Path(tmp) / "config.json", Path(tmp) / "result.json"
        write_json_atomic(config_path, {"config": config.to_dict(),
                                        "cache_dir": str(options.cache_dir or ""),
                                        "progress": options.progress,
                                        "reporter": _child_spec(options),
                                        "worker": dotted_name(worker)})
        env = dict(os.environ)
        # torchrun defaults OMP_NUM_THREADS to 1 per process; make the split explicit.
        if config.hardware.threads:
            env["OMP_NUM_THREADS"] = str(config.hardware.threads)
        proc = subprocess.run(torchrun_command(config, config_path, out_path),
                              env=env, stdout=sys.stderr, check=False)
        if out_path.exists():
            return load_result(out_path)
        raise LaunchFailed("torchrun", f"torchrun exited with code {proc.returncode} before a "
                                       "result was written")


def _child_spec(options: Any) -> dict[str, Any] | None:
    reporter = getattr(options, "reporter", None)
    return reporter.child_spec() if reporter is not None else None


def _worker(config_path: str, out_path: str) -> int:
    raw = json.loads(Path(config_path).read_text(encoding="utf-8"))
    module, _, name = raw["worker"].partition(":")
    run = getattr(importlib.import_module(module), name)
    config = RunConfig.from_dict(raw["config"])
    cache = Path(raw["cache_dir"]) if raw["cache_dir"] else None
    # Rank 0 shows its stages under the parent's run line; the other ranks stay quiet.
    spec = raw.get("reporter") if os.environ.get("RANK", "0") == "0" else None
    with progress.use(progress.from_spec(spec)):
        result = run(config, cache, raw["progress"])
    import torch.distributed as dist

    data = result.to_dict()
    distributed = dist.is_available() and dist.is_initialized()
    if distributed:
        # Rank 0's result (the one with EM/F1) to every host; the group is gloo or nccl, and
        # broadcast_object_list handles both.
        box = [data if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        data = box[0]
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        write_json_atomic(out_path, data)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return 0 if data.get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1], sys.argv[2]))
