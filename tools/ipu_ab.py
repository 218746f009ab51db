#!/usr/bin/env python3
"""The emulated SDK A/B, checked: its verdict must be "no change" for the same SDK on both sides
and "regression" for an injected trainer bug.

    python tools/ipu_ab.py --out DIR [--tries 5] [--fault skip-set-optimizer] [--profile P]
    python tools/ipu_ab.py --judge A_RUN B_RUN      # two finished runs, e.g. two SDKs

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
import concurrent.futures
import math
import os
import statistics
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
    # tox picks a random PYTHONHASHSEED per invocation; measured: sides run under different
    # hash seeds (and sides building the cache at once) started from different first losses.
    env["PYTHONHASHSEED"] = "0"
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


def per_seed(run: Path, metric: str) -> dict[int, float]:
    """{seed: value} of the run's one entry (the A/B profile has one)."""
    from qa.results.store import load_run_dir

    results = [r for r in load_run_dir(run) if r.status == "ok"]
    if len(results) != 1:
        raise SystemExit(f"ipu_ab: {run} holds {len(results)} finished entries, expected 1")
    return {int(s["seed"]): float(s[metric]) for s in results[0].seeds}


def paired(a: Path, b: Path) -> tuple[str, list[str]]:
    """The A/B verdict from seed-paired differences (the same seeds on both sides).

    The emulated runs are deterministic, so the same SDK gives d = 0 for every seed: "no
    change" is every |d| <= 1 point. A regression is a mean difference below -1 point and
    beyond 3 standard errors of the paired differences (their own measured spread); an
    improvement the same upwards; anything else "changed within the seeds' spread".
    """
    words, lines = [], []
    for metric in ACCURACY:
        va, vb = per_seed(a, metric), per_seed(b, metric)
        seeds = sorted(set(va) & set(vb))
        if len(seeds) < 2:
            raise SystemExit(f"ipu_ab: fewer than 2 shared seeds between {a} and {b}")
        d = [vb[s] - va[s] for s in seeds]
        mean = statistics.fmean(d)
        sem = statistics.stdev(d) / math.sqrt(len(d))
        margin = max(1.0, 3 * sem)
        if all(abs(x) <= 1.0 for x in d):
            word = "no change"
        elif mean < -margin:
            word = "regression"
        elif mean > margin:
            word = "improvement"
        else:
            word = "changed within the seeds' spread"
        words.append(word)
        lines.append(f"{metric}: per seed {', '.join(f'{va[s]:.2f}->{vb[s]:.2f}' for s in seeds)};"
                     f" mean d {mean:+.2f}, 3 s.e. {3 * sem:.2f} -> {word}")
    overall = ("regression" if "regression" in words else "improvement" if "improvement" in
               words else "no change" if all(w == "no change" for w in words) else
               "changed within the seeds' spread")
    return overall, lines


def unpaired(a: Path, b: Path) -> tuple[str, str]:
    """``qa-bench compare``'s own accuracy verdict (unpaired: max(1, 3 sigma of A's seeds))."""
    from qa.reporting.compare import compare_runs, comparisons_of
    from qa.results.store import load_run_dir

    results_a, results_b = load_run_dir(a), load_run_dir(b)
    table, _ = compare_runs(results_a, results_b, a_label="A", b_label=b.name)
    rows = [c for c in comparisons_of(results_a, results_b)[0]
            if c.metric in ACCURACY or c.metric == "status"]
    changes = {c.change for c in rows}
    word = ("regression" if "regression" in changes else
            "improvement" if "improvement" in changes else "no change")
    return word, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where the sides' runs go")
    parser.add_argument("--judge", nargs=2, type=Path, metavar=("A", "B"),
                        help="only judge two finished runs of the profile (e.g. side A on "
                             "optimum-graphcore 0.7.1, side B on 0.6.0): exit 1 on a regression")
    parser.add_argument("--profile", default="ipu-emulated-ab")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--fault", default="skip-set-optimizer")
    parser.add_argument("--a", type=Path, default=None,
                        help="reuse this finished side A (a run folder of the same profile)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="sides run at once after A (each one OpenMP thread)")
    args = parser.parse_args(argv)
    if args.judge:
        word, lines = paired(*args.judge)
        compare_word, table = unpaired(*args.judge)
        print(f"{args.judge[0]} -> {args.judge[1]}: **{word}** (qa-bench compare, unpaired: "
              f"{compare_word})")
        print("\n".join(f"- {line}" for line in lines) + "\n\n" + table)
        return 1 if word == "regression" else 0
    if args.out is None:
        parser.error("--out is required unless --judge is given")
    started = time.perf_counter()
    # A fresh folder per call: qa-bench refuses to run into a folder that holds a run.
    args.out = args.out / time.strftime("%Y%m%d-%H%M%S")
    walls: dict[str, float] = {}
    if args.a is None:
        a = args.out / "A"
        walls["A"] = run_side(args.profile, a)
    else:
        a, walls["A"] = args.a, 0.0
    faulty = args.out / f"fault-{args.fault}"
    sides = [(faulty, args.fault)] + [(args.out / f"same-{i}", None)
                                      for i in range(1, args.tries + 1)]
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {side.name: pool.submit(run_side, args.profile, side, fault)
                   for side, fault in sides}
        walls.update({name: future.result() for name, future in futures.items()})
    print(f"## emulated SDK A/B ({args.profile}): A vs {args.tries} same-SDK runs, "
          f"and vs fault {args.fault}\n")
    outcomes = []
    for side, _ in sides[1:] + sides[:1]:
        word, lines = paired(a, side)
        compare_word, table = unpaired(a, side)
        outcomes.append((side.name, word))
        print(f"- {side.name}: **{word}** (qa-bench compare, unpaired: {compare_word}); "
              f"{walls[side.name]:.0f} s wall")
        for line in lines:
            print(f"  - {line}")
    fault_word = outcomes.pop()[1]
    print(f"\nside A: {walls['A']:.0f} s{' (reused)' if args.a else ''}; total "
          f"{time.perf_counter() - started:.0f} s wall with {args.jobs} side(s) at once\n")
    print(table)  # qa-bench compare's table for the fault side
    same_ok = all(word == "no change" for _, word in outcomes)
    caught = fault_word == "regression"
    print(f"same SDK: {sum(w == 'no change' for _, w in outcomes)} of {len(outcomes)} "
          f"'no change'; fault {args.fault}: {fault_word}")
    return 0 if same_ok and caught else 1


if __name__ == "__main__":
    sys.exit(main())
