"""What the pytest layer needs from ``qa``: options → entries, one shared run per entry, gates.

``conftest.py`` only wires pytest hooks to these functions, so the pytest front end holds no
logic that the CLI lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from qa import baselines, profiles
from qa.config import squad_dir_from_env
from qa.errors import QABenchError
from qa.results import RunResult
from qa.runner import (
    RunOptions,
    check_baselines,
    check_entry_timeout,
    run_entry_all_seeds,
    seed_list,
    split_names,
)

# Test name → the gated metric it asserts.
GATED = {
    "compile_time": "compile_s",
    "train_throughput": "train_samples_per_s",
    "eval_throughput": "eval_samples_per_s",
    "exact_match": "exact_match",
    "f1": "f1",
}


@dataclass
class Session:
    """The benchmark session: entries to run, results as they come, verdicts for the report."""

    entries: list[profiles.Entry]
    options: RunOptions
    results: dict[str, RunResult] = field(default_factory=dict)
    verdicts: dict[str, list[baselines.Verdict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def result(self, entry: profiles.Entry) -> RunResult:
        """The entry's RunResult, running it (all seeds) the first time it is asked for."""
        if entry.id not in self.results:
            result = run_entry_all_seeds(entry, self.options, self.notes)
            self.results[entry.id] = result
            self.verdicts[entry.id] = baselines.compare(
                result, baselines.load_baseline(self.options.baselines_root, result.key))
        return self.results[entry.id]

    def verdict(self, entry: profiles.Entry, metric: str) -> baselines.Verdict | None:
        """The verdict of one metric of an entry (None when the run did not measure it)."""
        self.result(entry)
        return next((v for v in self.verdicts[entry.id] if v.metric == metric), None)


def make_session(getoption: Any, rootdir: Path) -> Session:
    """Build the session from pytest options (raises QABenchError on bad input)."""
    profile = profiles.load_profile(getoption("--profile"))
    profile = profiles.select(profile, getoption("--backend"), split_names(getoption("--models")),
                              split_names(getoption("--pods")),
                              split_names(getoption("--datasets")))
    squad_dir = squad_dir_from_env(getoption("--squad-dir"))
    if squad_dir and not Path(squad_dir).is_dir():
        raise QABenchError(f"--squad-dir {squad_dir}: no such folder")
    entries = profiles.expand(profile, squad_dir, getoption("--set") or [])
    seeds = seed_list(getoption("--seeds"), profile.seeds, getoption("--set") or [])
    check_entry_timeout(getoption("--entry-timeout"))
    check_baselines(entries, Path(getoption("--baselines-dir")))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(getoption("--report-dir") or rootdir / "reports" / f"pytest-{profile.name}-{stamp}")
    options = RunOptions(out_dir=out, baselines_root=Path(getoption("--baselines-dir")),
                         references=Path(getoption("--baselines-dir")) / "reference.toml",
                         seeds=seeds, update_baselines=getoption("--update-baselines"),
                         entry_timeout=getoption("--entry-timeout"), progress=False)
    return Session(entries, options)


def skip_reason(entry: profiles.Entry) -> str | None:
    """Why an entry cannot run on this machine (its hardware is absent), or None."""
    from qa import backends

    if "cuda" in entry.marks:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device on this machine"
    ok, reason = backends.get(entry.config.hardware.backend).available()
    return None if ok else reason


def check_gate(session: Session, entry: profiles.Entry, test: str) -> tuple[str, str]:
    """Judge one gated metric: ('pass'|'fail'|'improved'|'skip', message)."""
    result = session.result(entry)
    if result.status != "ok":
        failure = result.failure or {}
        return "fail", (f"{entry.id} {result.status} in stage {failure.get('stage')}: "
                        f"{failure.get('cause')}")
    metric = GATED[test]
    verdict = session.verdict(entry, metric)
    if verdict is not None and verdict.status == "other_hardware":
        return "skip", f"{entry.id} {metric}: {verdict.message}"
    if verdict is None or verdict.status == "missing":
        value = verdict.value if verdict else None
        return "skip", (f"no baseline for {entry.id} {metric} (measured {value}): "
                        "run with --update-baselines")
    text = (f"{metric} {verdict.value:.4g} vs baseline {verdict.baseline:.4g} "
            f"(tolerance {verdict.tolerance:.4g} {verdict.unit})")
    if verdict.status == "improved":
        return "improved", f"{text}: improved — update the baseline"
    return verdict.status, text


def finish(session: Session, incomplete: bool) -> Path | None:
    """Write the session's report (partial when interrupted)."""
    if not session.results:
        return None
    from qa.runner import write_run_report

    return write_run_report(list(session.results.values()),
                            [v for vs in session.verdicts.values() for v in vs],
                            session.options, session.notes, incomplete)


def record_benchmark(benchmark: Any, result: RunResult, test: str) -> None:
    """Put the entry's measured timings into pytest-benchmark's stats and JSON.

    The training loop already timed every optimizer step (warm-up excluded); re-running steps
    under ``benchmark.pedantic`` would time different work than the gate judges. So the
    measured durations are fed into the fixture's statistics, and ``--benchmark-json`` /
    ``--benchmark-compare`` see exactly the numbers the baseline gate saw.
    """
    timings = result.timings
    rounds: list[float] = {
        "train_throughput": timings.get("train_step_times") or [],
        "eval_throughput": [timings["eval_s"]] if timings.get("eval_s") else [],
        "compile_time": [t for t in (timings.get("compile", {}).get("cold_s"),) if t],
    }.get(test, [])
    benchmark.extra_info.update({
        "entry": result.entry_id, "status": result.status, "metric": GATED[test],
        "value": _extract(result, GATED[test]),
        "exact_match": result.metrics.get("exact_match"), "f1": result.metrics.get("f1"),
        "timings": {k: v for k, v in timings.items() if k != "train_step_times"},
        "dataset_fingerprint": result.dataset_fingerprint,
        "source": "qa-bench step timer (warm-up excluded)",
    })
    if not rounds:  # accuracy gates: EM/F1 travel in the timing records' extra_info
        return
    stats = benchmark._make_stats(1)  # pytest-benchmark's per-round statistics
    for duration in rounds:
        stats.update(duration)
    benchmark._mode = "qa-bench measured rounds"


def _extract(result: RunResult, metric: str) -> float | None:
    spec = baselines.METRICS.get(metric)
    return spec.extract(result) if spec else None
