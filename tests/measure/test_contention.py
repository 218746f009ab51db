"""A shared machine's timings are reported, not judged: contention measured, and its verdict."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.gating import KEY, by_metric, make_baseline, make_result

from qa.gating.baseline_build import baseline_from_results
from qa.gating.verdicts import gate
from qa.measure import contention
from qa.measure.contention import BUSY_SHARE, CpuShare, busy
from qa.reporting.report import render_markdown

LINUX = Path("/proc/stat").exists()


def _stat(tmp_path: Path, user: int, system: int, steal: int) -> Path:
    path = tmp_path / "stat"
    path.write_text(f"cpu  {user} 0 {system} 1000 0 0 0 {steal} 0 0\ncpu0 1 2 3 4\n")
    return path


def test_others_are_the_machine_busy_time_minus_our_own(tmp_path, monkeypatch) -> None:
    tick = contention.os.sysconf("SC_CLK_TCK")
    monkeypatch.setattr(contention, "_STAT", _stat(tmp_path, 0, 0, 0))
    share = CpuShare(cores=2)
    times = iter([0.0, 10.0])  # our own CPU seconds at entry and exit
    monkeypatch.setattr(contention, "_own_cpu_s", lambda: next(times))
    clock = iter([100.0, 120.0])  # 20 s of wall time
    monkeypatch.setattr(contention.time, "perf_counter", lambda: next(clock))
    with share:
        # the machine did 16 s of user and 4 s of system work, the hypervisor stole 2 s
        _stat(tmp_path, 16 * tick, 4 * tick, 2 * tick)
    summary = share.summary()
    assert summary["other_cpu_share"] == pytest.approx((20 - 10) / (20 * 2))
    assert summary["steal_share"] == pytest.approx(2 / 40)
    assert summary["window_s"] == 20.0 and summary["cores"] == 2
    assert "other processes used 25 %" in busy(summary)
    assert "stole 5 %" in busy(summary)


def test_unreadable_counters_measure_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(contention, "_STAT", tmp_path / "absent")
    with CpuShare() as share:
        pass
    assert share.summary() is None
    assert busy(None) == ""


@pytest.mark.parametrize(("others", "steal", "is_busy"), [
    (0.0, 0.0, False), (BUSY_SHARE, 0.0, False), (BUSY_SHARE + 0.01, 0.0, True),
    (0.06, 0.05, True), (0.0, 0.2, True)])
def test_busy_above_the_limit_only(others: float, steal: float, is_busy: bool) -> None:
    assert bool(busy({"other_cpu_share": others, "steal_share": steal})) is is_busy


@pytest.mark.skipif(not LINUX, reason="/proc/stat is Linux only")
def test_a_spinning_neighbour_is_seen_and_our_finished_children_are_not() -> None:
    with CpuShare() as share:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.5)
        spinner.kill()
    spinner.wait()  # reaped after the window: its CPU time was another process's
    cores = share.summary()["cores"]
    # one busy core of ``cores`` (more when the machine is busier still; interpreter start-up
    # takes a little of the 1.5 s)
    assert share.summary()["other_cpu_share"] >= 0.6 / cores
    before = contention._own_cpu_s()
    child = subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                            "while time.process_time() - t < 1.0: pass"])
    assert child.returncode == 0
    # a finished (reaped) child's CPU second is ours, so it is never counted as another's
    assert contention._own_cpu_s() - before >= 0.95


def test_a_busy_run_has_its_timings_reported_not_judged_and_accuracy_judged() -> None:
    baseline = make_baseline(exact_match={"value": 80.0, "tolerance": 1.0},
                             train_samples_per_s={"value": 100.0, "tolerance": 0.05})
    loaded = {"other_cpu_share": 0.4, "steal_share": 0.0, "window_s": 60.0, "cores": 2}
    slow = make_result(em=70.0, sps=60.0)
    slow.timings["contention"] = loaded
    verdicts = by_metric(gate(slow, baseline))
    assert verdicts["train_samples_per_s"].status == "busy"
    assert "other processes used 40 %" in verdicts["train_samples_per_s"].message
    assert verdicts["exact_match"].status == "fail"  # accuracy is judged whatever the load
    quiet = make_result(em=80.0, sps=60.0)
    quiet.timings["contention"] = {**loaded, "other_cpu_share": 0.01}
    assert by_metric(gate(quiet, baseline))["train_samples_per_s"].status == "fail"
    report = render_markdown([slow], gate(slow, baseline))
    assert "1 — busy machine (timings not judged)" in report
    assert "other processes used 40 %" in report


def test_busy_runs_found_no_timing_baseline() -> None:
    quiet = [make_result(sps=v) for v in (100.0, 102.0, 98.0)]
    loaded = make_result(sps=40.0)
    loaded.timings["contention"] = {"other_cpu_share": 0.5, "steal_share": 0.0}
    data = baseline_from_results([*quiet, loaded])
    (section,) = data["timings"]
    assert section["metrics"]["train_samples_per_s"]["value"] == 100.0
    assert section["provenance"]["processes"] == 3
    assert data["metrics"]["exact_match"]["n"] == 4  # its accuracy still counts
    assert data["key"] == KEY
