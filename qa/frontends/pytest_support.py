"""What the pytest layer needs from ``qa``: options → entries, one shared run per entry, gates.

``qa.frontends.pytest_plugin`` only wires pytest hooks to these functions; the run itself is set up
by
``qa.run.runner.prepare_run``, as for ``qa-bench run``, so the pytest front end holds no logic that
the CLI lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa import progress
from qa.gating import baselines
from qa.gating.outcome import Outcome, decide
from qa.gating.verdicts import Verdict, gate
from qa.results.metricspec import METRICS, accuracy_specs
from qa.results.store import RunResult
from qa.run import profiles
from qa.run.runner import (
    RunOptions,
    RunPlan,
    prepare_run,
    run_entry_all_seeds,
    start_progress,
    start_run,
)

# The suite's own markers; the marks an entry may carry are its backend's (``Backend.MARKS``).
SUITE_MARKERS = {
    "slow": "takes more than a few seconds",
    "perf": "a performance claim of the suite itself (fast paths, harness overhead, pipeline "
            "speed): left out of `pytest benchmarks` unless asked for with `-m perf` or by "
            "naming its file",
}
PERF = "perf"


@dataclass
class Session:
    """The benchmark session: entries to run, results as they come, verdicts for the report."""

    entries: list[profiles.Entry]
    options: RunOptions
    results: dict[str, RunResult] = field(default_factory=dict)
    verdicts: dict[str, list[Verdict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    candidates: dict[str, list[RunResult]] = field(default_factory=dict)  # --update-baselines
    plan: RunPlan | None = None  # the prepared run (its manifest is written before the first)
    # The entries whose tests pytest selected, in run order (after -k/-m): progress's N.
    selected: list[profiles.Entry] | None = None
    _started: bool = False

    def result(self, entry: profiles.Entry) -> RunResult:
        """The entry's RunResult, running it (all seeds) the first time it is asked for."""
        if not self._started:
            self._started = True
            if self.plan is not None:
                start_run(self.plan)
            planned = self.entries if self.selected is None else self.selected
            skipped = self.plan.skipped if self.plan else {}
            start_progress([e for e in planned if e.id not in skipped], self.options,
                           len([e for e in planned if e.id in skipped]))
        if entry.id not in self.results:
            result = run_entry_all_seeds(entry, self.options, self.notes,
                                         self.candidates)
            self.results[entry.id] = result
            self.verdicts[entry.id] = gate(
                result, baselines.load_baseline(self.options.baselines_root, result.key))
        return self.results[entry.id]

    def all_verdicts(self) -> list[Verdict]:
        """Every verdict of the entries run so far."""
        return [v for vs in self.verdicts.values() for v in vs]

    def verdict(self, entry: profiles.Entry, metric: str) -> Verdict | None:
        """The verdict of one metric of an entry (None when the run did not measure it)."""
        self.result(entry)
        return next((v for v in self.verdicts[entry.id] if v.metric == metric), None)


def make_session(values: dict[str, Any], rootdir: Path,
                 write: Any = None) -> Session:
    """Build the session from the run options (raises QABenchError on bad input).

    Default ``baselines/`` and ``reports/`` are the rootdir's, so a run behaves the same from
    any working folder. ``write`` (one line, e.g. through pytest's terminal reporter) receives
    the progress lines of ``qa.progress.LineReporter``: pytest's output is lines, never a
    redrawn bar; a line per long count every 60 s, none with ``--no-progress``.
    """
    reporter = None
    if write is not None:
        reporter = progress.LineReporter(
            write, counts_every=None if values.get("no_progress") else 60.0)
    plan = prepare_run(values, rootdir, out_prefix="pytest-", reporter=reporter)
    return Session(plan.entries, plan.options, plan=plan)


def select_items(items: list[Any], args: Iterable[str], base: Path,
                 markexpr: str) -> tuple[list[Any], list[Any]]:
    """(kept, deselected) of a benchmark session's collected tests: the ``perf`` tests stay
    only where asked for (``-m`` naming ``perf``, or their file named on the command line);
    ``pytest benchmarks --profile NAME`` runs the profile's entries and their gates."""
    if PERF in markexpr.replace("(", " ").replace(")", " ").split():
        return list(items), []
    named = {(base / str(arg).split("::", 1)[0]).resolve() for arg in args}
    named = {path for path in named if path.is_file()}
    kept, dropped = [], []
    for item in items:
        asked = Path(str(item.path)).resolve() in named
        (dropped if item.get_closest_marker(PERF) and not asked else kept).append(item)
    return kept, dropped


def selected_entries(items: list[Any]) -> list[profiles.Entry]:
    """The entries of the selected tests, in order, each once."""
    seen: dict[str, profiles.Entry] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        entry = callspec.params.get("entry") if callspec is not None else None
        if entry is not None and entry.id not in seen:
            seen[entry.id] = entry
    return list(seen.values())


def marker_lines() -> list[str]:
    """``name: description`` of every marker the plugin registers: each backend's own marks
    (ipu, cuda, ...) and the suite's."""
    from qa import backends

    marks = {mark: text for name in backends.names()
             for mark, text in backends.get(name).MARKS.items()}
    return [f"{mark}: {text}" for mark, text in {**marks, **SUITE_MARKERS}.items()]


def collects_benchmarks(args: Iterable[str], rootdir: Path, base: Path | None = None) -> bool:
    """Whether pytest's path arguments reach the checkout's ``benchmarks/`` folder.

    True for ``benchmarks``, ``benchmarks/test_finetune.py::test_gate`` and ``.`` from the
    checkout, and for the same paths given absolute from any other folder.
    """
    folder = (rootdir / "benchmarks").resolve()
    for arg in args:
        path = (Path(base or Path.cwd()) / str(arg).split("::", 1)[0]).resolve()
        if path == folder or folder in path.parents or path in folder.parents:
            return True
    return False


def skip_reason(session: Session, entry: profiles.Entry) -> str | None:
    """Why an entry cannot run on this machine (device, data or model absent), or None: the
    run's own decision (``RunPlan.skipped``, ``qa.run.availability``), as under ``qa-bench run``."""
    return session.plan.skipped.get(entry.id) if session.plan else None


def check_gate(session: Session, entry: profiles.Entry, metric: str) -> tuple[str, str]:
    """Judge one gated metric: ('pass'|'fail'|'improved'|'skip', message)."""
    result = session.result(entry)
    if result.status != "ok":
        failure = result.failure or {}
        return "fail", (f"{entry.id} {result.status} in stage {failure.get('stage')}: "
                        f"{failure.get('cause')}")
    verdict = session.verdict(entry, metric)
    if verdict is not None and verdict.status in ("other_hardware", "busy", "not_comparable"):
        return "skip", f"{entry.id} {metric}: {verdict.message}"
    if verdict is None or verdict.status == "missing":
        value = verdict.value if verdict else None
        return "skip", (f"no baseline for {entry.id} {metric} (measured {value}): "
                        "run with --update-baselines")
    text = (f"{metric} {verdict.value:.4g} vs baseline {verdict.baseline:.4g} "
            f"(tolerance {verdict.tolerance:.4g} {verdict.unit})"
            + (f"; {verdict.note}" if verdict.note else ""))
    if verdict.status == "improved":
        return "improved", f"{text}: improved — update the baseline"
    return verdict.status, text


def finish(session: Session, incomplete: bool) -> Path | None:
    """Write the baselines if asked (``qa.run.runner.update_baselines``, as ``qa-bench run``
    does) and the session's report (partial when interrupted); None when no entry ran or was
    skipped (e.g. ``-k`` deselected them all)."""
    skipped = session.plan.skipped if session.plan else {}
    if not session.results and not skipped:
        return None
    from qa.run.runner import update_baselines, write_run_report

    if session.plan is not None and not session.results:
        start_run(session.plan)  # a run of skips only: its manifest names them
    update_baselines(list(session.results.values()), session.candidates, session.options,
                     session.notes, incomplete)
    return write_run_report(list(session.results.values()), session.all_verdicts(),
                            session.options, session.notes, incomplete, skipped)


def outcome(session: Session) -> Outcome:
    """The session's outcome, decided as for ``qa-bench run`` (``qa.gating.outcome``)."""
    skipped = list(session.plan.skipped) if session.plan else []
    return decide(list(session.results.values()), session.all_verdicts(), skipped=skipped)


class ReplayClock:
    """A clock for pytest-benchmark's ``timer`` marker option that replays measured durations.

    The training loop already timed every optimizer step (warm-up excluded); re-running steps
    under ``benchmark.pedantic`` would time different work than the gate judges. So a gate test
    marks itself ``@pytest.mark.benchmark(timer=REPLAY_CLOCK)``, loads the clock with the
    measured durations and calls ``benchmark.pedantic`` once per duration: each round's
    start/end reading is one measured step, so pytest-benchmark's statistics, ``--benchmark-json``
    and ``--benchmark-compare`` see exactly the numbers the baseline gate saw, through its public
    API only.
    """

    __name__ = "qa-bench measured rounds"  # how pytest-benchmark names the timer in its JSON

    def __init__(self) -> None:
        self._readings: list[float] = []

    def load(self, durations: Iterable[float]) -> int:
        """Queue the readings of ``durations`` (start, end per round); returns the round count."""
        readings, now = [], 0.0
        for duration in durations:
            readings += [now, now + duration]
            now += duration
        self._readings = readings[::-1]
        return len(readings) // 2

    def __call__(self) -> float:
        if not self._readings:
            raise RuntimeError("ReplayClock read more often than it was loaded for")
        return self._readings.pop()


REPLAY_CLOCK = ReplayClock()


def record_benchmark(benchmark: Any, result: RunResult, metric: str) -> None:
    """Put the entry's measured rounds of ``metric`` into pytest-benchmark, the rest in extra_info.

    ``benchmark`` must be marked with ``timer=REPLAY_CLOCK``. EM/F1 and the timings travel in
    ``extra_info`` of every record (accuracy gates have no rounds of their own).
    """
    spec = METRICS[metric]
    timings = result.timings
    benchmark.extra_info.update({
        "entry": result.entry_id, "status": result.status, "metric": metric,
        "value": spec.extract(result),
        **{s.name: s.extract(result) for s in accuracy_specs()},
        "timings": {k: v for k, v in timings.items() if k != "train_step_times"},
        "dataset_fingerprint": result.dataset_fingerprint,
        "source": "qa-bench step timer (warm-up excluded)",
    })
    rounds = REPLAY_CLOCK.load(spec.rounds(result))
    if rounds:
        benchmark.pedantic(_measured_round, rounds=rounds, iterations=1)


def _measured_round() -> None:
    """What pytest-benchmark "runs" per round: the work was done and timed by the pipeline."""
