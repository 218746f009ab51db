"""The detection table: does the smoke run's accuracy gate catch real pipeline bugs?

Runs the smoke profile (``qa-bench run``, each in its own process) on the unchanged tree and
once per injected bug, and prints for each: the exit code, EM/F1 and their verdicts against the
committed baseline. A gate that cannot fail is no gate; one that fires on an unchanged tree is
a false alarm. Bugs come from ordinary config overrides or from the test-only fault hook
(``$QA_BENCH_INJECT_FAULT``, see ``qa/task/faults.py``).

    python benchmarks/detection.py --out reports/detection [--only lr0,label_shift] [--set ...]

Runs already in ``--out`` are reused; with ``--rejudge`` they are judged again against
``--baselines`` (``qa-bench report``, the same rules and exit code as the run) instead, e.g. after
the baseline was rewritten from a new sweep. Exit 1 when a bug goes undetected or the clean run
fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: (name, description, --set overrides, injected fault)
CASES: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    ("clean", "unchanged tree (must pass)", (), None),
    ("lr0", "train.learning_rate=0 (the model never trains)", ("train.learning_rate=0",), None),
    ("label_shift", "training labels shifted by one token", (), "label_shift"),
    ("max_answer_1", "postprocess.max_answer_length=1", ("postprocess.max_answer_length=1",),
     None),
    ("lowercase_mismatch", "tokenizer lower-cases differently from its vocabulary", (),
     "lowercase_mismatch"),
    ("sample_mapping", "validation features attributed by index, not overflow mapping", (),
     "sample_mapping"),
    ("end_offsets", "answer text ends where its last token starts (offset pair misread)", (),
     "end_offsets"),
    ("float64", "the model runs in float64 (a default-dtype slip): the timing gates' case", (),
     "float64"),
)


def _verdicts(folder: Path) -> dict[str, Any]:
    verdicts = json.loads((folder / "verdicts.json").read_text())["verdicts"] \
        if (folder / "verdicts.json").exists() else []
    return {v["metric"]: {k: v.get(k) for k in ("value", "baseline", "status")}
            for v in verdicts}


def rejudge(exe: Path, folder: Path, baselines: Path) -> dict[str, Any]:
    """A finished case judged again against ``baselines``: ``qa-bench report``'s exit code."""
    record = folder / "detection.json"
    data = json.loads(record.read_text())
    proc = subprocess.run([str(exe), "report", str(folder), "--baselines", str(baselines)],
                          capture_output=True, text=True, cwd=ROOT)
    data.update(exit=proc.returncode, verdicts=_verdicts(folder), rejudged=str(baselines))
    record.write_text(json.dumps(data, indent=2))
    return data


def run_case(exe: Path, folder: Path, sets: tuple[str, ...], fault: str | None,
             baselines: Path, again: bool = False) -> dict[str, Any]:
    """One smoke run; its exit code and verdicts (reused, or re-judged, when already there)."""
    record = folder / "detection.json"
    if record.exists():
        return rejudge(exe, folder, baselines) if again else json.loads(record.read_text())
    args = [str(exe), "run", "--profile", "smoke", "--no-progress", "--out", str(folder),
            "--baselines", str(baselines)]
    for item in sets:
        args += ["--set", item]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("QA_BENCH_INJECT_FAULT", None)
    if fault:
        env["QA_BENCH_INJECT_FAULT"] = fault
    began = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    data = {"exit": proc.returncode, "seconds": round(time.perf_counter() - began, 1),
            "verdicts": _verdicts(folder), "stderr": proc.stderr.strip()[-300:]}
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(data, indent=2))
    return data


def _cell(verdict: dict[str, Any]) -> str:
    value = verdict.get("value")
    return f"{value:.2f} ({verdict.get('status')})" if value is not None else "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--baselines", type=Path, default=ROOT / "baselines")
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every case (e.g. hardware.threads=1)")
    parser.add_argument("--rejudge", action="store_true",
                        help="judge finished cases again against --baselines instead of reusing "
                             "their verdicts")
    args = parser.parse_args(argv)
    exe = Path(sys.executable).parent / "qa-bench"
    wanted = set(args.only.split(",")) if args.only else None
    lines = ["| case | bug | exit | EM (verdict) | F1 (verdict) | caught |",
             "|---|---|---|---|---|---|"]
    ok = True
    for name, what, sets, fault in CASES:
        if wanted and name not in wanted:
            continue
        print(f"{name}: {what}", flush=True)
        data = run_case(exe, args.out / name, (*args.set, *sets), fault, args.baselines,
                        args.rejudge)
        em, f1 = data["verdicts"].get("exact_match", {}), data["verdicts"].get("f1", {})
        accuracy_failed = "fail" in (em.get("status"), f1.get("status"))
        expected = name != "clean"
        good = (data["exit"] == 1 and accuracy_failed) if expected else data["exit"] == 0
        ok &= good
        caught = ("yes" if good else "NO") if expected else ("no false alarm" if good
                                                            else "FALSE ALARM")
        lines.append(f"| {name} | {what} | {data['exit']} | {_cell(em)} | {_cell(f1)} | {caught} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detection.md").write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
