"""Per matrix entry: compile time, train throughput, eval throughput, EM and F1 vs baselines.

One pipeline run per entry is shared by its tests. Timings go into pytest-benchmark (the very
step times the gate judges), EM/F1 and the RunResult into its ``extra_info``.
"""

from __future__ import annotations

import pytest

from qa.pytest_support import GATED, check_gate


def _judge(qa_session, entry, test: str) -> None:
    status, message = check_gate(qa_session, entry, test)
    if status == "skip":
        pytest.skip(message)
    if status == "fail":
        pytest.fail(message, pytrace=False)
    if status == "improved":
        qa_session.notes.append(f"{entry.id}: {message}")


@pytest.mark.parametrize("test", list(GATED))
def test_gate(qa_session, entry, test, benchmark) -> None:
    """Each gated metric of an entry against its baseline."""
    from qa.pytest_support import record_benchmark

    result = qa_session.result(entry)
    record_benchmark(benchmark, result, test)
    _judge(qa_session, entry, test)
