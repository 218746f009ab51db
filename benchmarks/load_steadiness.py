"""Is CPU throughput normalised by the in-run matmul probe steadier than raw samples/s under load?

On a shared machine another job takes cores for a while: raw samples/s drops and a timing gate
fires though the code did not change. The smoke run also measures the machine's matmul speed
at each periodic evaluation (``timings.probe_during_training``), so training speed can be
expressed per probe GFLOP (``timings.train_samples_per_probe_gflop``). This script runs a short
smoke entry (each in its own process) alternately on the machine as it is and beside a CPU hog
(``--hogs`` busy-looping processes), and prints both measures' change under load, their spread, and
the share of the CPUs other processes used while each run was timed (what the "busy machine"
verdict reads, ``qa.measure.contention``).

    python benchmarks/load_steadiness.py --out reports/steadiness --rounds 3 --hogs 1

Runs already in ``--out`` are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHORT = ("train.num_train_epochs=1", "target.every=0.1")


def run(folder: Path, hogs: int, sets: list[str]) -> dict[str, Any]:
    """One short smoke run beside ``hogs`` busy-looping processes; its timings."""
    files = sorted((folder / "results").rglob("*.json")) if folder.exists() else []
    if not files:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(hogs)]
        try:
            args = [sys.executable, "-m", "qa.frontends.cli", "run", "--profile", "smoke",
                    "--no-progress",
                    "--out", str(folder)]
            for item in (*SHORT, *sets):
                args += ["--set", item]
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
            subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        files = sorted((folder / "results").rglob("*.json"))
        if not files:
            raise SystemExit(f"{folder}: the run wrote no result")
    timings = json.loads(files[0].read_text())["timings"]
    return {"raw": timings["train_samples_per_s"],
            "normalised": timings.get("train_samples_per_probe_gflop"),
            "other_cpu_share": (timings.get("contention") or {}).get("other_cpu_share")}


def spread(values: list[float]) -> float:
    """(max - min) / median."""
    return (max(values) - min(values)) / statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=1, help="busy-looping processes under load")
    parser.add_argument("--set", action="append", default=[], help="config override")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {"as is": [], "loaded": []}
    for i in range(args.rounds):  # alternating, so a drift of the machine hits both
        runs["as is"].append(run(args.out / f"quiet{i}", 0, args.set))
        runs["loaded"].append(run(args.out / f"loaded{i}", args.hogs, args.set))
    lines = ["| measure | as is (median) | loaded (median) | loaded / as is | spread as is | "
             "spread over all runs |", "|---|---|---|---|---|---|"]
    for measure in ("raw", "normalised"):
        quiet = [r[measure] for r in runs["as is"]]
        loaded = [r[measure] for r in runs["loaded"]]
        if None in quiet or None in loaded:
            continue
        lines.append(f"| {measure} | {statistics.median(quiet):.4g} | "
                     f"{statistics.median(loaded):.4g} | "
                     f"{statistics.median(loaded) / statistics.median(quiet):.3f} | "
                     f"{spread(quiet) * 100:.1f} % | {spread(quiet + loaded) * 100:.1f} % |")
    shares = {k: [r["other_cpu_share"] for r in v] for k, v in runs.items()}
    lines += ["", "other processes' share of the CPUs while timed (qa.measure.contention): "
              + "; ".join(f"{k}: {', '.join(f'{x:.2f}' for x in v if x is not None)}"
                          for k, v in shares.items())]
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "steadiness.md").write_text(text)
    (args.out / "steadiness.json").write_text(json.dumps(runs, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
