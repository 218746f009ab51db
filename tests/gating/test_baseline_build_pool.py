"""``qa-bench baseline --pool`` (``qa.gating.baseline_build.baseline_from_results(pool=True)``):
new runs join the runs a committed baseline was measured from. The gate that results must be the
union's (n, mean, sample std, min, max, from the old summary and the new runs), and the
provenance must still say everything the pool was measured on: both machines, every seed, every
run counted once, each judged setting's values over both pools, and what it was pooled with.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from helpers.gating import HW, KEY, OTHER_HW, make_result, provenance

from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.gating.baseline_build import baseline_from_results
from qa.gating.baselines import Baseline


def _previous(metrics: dict[str, dict[str, Any]], **extra: Any) -> Baseline:
    """A committed baseline with the given accuracy metrics (points, higher is better)."""
    return Baseline.from_dict({
        "key": dict(KEY),
        "metrics": {name: {"tolerance": 1.0, "unit": "points", "higher_is_better": True, **m}
                    for name, m in metrics.items()},
        "provenance": provenance(**extra)})


def _one_run(em: float, f1: float) -> list:
    return [make_result(em=em, f1=f1, seeds=[{"seed": 44, "exact_match": em, "f1": f1}],
                        started_at="2024-06-01T10:00:00+00:00")]


def _metric(data: dict[str, Any], name: str) -> tuple:
    m = data["metrics"][name]
    return m["n"], m["value"], m.get("std"), m["min"], m["max"]


def test_a_single_run_records_no_spread() -> None:
    """One run has no sample std: none is written (a 0.0 would claim a measured spread)."""
    data = baseline_from_results([make_result(em=80.0, f1=88.0)])
    assert data["metrics"]["exact_match"] == {"value": 80.0, "tolerance": 1.0, "n": 1,
                                              "min": 80.0, "max": 80.0, "unit": "points",
                                              "higher_is_better": True}


def test_pooling_keeps_the_old_runs_range_and_spread() -> None:
    """Three old runs (mean 80, std 2, 78 .. 82) and a new one at 84 for EM; for F1 a new run
    below the old range: the union's summary, the old extremes kept where they still are."""
    previous = _previous({"exact_match": {"value": 80.0, "n": 3, "std": 2.0, "min": 78.0,
                                          "max": 82.0},
                          "f1": {"value": 88.0, "n": 3, "std": 2.0, "min": 86.0, "max": 90.0}})
    data = baseline_from_results(_one_run(84.0, 85.0), previous, pool=True)
    # The union of three runs with that summary and the new one (e.g. 78, 80, 82 and 84).
    assert _metric(data, "exact_match") == (4, 81.0, round(statistics.stdev([78, 80, 82, 84]), 4),
                                            78.0, 84.0)
    assert _metric(data, "f1") == (4, 87.25, round(statistics.stdev([86, 88, 90, 85]), 4),
                                   85.0, 90.0)
    # Without --pool the old runs are not counted: the new run alone.
    alone = baseline_from_results(_one_run(84.0, 85.0), previous)
    assert _metric(alone, "exact_match") == (1, 84.0, None, 84.0, 84.0)


def test_pooling_with_old_runs_that_agreed_exactly() -> None:
    """Three old runs at exactly 80 (std 0.0 in the file) and a new one at 84: std 2.0, the
    old runs adding nothing but their distance to the new mean."""
    previous = _previous({"exact_match": {"value": 80.0, "n": 3, "std": 0.0, "min": 80.0,
                                          "max": 80.0}})
    data = baseline_from_results(_one_run(84.0, 88.0), previous, pool=True)
    assert _metric(data, "exact_match") == (4, 81.0, 2.0, 80.0, 84.0)


def test_pooling_two_single_runs_gives_their_spread() -> None:
    previous = _previous({"exact_match": {"value": 80.0, "n": 1}})
    data = baseline_from_results(_one_run(82.0, 88.0), previous, pool=True)
    assert _metric(data, "exact_match") == (2, 81.0, round(math.sqrt(2.0), 4), 80.0, 82.0)


def test_pooling_into_a_baseline_without_a_recorded_range() -> None:
    """A file written before min/max were recorded: the old mean stands for the old range."""
    previous = _previous({"exact_match": {"value": 80.0, "n": 2, "std": 1.0},
                          "f1": {"value": 88.0, "n": 2, "std": 1.0}})
    data = baseline_from_results(_one_run(84.0, 85.0), previous, pool=True)
    assert _metric(data, "exact_match")[3:] == (80.0, 84.0)
    assert _metric(data, "f1")[3:] == (85.0, 88.0)


def _settings(**changed: Any) -> dict[str, Any]:
    config = RunConfig().to_dict()
    for dotted, value in changed.items():
        section, name = dotted.split("__")
        config[section][name] = value
    return config


def test_the_pooled_provenance_keeps_both_pools() -> None:
    """The provenance of a pooled baseline: both machines, every seed and run, each judged
    setting's values over both pools (the old ones first), the runs pooled so far, and what the
    old pool was — so a later ``--pool`` of the same runs is refused and a reader sees it all."""
    old_runs = [make_result(em=80.0, f1=88.0, hardware=dict(OTHER_HW),
                            seeds=[{"seed": s, "exact_match": 80.0, "f1": 88.0}],
                            started_at=f"2024-05-0{s - 41}T10:00:00+00:00",
                            finished_at=f"2024-05-0{s - 41}T11:00:00+00:00",
                            environment={"git_commit": "old1234", "versions": {}})
                for s in (42, 43)]
    old = baseline_from_results(old_runs)
    old["provenance"]["pooled_results"] = ["2024-04-01T10:00:00+00:00", "2024-05-01T10:00:00+00:00",
                                           "2024-05-02T10:00:00+00:00"]
    old["provenance"]["workload_source"] = "reconstructed from the profile at abc123"
    # A setting judged back then but no longer, and one judged only since.
    old["provenance"]["settings"]["train.retired_knob"] = [1]
    del old["provenance"]["settings"]["model.trust_remote_code"]
    previous = Baseline.from_dict(old)
    new = make_result(em=82.0, f1=89.0, seeds=[{"seed": 44, "exact_match": 82.0, "f1": 89.0}],
                      config=_settings(train__learning_rate=0.002),
                      started_at="2024-06-01T10:00:00+00:00")

    got = baseline_from_results([new], previous, pool=True)["provenance"]

    assert got["pooled_results"] == [*old["provenance"]["pooled_results"],
                                     "2024-06-01T10:00:00+00:00"]
    assert got["hardware"] == [OTHER_HW, HW]
    assert got["seeds"] == [42, 43, 44]
    assert got["runs"] == 3
    assert got["pooled_with"] == {"date": "2024-05-02T11:00:00+00:00", "commit": "old1234",
                                  "runs": 2}
    assert got["workload_source"] == "reconstructed from the profile at abc123"
    settings = got["settings"]
    assert sorted(settings) == sorted({*old["provenance"]["settings"], "model.trust_remote_code"})
    assert settings["train.learning_rate"] == [RunConfig().train.learning_rate, 0.002]
    assert settings["train.retired_knob"] == [1]
    assert settings["model.trust_remote_code"] == [RunConfig().model.trust_remote_code]
    # Written as it is, the file loads; without --pool none of the old pool is claimed.
    Baseline.from_dict(baseline_from_results([new], previous, pool=True))
    alone = baseline_from_results([new], previous)["provenance"]
    assert (alone["runs"], alone["seeds"], alone["hardware"]) == (1, [44], [HW])
    assert "pooled_with" not in alone and "pooled_results" not in alone
    assert alone["settings"]["train.learning_rate"] == [0.002]


def test_pooling_into_a_baseline_without_counts_claims_only_what_it_knows() -> None:
    """An older provenance with no run count, seeds, hardware or workload source: the pooled
    one counts the new runs only and invents nothing."""
    previous = _previous({"exact_match": {"value": 80.0, "n": 1}})
    assert "runs" not in previous.provenance and "workload_source" not in previous.provenance
    got = baseline_from_results(_one_run(82.0, 88.0), previous, pool=True)["provenance"]
    assert (got["runs"], got["seeds"], got["hardware"]) == (1, [44], [HW])
    assert got["pooled_with"] == {"date": "2024-01-01", "commit": None, "runs": None}
    assert "workload_source" not in got


def test_pooling_other_runs_twice_is_allowed_the_same_runs_never() -> None:
    """Each run counts once: the same started_at again is refused, another run is pooled."""
    previous = Baseline.from_dict(baseline_from_results(_one_run(80.0, 88.0)))
    first = baseline_from_results(_one_run(82.0, 88.0), previous, pool=True)
    assert first["provenance"]["pooled_results"] == ["2024-06-01T10:00:00+00:00"]
    later = [make_result(em=81.0, f1=88.0, started_at="2024-06-02T10:00:00+00:00")]
    second = baseline_from_results(later, Baseline.from_dict(first), pool=True)
    assert second["provenance"]["pooled_results"] == ["2024-06-01T10:00:00+00:00",
                                                      "2024-06-02T10:00:00+00:00"]
    with pytest.raises(QABenchError, match="already pooled into this baseline"):
        baseline_from_results(_one_run(82.0, 88.0), Baseline.from_dict(first), pool=True)
