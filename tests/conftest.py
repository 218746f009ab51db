"""Hypothesis profiles for the property tests (``tests/test_properties_*.py``).

``dev`` (default): random examples, the failing ones kept in ``.hypothesis/`` (not in git) and
replayed first next time. ``ci`` (when ``$CI`` is set, as in ``.ci/run``): derandomized, so a CI
run is reproducible and cannot turn red by chance; no example database. ``mutation`` (``tox -e
mutation``): derandomized and fewer examples, since every mutant reruns the properties that
reach it. None has a deadline: a shared 2-core machine makes per-example timing meaningless.
Choose one explicitly with ``QA_BENCH_HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ModuleNotFoundError:  # an env that runs no property test (tox -e ipu-emulated)
    settings = None

if settings is not None:
    _COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile("dev", max_examples=100, **_COMMON)
    settings.register_profile("ci", max_examples=100, derandomize=True, database=None,
                              print_blob=True, **_COMMON)
    settings.register_profile("mutation", max_examples=30, derandomize=True, database=None,
                              **_COMMON)
    settings.load_profile(os.environ.get("QA_BENCH_HYPOTHESIS_PROFILE")
                          or ("ci" if os.environ.get("CI") else "dev"))
