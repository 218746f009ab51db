"""What a baseline file holds after ``--update-baselines``: its JSON form reloads to the same
baseline, numbers are rounded for a readable diff, entries and metrics are independent of each
other, and verdicts survive ``verdicts.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from helpers.gating import KEY, make_result

from qa.gating.baseline_build import baseline_from_results, update_baseline
from qa.gating.baselines import Baseline, baseline_path, load_baseline, load_baseline_file
from qa.gating.verdicts import Verdict
from qa.results.metricspec import timing_values

OTHER = {**KEY, "model": "other-model"}
FAILED = {**KEY, "model": "failed-model"}


def test_a_baseline_reloads_from_its_own_json_form(tmp_path: Path) -> None:
    """``Baseline.to_dict`` is what gets written: every section (timings and their provenance
    included) must come back from it unchanged."""
    (path,) = update_baseline(tmp_path, [make_result()])
    loaded = load_baseline_file(path)
    assert loaded.timings and loaded.timings[0].provenance  # something to lose
    again = Baseline.from_dict(json.loads(json.dumps(loaded.to_dict())))
    assert again == dataclasses.replace(loaded, path=None)


def test_written_numbers_are_rounded_to_four_decimals(tmp_path: Path) -> None:
    seeds = [{"seed": 42, "exact_match": 80.123456789, "f1": 88.0},
             {"seed": 43, "exact_match": 81.987654321, "f1": 88.0}]
    result = make_result(em=81.0, sps=123.456789123, seeds=seeds)
    (path,) = update_baseline(tmp_path, [result])
    raw = json.loads(path.read_text())
    em = raw["metrics"]["exact_match"]
    assert em["value"] == 81.0556 and em["n"] == 2
    assert (em["min"], em["max"]) == (80.1235, 81.9877)
    assert em["std"] == 1.3182  # two samples are enough for a spread
    assert raw["metrics"]["f1"]["std"] == 0.0
    assert raw["timings"][0]["metrics"]["train_samples_per_s"]["value"] == 123.4568


def test_an_explicit_accuracy_tolerance_replaces_the_kept_one(tmp_path: Path) -> None:
    update_baseline(tmp_path, [make_result()])
    path = baseline_path(tmp_path, KEY)
    raw = json.loads(path.read_text())
    raw["metrics"]["f1"]["tolerance"] = 0.3  # hand-set
    path.write_text(json.dumps(raw))
    update_baseline(tmp_path, [make_result()], accuracy_tolerance=0.7)
    metrics = load_baseline_file(path).metrics
    assert (metrics["f1"].tolerance, metrics["exact_match"].tolerance) == (0.7, 0.7)


def test_every_entry_of_an_update_gets_its_own_file(tmp_path: Path) -> None:
    """A sweep updates several entries at once; an entry whose runs all failed is skipped without
    stopping the ones after it."""
    results = [make_result(key=dict(FAILED), status="failed"), make_result(em=70.0),
               make_result(key=dict(OTHER), em=60.0)]
    written = update_baseline(tmp_path, results)
    assert written == [baseline_path(tmp_path, KEY), baseline_path(tmp_path, OTHER)]
    assert load_baseline(tmp_path, KEY).metrics["exact_match"].value == 70.0
    assert load_baseline(tmp_path, OTHER).metrics["exact_match"].value == 60.0
    assert load_baseline(tmp_path, FAILED) is None


def test_a_metric_a_run_did_not_measure_does_not_drop_the_ones_after_it() -> None:
    no_em = make_result(metrics={"f1": 88.0}, seeds=[{"seed": 42, "f1": 88.0}])
    assert set(baseline_from_results([no_em])["metrics"]) == {"f1"}
    timings = {"train_samples_per_s": 100.0, "compile": {"cold_s": 10.0, "warm_s": 2.0}}
    no_eval = make_result(timings=timings)  # no eval throughput measured
    section = baseline_from_results([no_eval])["timings"][0]["metrics"]
    assert set(section) == {"train_samples_per_s", "compile_s", "compile_warm_s"}


def test_a_zero_timing_founds_no_timing_gate() -> None:
    """A ratio tolerance around 0 s would judge nothing; such a metric is left out."""
    data = baseline_from_results([make_result(compile_cold=0.0)])
    assert "compile_s" not in data["timings"][0]["metrics"]
    assert "train_samples_per_s" in data["timings"][0]["metrics"]


def test_timing_values_are_the_measured_hardware_bound_metrics() -> None:
    values = timing_values(make_result(sps=50.0, compile_cold=7.5))
    assert values == {"train_samples_per_s": 50.0, "eval_samples_per_s": 100.0,
                      "compile_s": 7.5}


def test_verdicts_survive_their_json_form() -> None:
    """``verdicts.json`` is read back by the report: the round trip keeps every field, and keys
    from a newer writer are ignored."""
    verdict = Verdict(entry="torch/cpu/m/d", metric="f1", value=87.0, baseline=88.0,
                      delta=-1.0, tolerance=0.5, unit="points", status="fail",
                      higher_is_better=True, message="f1 87.0 < 88.0 - 0.5")
    raw = json.loads(json.dumps(verdict.to_dict()))
    assert raw["metric"] == "f1" and raw["status"] == "fail"
    assert Verdict.from_dict(raw) == verdict
    assert Verdict.from_dict({**raw, "added_later": 1}) == verdict
