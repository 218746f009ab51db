"""The pytest front end end to end (pytester): options, markers, skips, gates, baselines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.results.metricspec import METRICS

ROOT = Path(__file__).resolve().parents[2]

TINY_PROFILE = """
description = "a tiny entry for the plugin tests"
backend = "torch"
models = ["tiny-roformer"]
pods = ["cpu"]
datasets = ["synthetic"]
seeds = [42]

[defaults.data]
synthetic_train_contexts = 60
synthetic_validation_contexts = 10
max_length = 128
doc_stride = 64

[defaults.train]
max_steps = 12
micro_batch_size = 8
dynamic_padding = true
group_by_length = true
compile_eval = false
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The suite's benchmark tests and a tiny profile of its own in a fresh folder.

    No conftest.py: the installed plugin (``pytest11`` entry point) wires them; the shipped
    profiles (nightly) come with the package."""
    bench = pytester.path / "benchmarks"
    (bench / "profiles").mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "test_finetune.py", bench / "test_finetune.py")
    (bench / "profiles" / "tiny.toml").write_text(TINY_PROFILE)
    monkeypatch.setenv("QA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    return pytester


@pytest.mark.e2e
def test_nightly_matrix_is_collected_and_ipu_entries_skip_with_the_reason(suite) -> None:
    collected = suite.runpytest_subprocess("benchmarks", "--profile", "nightly", "--collect-only",
                                           "-q")
    collected.stdout.fnmatch_lines(["*240 tests collected*"])
    run = suite.runpytest_subprocess("benchmarks", "--profile", "nightly", "--pods", "pod16",
                                     "--models", "bert-base-uncased", "-rs")
    run.assert_outcomes(skipped=12)  # 2 datasets × 6 gated metrics
    run.stdout.fnmatch_lines(["*qa-bench: nothing was judged: every entry was skipped (2)*"])
    run.stdout.fnmatch_lines(["*poptorch not importable: install the Poplar SDK*"])
    assert run.ret == 5  # every entry skipped: nothing judged is not green


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "smok"], "*did you mean 'smoke'*"),
    (["--set", "train.learnig_rate=1"], "*did you mean 'learning_rate'*"),
    (["--backend", "ipu", "--pods", "pod17"], "*did you mean 'pod16'*"),
])
def test_bad_options_exit_2_with_one_line(suite, args, message) -> None:
    result = suite.runpytest_subprocess("benchmarks", *args)
    assert result.ret == 2
    result.stderr.fnmatch_lines([f"Exit: qa-bench: error: {message}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.e2e
def test_missing_baseline_skips_then_update_creates_it_and_gates_pass(suite) -> None:
    common = ["benchmarks", "--profile", "tiny", "--baselines", "bl", "-rs", "-p",
              "no:randomly", "--benchmark-json", "bench.json"]
    first = suite.runpytest_subprocess(*common)
    first.assert_outcomes(skipped=len(METRICS))
    # The run's progress, through pytest's terminal reporter while the entry's test runs.
    entry = r"\[1/1\] torch/cpu/tiny-roformer__synthetic seed 42 · "
    first.stdout.re_match_lines([r"matrix: 1 runs planned · ETA .*", entry + "start · ETA .*",
                                 entry + r"data · \d+\.\d s", entry + r"train · \d+\.\d s",
                                 entry + r"metrics · \d+\.\d s", entry + r"ok · \d+\.\d s · .*",
                                 r"matrix: 1 of 1 runs in .*"])
    assert "\r" not in first.stdout.str()
    first.stdout.fnmatch_lines(["*qa-bench: nothing was judged*"])
    first.stdout.fnmatch_lines(["*no baseline*run with --update-baselines*"])
    assert first.ret == 5  # the entry ran, but without a baseline nothing was judged

    update = suite.runpytest_subprocess(*common, "--update-baselines")
    written = list((suite.path / "bl").rglob("*.json"))
    assert len(written) == 1, update.stdout.str()
    assert '"provenance"' in written[0].read_text()

    # Accuracy is deterministic on CPU, so the gates hold; timings may drift on a loaded machine
    # but accuracy must pass: check those two outcomes by name.
    again = suite.runpytest_subprocess(*common, "-v")
    again.stdout.fnmatch_lines(["*exact_match] PASSED*", "*-f1] PASSED*"])
    assert again.ret in (0, 1)  # judged (timings may fail on a loaded machine, never "nothing")
    records = json.loads((suite.path / "bench.json").read_text())["benchmarks"]
    train = next(r for r in records if r["param"].endswith("train_samples_per_s"))
    # The replayed step times: one round per timed optimizer step, their mean a real duration.
    assert train["options"]["timer"].endswith("qa-bench measured rounds")
    assert train["stats"]["rounds"] == train["extra_info"]["timings"]["train_token_s"]["rounds"] > 1
    assert 0 < train["stats"]["mean"] < 60
    assert train["extra_info"]["metric"] == "train_samples_per_s"


def _collect(tmp_path: Path, *args: str) -> list[str]:
    """The test ids ``pytest ARGS --collect-only -q`` lists from the checkout."""
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q",
                           "-p", "no:cacheprovider", "-p", "no:randomly",
                           "--out", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


@pytest.mark.e2e
def test_pytest_benchmarks_runs_the_profiles_entries_and_the_perf_claims_when_asked(
        tmp_path: Path) -> None:
    """README: ``pytest benchmarks --profile smoke`` is one pipeline run per entry and its
    gates; the suite's own performance claims are ``-m perf`` (or their file named)."""
    entries = _collect(tmp_path, "benchmarks", "--profile", "smoke")
    assert entries == [f"benchmarks/test_finetune.py::test_gate[torch/cpu/"
                       f"tiny-roformer__synthetic-{metric}]" for metric in METRICS]
    perf = _collect(tmp_path, "benchmarks", "--profile", "smoke", "-m", "perf")
    files = {line.split("::")[0] for line in perf}
    assert files == {"benchmarks/test_fast_paths.py", "benchmarks/test_harness_overhead.py",
                     "benchmarks/test_pipeline_speed.py"}
    named = _collect(tmp_path, "benchmarks/test_harness_overhead.py")
    assert named == ["benchmarks/test_harness_overhead.py::"
                     "test_harness_overhead_is_under_two_percent"]


PERF_CLAIM = """
import pytest

pytestmark = pytest.mark.perf


def test_a_claim_about_the_suite():
    pass
"""


def test_a_benchmark_session_leaves_the_perf_tests_out_unless_asked(suite, tmp_path) -> None:
    """In process (the unit suite's quick form of the e2e test above): the gates of the
    profile's entries only; ``-m perf`` the perf tests only; the perf file named: it runs."""
    # Imported once here: pytester restores sys.modules after each in-process run, and datasets
    # cannot be imported twice into one process (pyarrow keeps its extension types).
    import datasets  # noqa: F401
    import transformers  # noqa: F401

    (suite.path / "benchmarks" / "test_claim.py").write_text(PERF_CLAIM)
    common = ["--profile", "tiny", "--collect-only", "-q", "--out", str(tmp_path / "o")]

    def ids(*args: str) -> list[str]:
        result = suite.runpytest_inprocess(*args, *common)
        assert result.ret == 0, result.stdout.str()
        return [line for line in result.stdout.lines if "::" in line]

    assert ids("benchmarks") == [f"benchmarks/test_finetune.py::test_gate[torch/cpu/"
                                 f"tiny-roformer__synthetic-{metric}]" for metric in METRICS]
    assert ids("benchmarks", "-m", "perf") == [
        "benchmarks/test_claim.py::test_a_claim_about_the_suite"]
    assert ids("benchmarks/test_claim.py") == [
        "benchmarks/test_claim.py::test_a_claim_about_the_suite"]


@pytest.mark.parametrize(("args", "base", "expected"), [
    (["benchmarks"], ROOT, True),
    (["benchmarks/test_finetune.py::test_gate"], ROOT, True),
    (["."], ROOT, True),
    ([str(ROOT / "benchmarks")], Path("/"), True),  # the same run from another folder
    (["tests"], ROOT, False),
    (["tests/frontends/test_pytest_plugin.py"], ROOT, False),
    ([str(ROOT / "tests")], Path("/"), False),
])
def test_the_plugin_builds_a_session_exactly_when_the_benchmarks_are_collected(
        args: list[str], base: Path, expected: bool) -> None:
    from qa.frontends.pytest_support import collects_benchmarks

    assert collects_benchmarks(args, ROOT, base) is expected


def test_replay_clock_gives_back_the_measured_durations() -> None:
    from qa.frontends.pytest_support import ReplayClock

    clock = ReplayClock()
    assert clock.load([0.5, 0.25, 2.0]) == 3
    durations = []
    for _ in range(3):  # what pytest-benchmark's runner does per round: start, work, end
        start = clock()
        durations.append(clock() - start)
    assert durations == [0.5, 0.25, 2.0]
    with pytest.raises(RuntimeError, match="more often than it was loaded"):
        clock()
