"""``qa-bench merge`` on a light install: no torch, transformers or datasets imported.

The nightly workflow's merge job installs qa-bench without its training dependencies
(constraints/merge.txt). This runs the real merge of two shard folders, ``--profile`` included
(which expands the profile and so loads its backend's class: here the torch backend's), in a
subprocess where importing any training library raises, as on that install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qa.files import write_json_atomic
from qa.results.store import RunResult, save_result
from qa.run import profiles, sharding
from qa.run.manifest import build_manifest, write_manifest
from qa.run.pipeline import result_key

HEAVY = ("torch", "transformers", "datasets", "tokenizers", "accelerate", "evaluate",
         "safetensors")
PROFILE = """
description = "four tiny entries"
backend = "torch"
models = ["tiny-roformer", "tiny-bert"]
pods = ["cpu"]
datasets = ["synthetic", "synthetic_v2"]
seeds = [42]
"""
# Run in the child: training libraries cannot be imported, then the CLI's merge.
CHILD = f"""
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ImportError("not installed on the light merge install: " + name)
sys.meta_path.insert(0, Absent())
from qa.frontends.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print("heavy modules loaded:", loaded)
sys.exit(code)
"""


def _shards(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    profile = tmp_path / "four.toml"
    profile.write_text(PROFILE)
    plan = sharding.plan_shards(profiles.expand(profiles.load_profile(str(profile))), 2)
    baselines = tmp_path / "baselines"
    folders = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        write_manifest(out, build_manifest("four", plan, k, [42]))
        for a in plan.shard(k):
            key = result_key(a.entry.config)
            save_result(RunResult(key=key, config=a.entry.config.to_dict(),
                                  metrics={"exact_match": 80.0, "f1": 85.0}, status="ok",
                                  environment={"git_commit": "c0ffee1"},
                                  started_at="2026-12-01T01:00:00",
                                  finished_at="2026-12-01T02:00:00"),
                        out, tmp_path / f"shard{k}.jsonl")
            write_json_atomic(
                baselines / key["backend"] / key["pod"] / f"{key['model']}__{key['dataset']}.json",
                {"key": key, "provenance": {"measured_by": "test", "date": "2026-12-01"},
                 "metrics": {"f1": {"value": 85.0, "tolerance": 1.0, "unit": "points",
                                    "higher_is_better": True}}})
        folders.append(out)
    return profile, folders, baselines


def test_merge_with_profile_imports_no_training_library(tmp_path: Path) -> None:
    profile, folders, baselines = _shards(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "merge", *map(str, folders), "--out",
         str(tmp_path / "merged"), "--profile", str(profile), "--baselines", str(baselines),
         "--history", str(tmp_path / "history.jsonl")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "heavy modules loaded: []" in proc.stdout
    assert "merged 4 results from 2 run folders" in proc.stdout
    assert (tmp_path / "merged" / "report.md").exists()


def test_the_light_child_really_has_no_torch(tmp_path: Path) -> None:
    """The stand-in for the light install holds: a command that trains cannot start in it."""
    proc = subprocess.run([sys.executable, "-c", CHILD.replace(
        "from qa.frontends.cli import main", "import torch.nn\nfrom qa.frontends.cli import main"),
        "config"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "not installed on the light merge install: torch" in proc.stderr
