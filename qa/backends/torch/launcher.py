"""Multi-replica torch runs: the entry runs under torchrun, one result comes back.

The parent process (CLI or pytest) launches ``torchrun --standalone --nproc_per_node N`` on this
module with the entry's config; every rank runs the whole pipeline (each trains on its shard of
every global batch and predicts its shard of the features), and rank 0 writes the RunResult.
Throughput is therefore the global figure and EM/F1 are computed once, on rank 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from qa.config import RunConfig
from qa.results import RunResult, load_result, write_json_atomic


def torchrun_command(replicas: int, config_path: Path, out_path: Path) -> list[str]:
    """The torchrun command line for one entry."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={replicas}", "-m", "qa.backends.torch.launcher", str(config_path),
            str(out_path)]


def run_under_torchrun(config: RunConfig, options: Any) -> RunResult:
    """Run ``config`` under torchrun with ``config.hardware.replicas`` processes."""
    from qa.pipeline import result_key

    with tempfile.TemporaryDirectory(prefix="qa-bench-ddp-") as tmp:
        config_path, out_path = Path(tmp) / "config.json", Path(tmp) / "result.json"
        write_json_atomic(config_path, {"config": config.to_dict(),
                                        "cache_dir": str(options.cache_dir or ""),
                                        "progress": options.progress})
        env = dict(os.environ)
        # torchrun defaults OMP_NUM_THREADS to 1 per process; make the split explicit.
        if config.hardware.threads:
            env["OMP_NUM_THREADS"] = str(config.hardware.threads)
        proc = subprocess.run(torchrun_command(config.hardware.replicas, config_path, out_path),
                              env=env, stdout=sys.stderr, check=False)
        if out_path.exists():
            return load_result(out_path)
        return RunResult(key=result_key(config), config=config.to_dict(), status="failed",
                         failure={"stage": "torchrun",
                                  "cause": f"torchrun exited with code {proc.returncode} "
                                           "before rank 0 wrote a result"})


def _worker(config_path: str, out_path: str) -> int:
    from qa.pipeline import run_entry

    raw = json.loads(Path(config_path).read_text(encoding="utf-8"))
    config = RunConfig.from_dict(raw["config"])
    cache = Path(raw["cache_dir"]) if raw["cache_dir"] else None
    result = run_entry(config, cache, raw["progress"])
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    if rank == 0:
        write_json_atomic(out_path, result.to_dict())
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return 0 if result.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1], sys.argv[2]))
