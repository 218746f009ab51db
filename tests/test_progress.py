"""What a run shows while it works (``qa.progress``): the ETA's correction, the lines of a log,
the live line of a terminal, and a real small run's output without a terminal."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest

from qa import progress
from qa.progress import (
    PROGRESS_LINE,
    LineReporter,
    LiveReporter,
    MatrixEta,
    Reporter,
    for_stream,
    from_spec,
    seconds_text,
)

TINY = ["data.synthetic_train_contexts=40", "data.synthetic_validation_contexts=8",
        "data.max_length=128", "data.doc_stride=64", "train.max_steps=4", "target.every=0",
        "train.compile_eval=false", "train.eval_timing_rounds=1", "model.vocab_size=800"]
PIPELINE_STAGES = ["data", "model", "features", "compile", "train", "predict", "postprocess",
                   "metrics"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


# -- the ETA -----------------------------------------------------------------------------------
def test_before_any_run_finished_the_cost_model_stands() -> None:
    eta = MatrixEta([10.0, 20.0, 30.0])
    assert eta.ratio is None
    assert eta.remaining() == pytest.approx(60.0)
    assert "(cost model)" in eta.describe()


def test_finished_runs_scale_the_estimates_of_the_rest() -> None:
    eta = MatrixEta([10.0, 20.0, 30.0])
    eta.finish(0, 25.0)  # took 2.5 times its estimate
    assert eta.ratio == pytest.approx(2.5)
    assert eta.remaining() == pytest.approx(2.5 * 50.0)
    eta.finish(1, 20.0)  # pooled: (25 + 20) / (10 + 20)
    assert eta.ratio == pytest.approx(1.5)
    assert eta.remaining() == pytest.approx(1.5 * 30.0)
    assert "cost model × 1.5 measured" in eta.describe()


def test_the_current_run_counts_its_corrected_estimate_less_its_elapsed_time() -> None:
    eta = MatrixEta([10.0, 20.0, 30.0])
    eta.finish(0, 20.0)  # ratio 2
    assert eta.remaining(current=1, elapsed=15.0) == pytest.approx(2 * 20 - 15 + 2 * 30)
    # Past its estimate, the current run counts zero, never less.
    assert eta.remaining(current=1, elapsed=500.0) == pytest.approx(2 * 30)


def test_a_failed_run_does_not_correct_the_estimates() -> None:
    eta = MatrixEta([10.0, 20.0, 30.0])
    eta.finish(0, 0.5, ok=False)  # stopped in its first stage: says nothing about the rate
    assert eta.ratio is None
    assert eta.remaining() == pytest.approx(50.0)  # it is done, though
    eta.finish(1, 40.0)
    assert eta.ratio == pytest.approx(2.0)


def test_seconds_text() -> None:
    assert [seconds_text(s) for s in (0.04, 41.23, 750, 11520)] == [
        "0.0 s", "41.2 s", "12.5 min", "3.2 h"]


# -- the lines of a log ------------------------------------------------------------------------
def _line_run(counts_every: float | None) -> list[str]:
    lines: list[str] = []
    clock = Clock()
    reporter = LineReporter(lines.append, counts_every=counts_every, clock=clock)
    reporter.start_matrix([("a", "entry-a seed 42", 10.0), ("b", "entry-b seed 42", 30.0)],
                          skipped=1)
    reporter.start_run("a", "entry-a seed 42")
    reporter.stage("data")
    clock.tick(1.25)
    reporter.stage("train")
    count = reporter.counter(100, "train")
    for _ in range(100):
        clock.tick(1.0)
        count.update()
    count.close()
    reporter.end_stages()
    reporter.end_run("ok")
    reporter.start_run("b", "entry-b seed 42")
    clock.tick(3.0)
    reporter.end_run("failed")
    reporter.end_matrix()
    return lines


def test_a_log_gets_a_line_per_run_start_stage_and_end_with_elapsed_times() -> None:
    lines = _line_run(counts_every=None)
    assert lines == [
        "matrix: 2 runs planned (1 skipped entries not counted) · ETA 40.0 s (cost model)",
        "[1/2] entry-a seed 42 · start · ETA 40.0 s (cost model)",
        "[1/2] entry-a seed 42 · data · 1.2 s",
        "[1/2] entry-a seed 42 · train · 100.0 s",
        # 101.25 s measured for an estimate of 10 s: the rest (30 s) × 10.125
        "[1/2] entry-a seed 42 · ok · 101.2 s · ETA 5.1 min (cost model × 10 measured)",
        "[2/2] entry-b seed 42 · start · ETA 5.1 min (cost model × 10 measured)",
        "[2/2] entry-b seed 42 · failed · 3.0 s · ETA 0.0 s (cost model × 10 measured)",
        "matrix: 2 of 2 runs in 104.2 s (measured / cost model 10)",
    ]
    assert all(re.match(PROGRESS_LINE, line) for line in lines)


def test_a_long_count_gets_a_line_at_most_every_counts_every_seconds() -> None:
    counts = [line for line in _line_run(counts_every=30.0) if re.search(r"train \d", line)]
    assert [line.split(" · ")[1] for line in counts] == ["train 30/100", "train 60/100",
                                                         "train 90/100"]
    assert counts[0].split(" · ")[2] == "30.0 s (this stage ~70.0 s more)"


def test_the_quiet_reporter_shows_nothing_and_counters_outside_a_run_are_quiet(
        capsys: pytest.CaptureFixture[str]) -> None:
    reporter = Reporter()
    reporter.start_matrix([("a", "a", 1.0)])
    reporter.start_run("a", "a")
    reporter.stage("train")
    reporter.counter(10, "train").update(10)
    reporter.end_run("ok")
    reporter.end_matrix()
    assert capsys.readouterr() == ("", "")
    lines: list[str] = []
    assert type(LineReporter(lines.append).counter(10, "train")) is progress.Counter
    assert lines == []


def test_a_run_outside_the_plan_is_added_to_it() -> None:
    lines: list[str] = []
    reporter = LineReporter(lines.append, clock=Clock())
    reporter.start_matrix([("a", "a seed 42", 1.0)])
    reporter.start_run("z", "z seed 42", 5.0)
    assert lines[-1].startswith("[2/2] z seed 42 · start · ETA 6.0 s")


def test_the_module_functions_reach_the_reporter_in_use_and_only_inside_the_block() -> None:
    lines: list[str] = []
    reporter = LineReporter(lines.append, counts_every=0.0, clock=Clock())
    reporter.start_run("a", "a seed 42")
    with progress.use(reporter):
        progress.stage("data")
        progress.counter(3, "predict").update()
        progress.counter(3, "predict", enabled=False).update()  # another rank: nothing
        progress.end_stages()
    progress.stage("train")  # the quiet default again
    assert [line.split(" · ", 1)[1] for line in lines[1:]] == [
        "predict 1/3 · 0.0 s (this stage ~0.0 s more) · ETA 0.0 s (cost model)", "data · 0.0 s"]


def test_a_worker_process_shows_its_stages_under_the_parents_run_line() -> None:
    lines: list[str] = []
    parent = LineReporter(lines.append, counts_every=None, clock=Clock())
    parent.start_matrix([("a", "entry seed 42", 1.0), ("b", "other seed 42", 1.0)])
    parent.start_run("a", "entry seed 42")
    spec = parent.child_spec()
    out = io.StringIO()
    child = from_spec(spec, out)
    child.stage("train")
    child.end_stages()
    assert out.getvalue().startswith("[1/2] entry seed 42 · train · ")
    assert type(from_spec(None)) is Reporter
    assert LiveReporter(io.StringIO()).child_spec() is None  # never two writers on one line


# -- a terminal ---------------------------------------------------------------------------------
def test_a_terminal_gets_the_live_reporter_a_pipe_or_no_progress_the_lines() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as tty:
        assert isinstance(for_stream(tty), LiveReporter)
        assert isinstance(for_stream(tty, bars=False), LineReporter)  # --no-progress
    os.close(leader)
    piped = for_stream(io.StringIO())
    assert isinstance(piped, LineReporter) and piped.counts_every == 60.0
    assert for_stream(io.StringIO(), bars=False).counts_every is None


def test_the_live_line_shows_run_k_of_n_stage_bar_and_eta_and_a_line_per_finished_run() -> None:
    stream = io.StringIO()
    clock = Clock()
    reporter = LiveReporter(stream, refresh_s=0, clock=clock)
    reporter.start_matrix([("a", "entry seed 42", 10.0), ("b", "entry seed 43", 10.0)])
    reporter.start_run("a", "entry seed 42")
    reporter.stage("features")
    clock.tick(2.0)
    reporter.stage("train")
    count = reporter.counter(8, "train")
    for _ in range(8):
        count.update()
    clock.tick(8.0)
    reporter.end_run("ok")
    reporter.end_matrix()
    shown = stream.getvalue()
    assert "\r" in shown  # redrawn in place
    assert "[1/2] entry seed 42 · features" in shown
    assert "[1/2] entry seed 42 · train 0/8 |" in shown  # the bar over the count
    assert "00:00, ETA 20.0 s" in shown  # the short form on the narrow live line
    assert "[1/2] entry seed 42 · ok · 10.0 s (features 2.0 s, train 8.0 s) · ETA 10.0 s" in shown
    assert "matrix: 1 of 2 runs in 10.0 s" in shown


def test_an_ascii_only_log_gets_a_replacement_not_an_error() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    reporter = for_stream(stream)
    reporter.start_matrix([("a", "a", 1.0)])
    stream.flush()
    assert raw.getvalue().startswith(b"matrix: 1 runs planned ? ETA")


# -- a real small run, no terminal ----------------------------------------------------------
@pytest.mark.e2e
def test_a_real_run_without_a_terminal_prints_stage_lines_in_order_and_no_carriage_return(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs (one entry, two seeds) through the runner as ``qa-bench run`` sets it up:
    stderr is a pipe here, so it gets the log's lines; nothing redraws (no ``\\r``)."""
    from qa.run.runner import prepare_run, run_entries

    monkeypatch.setenv("QA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plan = prepare_run({"profile": "smoke", "set": TINY, "seeds": 2, "out": str(tmp_path / "run"),
                        "baselines": str(tmp_path / "none")}, tmp_path)
    assert isinstance(plan.options.reporter, LineReporter)  # stderr is not a terminal
    plan.options.cache_dir = tmp_path / "cache"
    summary = run_entries(plan.entries, plan.options, plan.skipped)
    assert [r.status for r in summary.results] == ["ok"]
    err = capfd.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if re.match(PROGRESS_LINE, line)]
    assert lines[0].startswith("matrix: 2 runs planned · ETA ")
    assert re.match(r"matrix: 2 of 2 runs in \d+\.\d s \(measured / cost model \S+\)$",
                    lines[-1])
    label = "torch/cpu/tiny-roformer__synthetic"
    for k, seed in ((1, 42), (2, 43)):
        mine = [line for line in lines if line.startswith(f"[{k}/2] {label} seed {seed} · ")]
        parts = [line.split(" · ") for line in mine]
        assert [p[1] for p in parts] == ["start", *PIPELINE_STAGES, "ok"], mine
        for p in parts[1:]:
            assert re.fullmatch(r"\d+\.\d s", p[2]), p  # the stage's (or run's) elapsed time
    corrected = [line for line in lines if line.startswith(f"[2/2] {label} seed 43 · start")]
    assert "measured)" in corrected[0]  # the second run's ETA uses the first's time



def test_a_matrix_stopped_mid_run_ends_that_run_as_stopped() -> None:
    """Ctrl-C or SIGTERM: the runner ends the matrix; the open stage and run end with it."""
    lines: list[str] = []
    clock = Clock()
    reporter = LineReporter(lines.append, counts_every=None, clock=clock)
    reporter.start_matrix([("a", "a seed 42", 10.0), ("b", "b seed 42", 10.0)])
    reporter.start_run("a", "a seed 42")
    reporter.stage("train")
    clock.tick(4.0)
    reporter.end_matrix()
    assert lines[-3:] == ["[1/2] a seed 42 · train · 4.0 s", "[1/2] a seed 42 · stopped · 4.0 s",
                          "matrix: 1 of 2 runs in 4.0 s"]


def test_the_running_count_keeps_the_eta_from_undershooting_the_current_run() -> None:
    """During the first run the cost model is all there is; when its estimate is too small the
    count's own rate (half of the steps in 50 s: 50 s more) is the floor of that run's part."""
    eta = MatrixEta([10.0, 10.0])
    assert eta.remaining(current=0, elapsed=50.0, at_least=50.0) == pytest.approx(60.0)
    lines: list[str] = []
    clock = Clock()
    reporter = LineReporter(lines.append, counts_every=None, clock=clock)
    reporter.start_matrix([("a", "a seed 42", 10.0), ("b", "b seed 42", 10.0)])
    reporter.start_run("a", "a seed 42")
    reporter.stage("train")
    count = reporter.counter(100, "train")
    for _ in range(50):
        clock.tick(1.0)
        count.update()
    assert reporter.eta_text() == "ETA 60.0 s (cost model)"
    reporter.end_stages()  # the count ended with its stage
    assert reporter.eta_text() == "ETA 10.0 s (cost model)"


def test_a_terminal_that_reports_no_size_still_gets_its_bar() -> None:
    """A fresh pty is 0 × 0 (as under `script`, or some CI runners): tqdm alone would draw
    nothing there."""
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", encoding="utf-8") as tty:
            assert os.get_terminal_size(tty.fileno()).columns == 0
            reporter = for_stream(tty)
            assert isinstance(reporter, LiveReporter)
            reporter.refresh_s = 0
            reporter.start_matrix([("a", "entry seed 42", 1.0)])
            reporter.start_run("a", "entry seed 42")
            reporter.stage("train")
            reporter.counter(5, "train").update(2)
            tty.flush()
            shown = _read_until(leader, "[1/1] entry seed 42 · train 0/5 |")
    finally:
        os.close(leader)
    assert "[1/1] entry seed 42 · train 0/5 |" in shown


def _read_until(fd: int, text: str, seconds: float = 10.0) -> str:
    """What the pty shows, read until ``text`` appears (a read returns one chunk at a time)."""
    import select

    shown, deadline = "", time.monotonic() + seconds
    while text not in shown and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            shown += os.read(fd, 65536).decode("utf-8", "replace")
    return shown
