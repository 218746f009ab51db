"""Per matrix entry: every gated metric (``qa.results.metricspec.METRICS``) against its baseline.

One pipeline run per entry is shared by its tests. pytest-benchmark records the very durations
the gate judges (replayed through its ``timer`` option, see
``qa.frontends.pytest_support.ReplayClock``);
EM/F1 and the RunResult's timings travel in its ``extra_info``.
"""

from __future__ import annotations

import pytest

from qa.frontends.pytest_support import REPLAY_CLOCK, check_gate, record_benchmark
from qa.results.metricspec import METRICS


@pytest.mark.benchmark(timer=REPLAY_CLOCK)
@pytest.mark.parametrize("metric", list(METRICS))
def test_gate(qa_session, entry, metric, benchmark) -> None:
    """Each gated metric of an entry against its baseline."""
    record_benchmark(benchmark, qa_session.result(entry), metric)
    status, message = check_gate(qa_session, entry, metric)
    if status == "skip":
        pytest.skip(message)
    if status == "fail":
        pytest.fail(message, pytrace=False)
    if status == "improved":
        qa_session.notes.append(f"{entry.id}: {message}")
