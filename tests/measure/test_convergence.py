"""Time-to-target: when the periodic evaluation runs, what it records, and that it is inert."""

from __future__ import annotations

import pytest

from qa.config.schema import RunConfig, apply_overrides
from qa.errors import QABenchError
from qa.measure.convergence import ConvergenceMonitor


def _scripted(values: list[float]) -> ConvergenceMonitor:
    scores = iter(values)
    return ConvergenceMonitor(lambda model: {"exact_match": next(scores), "f1": 0.0},
                              target=80.0, every=0.25, examples=10)


def test_evaluates_every_share_of_the_steps_and_always_at_the_end() -> None:
    monitor = _scripted([])
    due = [step for step in range(1, 11) if monitor.due(step, 10)]
    # round(0.25 * 10) = 2 (banker's rounding of 2.5), and the last step always
    assert due == [2, 4, 6, 8, 10]
    assert [s for s in range(1, 102) if monitor.due(s, 101)] == [25, 50, 75, 100, 101]


def test_off_when_every_is_zero() -> None:
    monitor = ConvergenceMonitor(lambda model: {}, every=0.0)
    assert not any(monitor.due(step, 10) for step in range(1, 11))


def test_first_crossing_is_kept_not_the_best_or_the_last() -> None:
    monitor = _scripted([10.0, 80.0, 60.0, 95.0])
    for step, seconds in ((25, 1.0), (50, 2.0), (75, 3.0), (100, 4.0)):
        monitor.record(None, step, seconds, 100)
    summary = monitor.summary()
    assert (summary["steps"], summary["train_s"], summary["fraction"]) == (50, 2.0, 0.5)
    assert [p["exact_match"] for p in summary["curve"]] == [10.0, 80.0, 60.0, 95.0]
    assert summary["evaluations"] == 4


def test_never_reached_is_null() -> None:
    monitor = _scripted([79.999, 50.0])
    monitor.record(None, 1, 0.1, 2)
    monitor.record(None, 2, 0.2, 2)
    summary = monitor.summary()
    assert summary["steps"] is None and summary["train_s"] is None and summary["fraction"] is None


def test_target_on_f1() -> None:
    monitor = ConvergenceMonitor(lambda model: {"exact_match": 0.0, "f1": 81.0}, metric="f1",
                                 target=81.0)
    monitor.record(None, 3, 0.3, 3)
    assert monitor.summary()["steps"] == 3


@pytest.mark.parametrize("override", ["target.metric=exact", "target.every=1.5",
                                      "target.every=-0.1", "target.examples=0"])
def test_bad_target_settings_are_one_line_errors(override: str) -> None:
    with pytest.raises(QABenchError, match="target"):
        apply_overrides(RunConfig(), [override])
