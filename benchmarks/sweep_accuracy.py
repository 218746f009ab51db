"""The accuracy sweep: is the embedded default's EM a property of the code, or of float rounding?

Runs the smoke profile once per (torch build, thread count, seed), each in its own process
(``qa-bench run`` of that build's virtual environment), and prints the distribution of EM/F1
and of the time-to-target crossing per condition. Float rounding differs across CPU models,
torch builds and thread counts; a default whose accuracy depends on it cannot carry a portable
gate. The committed smoke baseline is written from such a sweep (``--update-baselines``), so
the accuracy gate is as wide as the measured spread and no wider.

    python benchmarks/sweep_accuracy.py --out reports/sweep \\
        --build cpu=.venv:1,2,4 --build cuda=/path/to/cuda-build/.venv:2 --seeds 42,43,44,45,46

Runs already in ``--out`` are reused (the sweep resumes after an interruption). Exit 1 when the
criteria (``--min-em``, ``--max-spread``) do not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_build(text: str) -> tuple[str, Path, list[int]]:
    """``label=VENV:1,2,4`` → (label, venv's qa-bench, thread counts)."""
    label, _, rest = text.partition("=")
    venv, _, threads = rest.rpartition(":")
    if not label or not venv or not threads:
        raise argparse.ArgumentTypeError(f"--build expects LABEL=VENV:THREADS, got {text!r}")
    exe = Path(venv) / "bin" / "qa-bench"
    if not exe.exists():
        raise argparse.ArgumentTypeError(f"--build {label}: {exe} does not exist")
    return label, exe, [int(t) for t in threads.split(",")]


def run_one(exe: Path, folder: Path, seed: int, threads: int, sets: list[str]) -> dict[str, Any]:
    """One smoke run in a fresh process; its RunResult (reused when already there)."""
    results = sorted((folder / "results").rglob("*.json")) if folder.exists() else []
    if not results:
        args = [str(exe), "run", "--profile", "smoke", "--no-progress", "--out", str(folder),
                "--set", f"train.seed={seed}", "--set", f"hardware.threads={threads}"]
        for item in sets:
            args += ["--set", item]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        began = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, text=True)
        print(f"  {folder.name}: exit {proc.returncode} in {time.perf_counter() - began:.0f} s",
              flush=True)
        results = sorted((folder / "results").rglob("*.json"))
        if not results:
            raise SystemExit(f"{folder}: no result ({proc.stderr.strip()[-300:]})")
    return json.loads(results[0].read_text())


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """EM/F1 distribution and the time-to-target crossing of a set of runs."""
    em = [r["metrics"]["exact_match"] for r in runs]
    f1 = [r["metrics"]["f1"] for r in runs]
    ttt = [r["timings"].get("time_to_target") or {} for r in runs]
    steps = [t.get("steps") for t in ttt]
    fractions = [t.get("fraction") for t in ttt]
    reached = [s for s in steps if s is not None]
    return {
        "runs": len(runs), "em_min": min(em), "em_median": statistics.median(em),
        "em_max": max(em), "f1_min": min(f1), "f1_median": statistics.median(f1),
        "cross_step_median": statistics.median(reached) if reached else None,
        "cross_step_max": max(reached) if reached else None,
        "cross_fraction_max": max((f for f in fractions if f is not None), default=None),
        "never_reached": sum(s is None for s in steps),
        "train_s_median": statistics.median(r["timings"]["train_total_s"] for r in runs),
        "wall_s_median": statistics.median(r["timings"]["wall_s"] for r in runs),
        "target": next((t.get("target") for t in ttt if t), None),
    }


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """The distribution table (markdown)."""
    head = ("| condition | runs | EM min | EM median | EM max | F1 min | crossing step median "
            "(max) | crossing, share of training (max) | never reached | train s (median) |")
    lines = [head, "|" + "---|" * 10]
    for name, s in rows:
        cross = (f"{s['cross_step_median']:.0f} ({s['cross_step_max']})"
                 if s["cross_step_median"] is not None else "—")
        share = f"{s['cross_fraction_max'] * 100:.0f} %" if s["cross_fraction_max"] else "—"
        lines.append(f"| {name} | {s['runs']} | {s['em_min']:.2f} | {s['em_median']:.2f} | "
                     f"{s['em_max']:.2f} | {s['f1_min']:.2f} | {cross} | {share} | "
                     f"{s['never_reached']} | {s['train_s_median']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="sweep folder (resumable)")
    parser.add_argument("--build", type=parse_build, action="append",
                        help="LABEL=VENV:THREADS, e.g. cpu=.venv:1,2,4 (repeatable; default: "
                             "this interpreter's venv with threads 1,2,4)")
    parser.add_argument("--seeds", default="42,43,44,45,46")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--min-em", type=float, default=95.0)
    parser.add_argument("--max-spread", type=float, default=3.0)
    parser.add_argument("--update-baselines", type=Path, metavar="BASELINES_DIR",
                        help="write the smoke baseline from every run of the sweep")
    args = parser.parse_args(argv)
    builds = args.build or [parse_build(f"this={Path(sys.executable).parent.parent}:1,2,4")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[tuple[str, dict[str, Any]]] = []
    everything: list[dict[str, Any]] = []
    folders: list[Path] = []
    for label, exe, thread_counts in builds:
        for threads in thread_counts:
            name = f"{label} torch, {threads} thread{'s' if threads > 1 else ''}"
            print(f"{name}:", flush=True)
            runs = []
            for seed in seeds:
                folder = args.out / f"{label}-t{threads}" / f"seed{seed}"
                runs.append(run_one(exe, folder, seed, threads, args.set))
                folders.append(folder)
            rows.append((name, summarise(runs)))
            everything += runs
    overall = summarise(everything)
    rows.append(("all", overall))
    spread = overall["em_max"] - overall["em_min"]
    ok = overall["em_min"] >= args.min_em and spread <= args.max_spread
    text = (table(rows) + f"\n\nEM over all {overall['runs']} runs: min {overall['em_min']:.2f}, "
            f"max {overall['em_max']:.2f}, spread {spread:.2f} points — criteria (min ≥ "
            f"{args.min_em:g}, spread ≤ {args.max_spread:g}): {'met' if ok else 'NOT met'}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.md").write_text(text)
    (args.out / "sweep.json").write_text(json.dumps(dict(rows), indent=2))
    print(text)
    if args.update_baselines:
        from qa.gating.baseline_guard import guarded_update
        from qa.results.store import load_run_dir

        results = [r for folder in folders for r in load_run_dir(folder)]
        outcome = guarded_update(args.update_baselines, results,
                                 force_flag="`qa-bench baseline --force` over the sweep folders")
        print("\n".join(outcome.lines))
        if outcome.refused:
            return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
