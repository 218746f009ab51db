"""Hypothesis profiles for the property tests (``tests/*/test_*_properties.py``).

``dev`` (default): random examples, the failing ones kept in ``.hypothesis/`` (not in git) and
replayed first next time. ``ci`` (when ``$CI`` is set, as in ``.ci/run``): derandomized, so a CI
run is reproducible and cannot turn red by chance; no example database. ``mutation`` (``tox -e
mutation``): derandomized and 15 examples, since every mutant reruns the properties that
reach it (at 30, each surviving preprocessing mutant spent 6.5 of its 16 s in them), and no
shrinking, since a mutant needs one failing example, not the smallest one
(shrinking took longer than a mutant's time limit and turned kills into timeouts). None has a
deadline: a shared 2-core machine makes per-example timing meaningless.
Choose one explicitly with ``QA_BENCH_HYPOTHESIS_PROFILE``.

Under the ``mutation`` profile the collected tests are also reordered (the hook below):
mutmut names each mutant's tests in set order, which interleaves modules (so module-scoped
fixtures are rebuilt again and again) and may run a 7-second test before the 0.1-second one that
kills the mutant. Example-based tests come first, property tests last; each group is ordered by
module, cheapest module first and cheapest test first inside it, by the durations mutmut
recorded (``mutmut-stats.json`` beside the mutated tree).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

try:
    from hypothesis import HealthCheck, Phase, settings
except ModuleNotFoundError:  # an env that runs no property test (tox -e ipu-emulated)
    settings = None

PROFILE = os.environ.get("QA_BENCH_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")

if settings is not None:
    _COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile("dev", max_examples=100, **_COMMON)
    settings.register_profile("ci", max_examples=100, derandomize=True, database=None,
                              print_blob=True, **_COMMON)
    settings.register_profile("mutation", max_examples=15, derandomize=True, database=None,
                              phases=(Phase.explicit, Phase.generate), **_COMMON)
    settings.load_profile(PROFILE)


def _recorded_seconds() -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per test and per test module from mutmut's recorded durations (none before it
    has recorded any)."""
    try:
        durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
        tests = {str(nodeid): float(took) for nodeid, took in durations.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, {}
    modules: dict[str, float] = {}
    for nodeid, took in tests.items():
        module = nodeid.split("::", 1)[0]
        modules[module] = modules.get(module, 0.0) + took
    return tests, modules


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if PROFILE != "mutation":
        return
    tests, modules = _recorded_seconds()

    def key(item: pytest.Item) -> tuple:
        module, line, _ = item.location
        is_property = bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))
        return (is_property, modules.get(module, 0.0), module, tests.get(item.nodeid, 0.0),
                line if line is not None else -1, item.nodeid)

    items.sort(key=key)


# Fixtures shared by several test modules.

@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a network connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
