"""Baselines at their edges: the provenance a written file records, files from before timing
sections, the validation boundaries of a metric, which runs found a timing section, and
tolerances measured from sub-second or zero timings."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers.gating import HW, KEY, OTHER_HW, make_result

import qa
from qa.errors import QABenchError
from qa.gating.baseline_build import baseline_from_results, measured_tolerance, update_baseline
from qa.gating.baselines import (
    Baseline,
    BaselineMetric,
    baseline_path,
    load_baseline,
    load_baseline_file,
)
from qa.gating.verdicts import gate

PROV = {"measured_by": "test", "date": "2024-01-01"}


def _write(root: Path, raw: dict[str, Any]) -> Path:
    path = baseline_path(root, KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw))
    return path


# --------------------------------------------------------------------------- provenance


def test_written_provenance_records_runs_machines_seeds_and_the_last_environment() -> None:
    """Four single-seed runs (no seed list: the seed is in the config), two of them on the same
    machine, one without a fingerprint: the provenance names each machine once, every seed the
    configs name, one run per result, the latest finish and the last run's environment."""
    last_env = {"versions": {"qa-bench": "9.9.9", "torch": "2.4.0"}, "git_commit": "def456",
                "python": "3.12.1"}
    results = [
        make_result(seeds=[], config={"train": {"seed": 7}}, hardware=dict(HW),
                    finished_at="2024-05-02T08:00:00+00:00"),
        make_result(seeds=[], config={"train": {}}, hardware={}, finished_at=""),
        make_result(seeds=[], config={}, hardware=dict(HW),
                    finished_at="2024-05-01T12:00:00+00:00"),
        make_result(seeds=[], config={"train": {"seed": 8}}, hardware=dict(OTHER_HW),
                    environment=last_env, finished_at="2024-04-30T00:00:00+00:00"),
    ]
    provenance = baseline_from_results(results)["provenance"]
    # What makes a run comparable (qa.gating.comparability): the pooled workload, each judged
    # setting's values (a config without a seed counts at the default, 42).
    assert provenance.pop("workload")["data.dataset"] == "synthetic"
    assert provenance.pop("settings")["train.seed"] == [7, 8, 42]
    assert provenance == {
        "measured_by": "qa-bench 9.9.9",  # the version that measured, not the one installed
        "date": "2024-05-02T08:00:00+00:00",  # the latest finish, not the last result's
        "commit": "def456",
        "versions": {"qa-bench": "9.9.9", "torch": "2.4.0"},
        "python": "3.12.1",
        "hardware": [HW, OTHER_HW],  # each machine once; no fingerprint, no entry
        "seeds": [7, 8],  # from the configs; a config without a seed adds none
        "runs": 4,  # a result without a seed list is one run
        "dataset_fingerprint": "fp1",
    }


def test_provenance_of_a_bare_result_falls_back_to_the_installed_version_and_now() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    prov = baseline_from_results([make_result(environment={}, finished_at="")])["provenance"]
    after = datetime.now(timezone.utc)
    assert prov["measured_by"] == f"qa-bench {qa.__version__}"
    assert (prov["commit"], prov["versions"], prov["python"]) == (None, {}, None)
    assert (prov["seeds"], prov["runs"], prov["dataset_fingerprint"]) == ([42], 1, "fp1")
    # No finish time recorded: the time of writing, in UTC, to the second.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", prov["date"]), prov["date"]
    assert before <= datetime.fromisoformat(prov["date"]) <= after + timedelta(seconds=1)


def test_seed_lists_count_one_run_per_seed() -> None:
    seeds = [{"seed": s, "exact_match": 80.0, "f1": 88.0} for s in (1, 2, 3)]
    prov = baseline_from_results([make_result(seeds=seeds), make_result(seeds=[])])["provenance"]
    assert prov["runs"] == 4
    assert prov["seeds"] == [1, 2, 3]  # the seed lists win over the configs' seed (42)


# --------------------------------------------------------------------------- legacy files


def _legacy(hardware: dict[str, Any] | None) -> dict[str, Any]:
    prov = {"measured_by": "qa-bench 0.0.9", "date": "2023-01-01"}
    if hardware is not None:
        prov["hardware"] = hardware
    return {"key": dict(KEY), "provenance": prov,
            "metrics": {"f1": {"value": 88.0, "tolerance": 1.0, "unit": "points",
                               "higher_is_better": True},
                        "compile_s": {"value": 10.0, "tolerance": 0.25, "unit": "ratio",
                                      "higher_is_better": False}}}


@pytest.mark.parametrize(("old", "fingerprint"), [
    ({"cpu": "Old CPU", "cores": 4}, {"cpu": "Old CPU", "cores": 4, "legacy": True}),
    (None, {"legacy": True}),
])
def test_legacy_timings_load_into_a_marked_section(tmp_path: Path, old: Any,
                                                   fingerprint: dict[str, Any]) -> None:
    baseline = load_baseline_file(_write(tmp_path, _legacy(old)))
    assert set(baseline.metrics) == {"f1"}  # accuracy stays top-level
    (section,) = baseline.timings
    assert section.hardware == fingerprint
    assert section.metrics == {"compile_s": BaselineMetric(10.0, 0.25, "ratio", False)}
    assert section.provenance == {"note": "timings from a file without a fingerprint"}
    assert baseline.timing_for(HW) is None


def test_rewriting_a_legacy_file_drops_its_unfingerprinted_timings(tmp_path: Path) -> None:
    _write(tmp_path, _legacy({"cpu": "Old CPU", "cores": 4}))
    update_baseline(tmp_path, [make_result(hardware=dict(OTHER_HW))])
    raw = json.loads(baseline_path(tmp_path, KEY).read_text())
    assert [section["hardware"] for section in raw["timings"]] == [OTHER_HW]
    assert "compile_s" not in raw["metrics"]


# --------------------------------------------------------------------------- loading


def test_a_loaded_baseline_knows_its_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"key": dict(KEY), "metrics": {}, "provenance": PROV})
    assert load_baseline_file(path).path == path
    assert load_baseline_file(str(path)).path == path
    assert load_baseline(tmp_path, KEY).path == path
    assert Baseline.from_dict(json.loads(path.read_text()), path=path).path == path
    assert Baseline.from_dict(json.loads(path.read_text())).path is None


def test_an_unnamed_baseline_is_called_baseline_in_errors() -> None:
    with pytest.raises(QABenchError, match=r"^baseline: a baseline must be a JSON object$"):
        Baseline.from_dict([])
    with pytest.raises(QABenchError, match=r"^baseline: missing field 'key.model'$"):
        Baseline.from_dict({"key": {**KEY, "model": ""}, "metrics": {}, "provenance": PROV})


def _f1(**fields: Any) -> dict[str, Any]:
    return {"value": 88.0, "tolerance": 0.5, "unit": "points", "higher_is_better": True,
            **fields}


def _eval(**fields: Any) -> dict[str, Any]:
    return {"value": 100.0, "tolerance": 0.05, "unit": "ratio", "higher_is_better": True,
            **fields}


def _file(metrics: dict[str, Any] | None = None, timings: list[Any] | None = None,
          key: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"key": key or dict(KEY), "metrics": metrics or {}, "timings": timings or [],
            "provenance": PROV}


@pytest.mark.parametrize(("raw", "message"), [
    (_file(key={**KEY, "model": ""}), "missing field 'key.model'"),
    (_file(key={**KEY, "dataset": 5}), "missing field 'key.dataset'"),
    (_file({"f1": _f1(n=True)}), "metrics.f1.n must be an integer >= 1, got True"),
    (_file({"f1": _f1(n=0)}), "metrics.f1.n must be an integer >= 1, got 0"),
    (_file({"f1": _f1(n=2.5)}), "metrics.f1.n must be an integer >= 1, got 2.5"),
    (_file({"f1": _f1(std=-0.5)}), "metrics.f1.std must be a number >= 0, got -0.5"),
    (_file({"f1": _f1(min="low")}), "metrics.f1.min/max must be numbers"),
    (_file(timings=[{"hardware": HW, "metrics": {"eval_samples_per_s": _eval(value=0.0)}}]),
     r"timings\[0\].metrics.eval_samples_per_s.value must be > 0 for a ratio tolerance"),
    (_file(timings=[{"hardware": HW, "metrics": {"eval_samples_per_s": _eval(value=-1.0)}}]),
     r"eval_samples_per_s.value must be > 0 for a ratio tolerance"),
    (_file(timings=[{"hardware": {}, "metrics": {}}]),
     r"timings\[0\]: missing field 'hardware' \(the fingerprint it was measured on\)"),
    (_file(timings=["cpu"]), r"timings\[0\] must be an object"),
    (_file(timings=[{"hardware": HW, "metrics": {"eval_samples_per_s": _eval(
        tolerance=-0.05)}}]),
     r"timings\[0\].metrics.eval_samples_per_s.tolerance must be a number >= 0, got -0.05"),
])
def test_invalid_metrics_name_file_and_field(tmp_path: Path, raw: dict[str, Any],
                                             message: str) -> None:
    path = _write(tmp_path, raw)
    with pytest.raises(QABenchError, match=message) as info:
        load_baseline_file(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(("field", "value"), [
    ("value", 100.5), ("value", -0.5), ("tolerance", 101.0), ("std", 150.0), ("min", -1.0),
    ("max", 100.5)])
def test_a_score_outside_0_to_100_points_is_refused_naming_the_field(
        tmp_path: Path, field: str, value: float) -> None:
    """EM and F1 are percentages: a value, tolerance, spread or run range outside 0 .. 100
    points is a broken file (a fraction written as points, a typo), never a gate."""
    path = _write(tmp_path, _file({"f1": _f1(**{field: value})}))
    with pytest.raises(QABenchError) as info:
        load_baseline_file(path)
    assert str(info.value) == (f"{path}: metrics.f1.{field} must be in 0 .. 100 points for f1, "
                               f"got {value!r}")


@pytest.mark.parametrize(("provenance", "message"), [
    ({"settings": {"train.seed": 42}},
     "field 'provenance.settings.train.seed' must be a list, got 42"),
    ({"runs": "3"}, "field 'provenance.runs' must be an integer >= 1, got '3'"),
    ({"runs": 2.5}, "field 'provenance.runs' must be an integer >= 1, got 2.5"),
    ({"runs": True}, "field 'provenance.runs' must be an integer >= 1, got True"),
])
def test_a_malformed_provenance_count_or_setting_is_refused(provenance: dict[str, Any],
                                                             message: str) -> None:
    with pytest.raises(QABenchError) as info:
        Baseline.from_dict({**_file(), "provenance": {**PROV, **provenance}}, source="b.json")
    assert str(info.value) == f"b.json: {message}"


def test_boundary_values_that_are_valid(tmp_path: Path) -> None:
    """Tolerance 0 (the exact value, no slack), an accuracy of 0 points (a model that learned
    nothing is still a baseline), std 0 and a single run all load."""
    path = _write(tmp_path, _file({"exact_match": {**_f1(value=0.0, tolerance=0.0, std=0.0,
                                                           n=1)},
                                   "f1": _f1(tolerance=0.0)}))
    baseline = load_baseline_file(path)
    assert baseline.metrics["exact_match"] == BaselineMetric(0.0, 0.0, "points", True, 0.0, 1)
    f1 = {v.metric: v for v in gate(make_result(f1=88.0), baseline)}["f1"]
    assert (f1.status, f1.tolerance) == ("pass", 0.0)
    f1 = {v.metric: v for v in gate(make_result(f1=87.99), baseline)}["f1"]
    assert f1.status == "fail"


def test_a_single_run_or_unknown_count_gets_no_sigma_gate() -> None:
    for n in (None, 1):
        metric = BaselineMetric(88.0, 0.5, "points", True, std=2.0, n=n, min=80.0, max=90.0)
        assert metric.effective_tolerance() == 0.5
    assert BaselineMetric(88.0, 0.5, "points", True, std=2.0, n=2).effective_tolerance() == 6.0


# --------------------------------------------------------------------------- timing sections


def test_timing_sections_skip_busy_and_unfingerprinted_runs_but_accuracy_pools_them() -> None:
    busy = make_result(em=70.0, sps=10.0)
    busy.timings["contention"] = {"other_cpu_share": 0.6, "steal_share": 0.0}
    blind = make_result(em=90.0, sps=20.0, hardware={})
    quiet = make_result(em=80.0, sps=100.0)
    data = baseline_from_results([blind, busy, quiet])
    (section,) = data["timings"]
    assert section["hardware"] == HW
    assert section["metrics"]["train_samples_per_s"]["value"] == 100.0  # the quiet run alone
    assert section["provenance"]["processes"] == 1
    assert data["metrics"]["exact_match"]["value"] == 80.0  # mean of 70, 90 and 80
    assert data["metrics"]["exact_match"]["n"] == 3


def test_update_gives_each_entry_the_timing_runs_of_its_own(tmp_path: Path) -> None:
    other_key = {**KEY, "model": "other"}
    accuracy = [make_result(em=80.0, sps=1.0), make_result(em=60.0, sps=1.0, key=other_key)]
    timing = [make_result(sps=200.0), make_result(sps=50.0, key=other_key)]
    update_baseline(tmp_path, accuracy, timing_results=timing)
    mine, other = load_baseline(tmp_path, KEY), load_baseline(tmp_path, other_key)
    assert mine.timings[0].metrics["train_samples_per_s"].value == 200.0
    assert other.timings[0].metrics["train_samples_per_s"].value == 50.0
    assert (mine.metrics["exact_match"].value, other.metrics["exact_match"].value) == (80.0, 60.0)


def _warm(warm_s: float | None, cold_s: float | None = None) -> Any:
    return make_result(timings={"compile": {"cold_s": cold_s, "warm_s": warm_s}})


def test_sub_second_timings_get_their_range_as_tolerance_rounded_to_four_decimals() -> None:
    # A cached compile of 0.4 s and 0.8 s: median 0.6, range 0.4 → 66.67 % > the 50 % floor.
    assert measured_tolerance("compile_warm_s", [_warm(0.4), _warm(0.8)]) == 0.6667
    # Two close runs stay at the floor.
    assert measured_tolerance("compile_warm_s", [_warm(0.5), _warm(0.6)]) == 0.5


def test_a_zero_median_time_gives_the_floor_not_a_division_by_zero() -> None:
    runs = [_warm(None, 0.0), _warm(None, 0.0), _warm(None, 2.0)]
    assert measured_tolerance("compile_s", runs) == 0.25
    # and no timing section gates a metric measured as zero
    assert "compile_s" not in baseline_from_results(runs)["timings"][0]["metrics"]
