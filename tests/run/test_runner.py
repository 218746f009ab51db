"""Fault handling of a matrix run: timeouts, failures recorded with their stage, seeds merged."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from qa import progress
from qa.backends.torch import TorchBackend
from qa.config.schema import RunConfig, apply_overrides
from qa.errors import QABenchError
from qa.progress import LineReporter
from qa.results.store import RunResult
from qa.run.pipeline import STAGES, run_entry
from qa.run.runner import EntryTimeout, RunOptions, aggregate_seeds, run_one, time_limit

TINY = ["data.synthetic_train_contexts=40", "data.synthetic_validation_contexts=8",
        "data.max_length=128", "data.doc_stride=64", "train.max_steps=4",
        "train.compile_eval=false", "torch.device=cpu", "model.vocab_size=800"]


def test_time_limit_interrupts_the_block() -> None:
    started = time.perf_counter()
    with pytest.raises(EntryTimeout), time_limit(0.2):
        time.sleep(5)
    assert time.perf_counter() - started < 2


def test_an_entry_past_its_timeout_is_recorded_as_timeout(tmp_path) -> None:
    config = apply_overrides(RunConfig(), TINY + ["train.max_steps=100000"])
    result = run_one(config, RunOptions(out_dir=tmp_path, entry_timeout=3, cache_dir=tmp_path,
                                        progress=False))
    assert result.status == "timeout"
    assert "entry-timeout" in result.failure["cause"]
    assert result.failure["stage"] in STAGES  # where it was when the alarm went off


def test_a_timeout_never_breaks_the_next_entry(tmp_path) -> None:
    """An alarm that fires while a stage imports its library must not leave that library
    half-imported for the entries after it (a fresh process, so nothing is imported yet)."""
    code = f"""
from pathlib import Path
from qa.config.schema import RunConfig, apply_overrides
from qa.run.runner import RunOptions, run_one
config = apply_overrides(RunConfig(), {TINY!r})
tmp = Path({str(tmp_path)!r})
timed_out = run_one(config, RunOptions(out_dir=tmp, entry_timeout=0.05, cache_dir=tmp,
                                       progress=False))
after = run_one(config, RunOptions(out_dir=tmp, cache_dir=tmp, progress=False))
print(timed_out.status, after.status, (after.failure or {{}}).get("cause", ""))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["timeout", "ok"], out.stdout


def _out_of_memory(*args, **kwargs):
    raise MemoryError("cannot allocate 12 GiB")


@pytest.mark.parametrize(("every", "stage", "before"), [
    (0.0, "predict", "train"),  # no periodic evaluation: the final prediction calls predict first
    (0.5, "train", "compile"),  # the time-to-target evaluation calls predict inside training
])
def test_a_raising_stage_is_recorded_with_stage_and_cause(tmp_path, monkeypatch, every: float,
                                                          stage: str, before: str) -> None:
    monkeypatch.setattr(TorchBackend, "predict", _out_of_memory)
    config = apply_overrides(RunConfig(), TINY + [f"target.every={every}"])
    lines: list[str] = []
    reporter = LineReporter(lines.append)
    reporter.start_run("tiny", "tiny seed 42")
    with progress.use(reporter):
        result = run_entry(config, cache_dir=tmp_path, progress=False)
    reporter.end_run(result.status)
    assert result.status == "failed"
    # The progress lines name every stage that ran, in order, up to the one that failed.
    shown = [line.split(" · ")[1] for line in lines]
    assert shown == ["start", *STAGES[:STAGES.index(stage) + 1], "failed"], lines
    assert result.failure["stage"] == stage
    assert "out of memory" in result.failure["cause"]
    assert before in result.timings["stage_s"]  # the stages before it ran and were timed


def test_seeds_are_merged_into_mean_and_std() -> None:
    def result(seed: int, em: float) -> RunResult:
        return RunResult(key={"backend": "torch", "pod": "cpu", "model": "m", "dataset": "d"},
                         config={}, metrics={"exact_match": em, "f1": em + 1},
                         seeds=[{"seed": seed, "exact_match": em, "f1": em + 1}])

    merged = aggregate_seeds([result(1, 10.0), result(2, 20.0), result(3, 30.0)])
    assert merged.metrics["exact_match"] == pytest.approx(20.0)
    assert merged.metrics["exact_match_std"] == pytest.approx(10.0)
    assert [s["seed"] for s in merged.seeds] == [1, 2, 3]


def test_seed_list_from_seeds_set_or_profile() -> None:
    from qa.run.preflight import seed_list

    assert seed_list(None, [7, 8]) == [7, 8]
    assert seed_list(3, [7]) == [42, 43, 44]
    # --set train.seed=S runs that seed (the profile's seed list would silently override it)
    assert seed_list(None, [42], ["train.lr=1", "train.seed=45"]) == [45]
    with pytest.raises(QABenchError, match="not both"):
        seed_list(2, [42], ["train.seed=45"])
    with pytest.raises(QABenchError, match="train.seed expects int"):
        seed_list(None, [42], ["train.seed=x"])
    with pytest.raises(QABenchError, match="at least 1"):
        seed_list(0, [42])
