#!/usr/bin/env python3
"""The emulated SDK A/B, checked: its verdict must be "no change" for the same SDK on both sides
and "regression" for an injected trainer bug.

    python tools/ipu_ab.py --out DIR [--tries 5] [--fault skip-set-optimizer] [--profile P]

run in the ipu-emulated tox environment (create it once with ``tox -e ipu-emulated``)::

    tox exec -e ipu-emulated -- python tools/ipu_ab.py --out .tox/ipu-emulated-ab

Side A runs the profile (several seeds: the spread the verdict is judged against, ``qa-bench
compare``'s ``max(1 point, 3 sigma of A's seeds)``); then ``--tries`` fresh runs of the same SDK
are each compared with A, and one run with ``QA_BENCH_IPU_EMULATION_FAULT`` set (the emulation
then behaves as if optimum-graphcore had that bug). The emulated runs are deterministic (seeded
data order, initialisation and stochastic rounding on one CPU), so the same SDK gives bit-
identical accuracy: a deterministic pair, with the seeds' spread for real differences.

Only accuracy (EM, F1) is judged: timings on the emulation are CPU timings of a shared machine,
no SDK's. Exit 0 when every same-SDK try is "no change" and the fault is a regression, 1
otherwise; the table of each comparison and the wall times are printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

FAULT_ENV = "QA_BENCH_IPU_EMULATION_FAULT"
ACCURACY = ("exact_match", "f1")


def run_side(profile: str, out: Path, fault: str | None = None) -> float:
    """One side of the A/B (every seed of the profile); its wall seconds."""
    env = dict(os.environ)
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    started = time.perf_counter()
    # Exit 5: nothing judged (no baseline for this emulated profile): the results are what we
    # compare; any other non-zero exit is a failed entry.
    code = subprocess.run([sys.executable, "-m", "qa.frontends.cli", "run", "--profile",
                           profile, "--out", str(out), "--no-progress"], env=env,
                          stdout=subprocess.DEVNULL, check=False).returncode
    if code not in (0, 5):
        raise SystemExit(f"ipu_ab: the run into {out} failed (exit {code})")
    return time.perf_counter() - started


def verdict(a: Path, b: Path) -> tuple[str, str, list[tuple[str, float, float, float]]]:
    """("no change" | "regression" | "improvement", the markdown, (metric, A, B, tolerance))."""
    from qa.reporting.compare import compare_runs, comparisons_of
    from qa.results.store import load_run_dir

    results_a, results_b = load_run_dir(a), load_run_dir(b)
    table, _ = compare_runs(results_a, results_b, a_label="A", b_label=b.name)
    comparisons, _ = comparisons_of(results_a, results_b)
    rows = [c for c in comparisons if c.metric in ACCURACY or c.metric == "status"]
    changes = {c.change for c in rows}
    word = ("regression" if "regression" in changes else
            "improvement" if "improvement" in changes else
            "no change" if rows else "not compared")
    return word, table, [(c.metric, c.a, c.b, c.tolerance) for c in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--profile", default="ipu-emulated-ab")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--fault", default="skip-set-optimizer")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # A fresh folder per call: qa-bench refuses to run into a folder that holds a run.
    args.out = args.out / time.strftime("%Y%m%d-%H%M%S")
    a = args.out / "A"
    walls = {"A": run_side(args.profile, a)}
    outcomes = []
    for i in range(1, args.tries + 1):
        side = args.out / f"same-{i}"
        walls[side.name] = run_side(args.profile, side)
        word, _, rows = verdict(a, side)
        outcomes.append((side.name, word, rows))
    faulty = args.out / f"fault-{args.fault}"
    walls[faulty.name] = run_side(args.profile, faulty, fault=args.fault)
    fault_word, fault_table, fault_rows = verdict(a, faulty)
    print(f"## emulated SDK A/B ({args.profile}): A vs {args.tries} same-SDK runs, "
          f"and vs fault {args.fault}\n")
    for name, word, rows in outcomes + [(faulty.name, fault_word, fault_rows)]:
        detail = "; ".join(f"{m} {va:.2f} -> {vb:.2f} (tolerance {t:.2f})"
                           for m, va, vb, t in rows if va is not None and vb is not None)
        print(f"- {name}: **{word}** — {detail} — {walls[name]:.0f} s")
    print(f"\nside A: {walls['A']:.0f} s; total {time.perf_counter() - started:.0f} s wall\n")
    print(fault_table)
    same_ok = all(word == "no change" for _, word, _ in outcomes)
    caught = fault_word == "regression"
    print(f"same SDK: {sum(w == 'no change' for _, w, _ in outcomes)} of {len(outcomes)} "
          f"'no change'; fault {args.fault}: {fault_word}")
    return 0 if same_ok and caught else 1


if __name__ == "__main__":
    sys.exit(main())
