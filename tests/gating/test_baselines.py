"""Baselines: gate directions, tolerances, σ-gates, update/load round trip, schema errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.gating import (
    HW,
    IPU_HW,
    IPU_KEY,
    KEY,
    OTHER_HW,
    by_metric,
    make_baseline,
    make_result,
)

from qa.errors import QABenchError
from qa.gating.baseline_build import baseline_from_results, measured_tolerance, update_baseline
from qa.gating.baselines import (
    Baseline,
    BaselineMetric,
    baseline_path,
    load_baseline,
    load_baseline_file,
)
from qa.gating.references import load_references
from qa.gating.verdicts import gate, judge
from qa.results.metricspec import METRICS
from qa.results.store import RunResult

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("value", "status"), [
    (87.5, "pass"),      # exactly at the bad boundary
    (87.49, "fail"),
    (88.5, "pass"),      # exactly at the good boundary
    (88.51, "improved"),
])
def test_points_tolerance_is_absolute(value: float, status: str) -> None:
    baseline = make_baseline(f1={"value": 88.0, "tolerance": 0.5})
    verdict = by_metric(gate(make_result(f1=value), baseline))["f1"]
    assert verdict.status == status
    assert verdict.delta == pytest.approx(value - 88.0)
    assert verdict.tolerance == 0.5


@pytest.mark.parametrize(("value", "status"), [
    (95.0, "pass"),      # -5 % exactly: float rounding must not fail the boundary
    (94.9, "fail"),
    (105.0, "pass"),
    (105.1, "improved"),
])
def test_ratio_tolerance_is_relative_and_higher_is_better(value: float, status: str) -> None:
    baseline = make_baseline(train_samples_per_s={"value": 100.0, "tolerance": 0.05})
    verdict = by_metric(gate(make_result(sps=value), baseline))["train_samples_per_s"]
    assert verdict.status == status
    assert verdict.delta == pytest.approx(value / 100.0 - 1)


@pytest.mark.parametrize(("value", "status"), [
    (12.5, "pass"), (12.6, "fail"), (7.5, "pass"), (7.4, "improved")])
def test_lower_is_better_compile_time(value: float, status: str) -> None:
    baseline = make_baseline(compile_s={"value": 10.0, "tolerance": 0.25})
    verdict = by_metric(gate(make_result(compile_cold=value), baseline))["compile_s"]
    assert verdict.status == status
    assert not verdict.higher_is_better


def test_improved_is_not_a_failure_and_says_update() -> None:
    verdict = by_metric(gate(make_result(f1=95.0),
                                make_baseline(f1={"value": 88.0, "tolerance": 0.5})))["f1"]
    assert verdict.status == "improved" and not verdict.failed
    assert "update the baseline" in verdict.message


def test_judge_zero_reference_ratio() -> None:
    assert judge(0.0, 0.0, 0.1, "ratio", True) == (0.0, "pass")
    assert judge(1.0, 0.0, 0.1, "ratio", False)[1] == "fail"


def test_missing_baseline_file_gives_none_and_missing_verdicts(tmp_path: Path) -> None:
    assert load_baseline(tmp_path, KEY) is None
    verdicts = gate(make_result(), None)
    assert verdicts and {v.status for v in verdicts} == {"missing"}
    assert all(v.message == "no baseline file" for v in verdicts)


def test_metric_missing_from_baseline_or_from_run() -> None:
    baseline = make_baseline(f1={"value": 88.0, "tolerance": 0.5},
                             compile_warm_s={"value": 1.0, "tolerance": 0.5})
    verdicts = by_metric(gate(make_result(), baseline))
    assert verdicts["eval_samples_per_s"].status == "missing"
    assert verdicts["eval_samples_per_s"].message == "not in the baseline"
    assert verdicts["compile_warm_s"].status == "fail"  # gated, but this run did not measure it
    assert verdicts["f1"].status == "pass"


def test_failed_run_fails_every_gated_metric() -> None:
    baseline = make_baseline(f1={"value": 88.0, "tolerance": 0.5})
    (verdict,) = gate(make_result(status="diverged"), baseline)
    assert verdict.status == "fail" and verdict.value is None and "diverged" in verdict.message


def test_v2_exact_counts_as_exact_match() -> None:
    result = make_result(metrics={"exact": 70.0, "f1": 73.0}, seeds=[])
    assert METRICS["exact_match"].extract(result) == 70.0


def test_gate_passes_the_worst_run_pooled_and_no_more() -> None:
    # Twenty runs: nineteen at 99-100 and one late learner at 95; σ ≈ 1.1 puts mean - 3σ above
    # 95, so without the range the baseline's own worst run would fail it.
    runs = [99.0, 100.0, 99.0, 100.0, 99.5] * 3 + [99.0, 98.0, 100.0, 99.0, 95.0]
    data = baseline_from_results([make_result(em=v, f1=v) for v in runs])
    metric = Baseline.from_dict(data).metrics["exact_match"]
    mean = sum(runs) / len(runs)
    assert metric.effective_tolerance() == pytest.approx(mean - 95.0)
    assert judge(95.0, metric.value, metric.effective_tolerance(), "points", True)[1] == "pass"
    assert judge(94.9, metric.value, metric.effective_tolerance(), "points", True)[1] == "fail"
    # lower is better: the distance to the worst (highest) run
    lower = BaselineMetric(10.0, 0.1, "points", False, std=0.1, n=5, min=9.9, max=12.0)
    assert lower.effective_tolerance() == pytest.approx(2.0)
    # ratios keep the σ-gate only (their spread is the timing tolerance itself)
    ratio = BaselineMetric(100.0, 0.05, "ratio", True, std=1.0, n=5, min=50.0, max=101.0)
    assert ratio.effective_tolerance() == pytest.approx(0.05)


@pytest.mark.parametrize(("std", "n", "value", "status", "width"), [
    (1.0, 3, 85.5, "pass", 3.0),   # wide seed noise: gate = mean - 3σ = 85.0
    (1.0, 3, 84.9, "fail", 3.0),
    (0.1, 3, 87.4, "fail", 0.5),   # narrow seed noise: the tolerance rules
    (0.1, 3, 87.5, "pass", 0.5),
    (5.0, 1, 87.4, "fail", 0.5),   # one seed: no σ-gate
])
def test_sigma_gate(std: float, n: int, value: float, status: str, width: float) -> None:
    baseline = make_baseline(f1={"value": 88.0, "tolerance": 0.5, "std": std, "n": n})
    verdict = by_metric(gate(make_result(f1=value), baseline))["f1"]
    assert (verdict.status, verdict.tolerance) == (status, pytest.approx(width))


def test_measured_tolerance_uses_iqr_and_floor() -> None:
    assert measured_tolerance("train_samples_per_s", [make_result(step=(0.4, 0.04))]) == 0.15
    assert measured_tolerance("train_samples_per_s", [make_result(step=(0.4, 0.004))]) == 0.05
    assert measured_tolerance("compile_s", [make_result()]) == 0.25
    spread = [make_result(compile_cold=10.0), make_result(compile_cold=15.0)]
    assert measured_tolerance("compile_s", spread) == pytest.approx(5.0 / 12.5)


def test_update_then_load_round_trip(tmp_path: Path) -> None:
    seeds = [{"seed": 42, "exact_match": 80.0, "f1": 87.0},
             {"seed": 43, "exact_match": 81.0, "f1": 88.0},
             {"seed": 44, "exact_match": 82.0, "f1": 89.0}]
    result = make_result(em=81.0, f1=88.0, seeds=seeds, step=(0.4, 0.04))
    (path,) = update_baseline(tmp_path, [result])
    assert path == baseline_path(tmp_path, KEY)
    assert path.relative_to(tmp_path).as_posix() == "torch/cpu/tiny-roformer__synthetic.json"
    baseline = load_baseline(tmp_path, KEY)
    assert baseline is not None
    f1 = baseline.metrics["f1"]
    assert (f1.value, f1.std, f1.n, f1.tolerance, f1.unit) == (88.0, 1.0, 3, 1.0, "points")
    assert (f1.min, f1.max) == (87.0, 89.0)
    assert set(baseline.metrics) == {"exact_match", "f1"}  # accuracy only, judged anywhere
    (section,) = baseline.timings
    assert section.hardware == HW
    throughput = section.metrics["train_samples_per_s"]
    assert (throughput.value, throughput.tolerance) == (100.0, 0.15)
    assert section.metrics["compile_s"].tolerance == 0.25
    assert not section.metrics["compile_s"].higher_is_better
    assert "compile_warm_s" not in section.metrics  # not measured: not gated
    assert section.provenance["processes"] == 3
    prov = baseline.provenance
    assert prov["measured_by"] == "qa-bench 0.1.0"
    assert prov["date"] == "2024-05-01T12:00:00+00:00"
    assert prov["commit"] == "abc123"
    assert prov["versions"]["torch"] == "2.3.0"
    assert prov["hardware"] == [HW]
    assert prov["seeds"] == [42, 43, 44]
    assert all(v.status == "pass" for v in gate(result, baseline))


def test_update_keeps_hand_set_accuracy_tolerance_and_skips_failures(tmp_path: Path) -> None:
    update_baseline(tmp_path, [make_result()])
    path = baseline_path(tmp_path, KEY)
    raw = json.loads(path.read_text())
    raw["metrics"]["f1"]["tolerance"] = 0.3
    path.write_text(json.dumps(raw))
    update_baseline(tmp_path, [make_result(f1=90.0)])
    assert load_baseline_file(path).metrics["f1"].tolerance == 0.3
    assert load_baseline_file(path).metrics["f1"].value == 90.0
    other = make_result(key={**KEY, "model": "other"}, status="failed")
    assert update_baseline(tmp_path, [other]) == []
    assert load_baseline(tmp_path, other.key) is None


def test_baseline_from_results_refuses_nothing_ok_or_mixed_entries() -> None:
    with pytest.raises(QABenchError, match="no successful result"):
        baseline_from_results([make_result(status="failed")])
    with pytest.raises(QABenchError, match="several entries"):
        baseline_from_results([make_result(), make_result(key={**KEY, "model": "x"})])


def _write(tmp_path: Path, raw: Any) -> Path:
    path = baseline_path(tmp_path, KEY)
    path.parent.mkdir(parents=True)
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    return path


def _valid() -> dict[str, Any]:
    return make_baseline(f1={"value": 88.0, "tolerance": 0.5}).to_dict()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: "{not json", "not valid JSON"),
    (lambda raw: {k: v for k, v in raw.items() if k != "metrics"}, "missing field 'metrics'"),
    (lambda raw: {**raw, "metrics": {"f1": {"value": 88.0, "unit": "points",
                                            "higher_is_better": True}}},
     "missing field 'tolerance'"),
    (lambda raw: {**raw, "metrics": {"f1": {**raw["metrics"]["f1"], "tolerance": -0.1}}},
     "tolerance must be a number >= 0"),
    (lambda raw: {**raw, "metrics": {"f2": raw["metrics"]["f1"]}},
     "unknown metric 'f2' \\(did you mean 'f1'\\?\\)"),
    (lambda raw: {**raw, "metrics": {"f1": {**raw["metrics"]["f1"], "unit": "percent"}}},
     "unit must be 'points' or 'ratio'"),
    (lambda raw: {**raw, "metrics": {"f1": {**raw["metrics"]["f1"], "unit": "ratio"}}},
     "f1 is measured in points"),
    (lambda raw: {**raw, "metrics": {"f1": {**raw["metrics"]["f1"], "higher_is_better": "yes"}}},
     "higher_is_better must be true or false"),
    (lambda raw: {**raw, "key": {**raw["key"], "model": "elsewhere"}}, "not the entry"),
])
def test_schema_errors_name_file_and_field(tmp_path: Path, mutate: Any, message: str) -> None:
    path = _write(tmp_path, mutate(_valid()))
    with pytest.raises(QABenchError, match=message) as info:
        load_baseline(tmp_path, KEY)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_published_references_load_and_never_carry_tolerances(tmp_path: Path) -> None:
    references = load_references(REPO / "baselines" / "reference.toml")
    bert = [r for r in references if r.matches({"model": "bert-base-uncased", "dataset": "squad"})]
    assert any(r.metrics == {"exact_match": 80.8, "f1": 88.5} and "Devlin" in r.source
               for r in bert)
    assert all(r.source for r in references)
    assert load_references(tmp_path / "absent.toml") == []
    bad = tmp_path / "bad.toml"
    bad.write_text("[[reference]]\nmodel = 'm'\ndataset = 'd'\nsource = 's'\nmetrics = {f2 = 1}\n")
    with pytest.raises(QABenchError, match="metrics.f2"):
        load_references(bad)
    bad.write_text("[[reference]\n")
    with pytest.raises(QABenchError, match="not valid TOML"):
        load_references(bad)


def test_timings_on_other_hardware_are_reported_not_judged_and_accuracy_still_gates() -> None:
    baseline = make_baseline(OTHER_HW, exact_match={"value": 80.0, "tolerance": 1.0},
                             train_samples_per_s={"value": 1000.0, "tolerance": 0.05},
                             compile_s={"value": 1.0, "tolerance": 0.25})
    verdicts = by_metric(gate(make_result(em=70.0, sps=100.0), baseline))
    assert verdicts["exact_match"].status == "fail"
    for name in ("train_samples_per_s", "compile_s"):
        verdict = verdicts[name]
        assert verdict.status == "other_hardware" and not verdict.failed
        assert verdict.delta is None and verdict.tolerance is None
        assert "cpu_id: Test/25/17/0 -> Test/25/1/1" in verdict.message
    assert verdicts["train_samples_per_s"].baseline == 1000.0  # shown beside, not judged
    # Same tree, same hardware: judged (and here a 10x slow-down fails).
    same = by_metric(gate(make_result(sps=100.0), make_baseline(
        train_samples_per_s={"value": 1000.0, "tolerance": 0.05})))
    assert same["train_samples_per_s"].status == "fail"


@pytest.mark.parametrize("field", ["cpu", "cpu_id", "cpu_flags", "cores", "threads",
                                   "torch_build", "kind"])
def test_any_identity_field_makes_it_other_hardware(field: str) -> None:
    baseline = make_baseline({**HW, field: "something else"},
                             train_samples_per_s={"value": 100.0, "tolerance": 0.05})
    verdict = by_metric(gate(make_result(), baseline))["train_samples_per_s"]
    assert verdict.status == "other_hardware"


def test_a_result_without_fingerprint_is_never_timed() -> None:
    baseline = make_baseline(train_samples_per_s={"value": 100.0, "tolerance": 0.05})
    verdict = by_metric(gate(make_result(hardware={}), baseline))["train_samples_per_s"]
    assert verdict.status == "other_hardware"


def test_baselines_of_several_machines_live_side_by_side(tmp_path: Path) -> None:
    update_baseline(tmp_path, [make_result(sps=100.0)])
    update_baseline(tmp_path, [make_result(sps=300.0, hardware=OTHER_HW)])
    baseline = load_baseline(tmp_path, KEY)
    assert [t.metrics["train_samples_per_s"].value for t in baseline.timings] == [300.0, 100.0]
    assert baseline.timing_for(HW).metrics["train_samples_per_s"].value == 100.0
    assert baseline.timing_for(OTHER_HW).metrics["train_samples_per_s"].value == 300.0
    # Re-measuring one machine replaces its section and keeps the other's.
    update_baseline(tmp_path, [make_result(sps=120.0)])
    baseline = load_baseline(tmp_path, KEY)
    assert len(baseline.timings) == 2
    assert baseline.timing_for(HW).metrics["train_samples_per_s"].value == 120.0
    assert baseline.timing_for(OTHER_HW).metrics["train_samples_per_s"].value == 300.0
    # Each machine's run is timed against its own section only.
    assert by_metric(gate(make_result(sps=300.0, hardware=OTHER_HW), baseline))[
        "train_samples_per_s"].status == "pass"
    assert by_metric(gate(make_result(sps=300.0), baseline))[
        "train_samples_per_s"].status == "improved"


def test_timing_spread_comes_from_every_run_of_that_hardware() -> None:
    seeds = [{"seed": s, "exact_match": 80.0, "f1": 88.0, "timings": {"train_samples_per_s": v}}
             for s, v in ((42, 90.0), (43, 100.0), (44, 110.0))]
    data = baseline_from_results([make_result(seeds=seeds, step=(0.4, 0.001))])
    (section,) = data["timings"]
    metric = section["metrics"]["train_samples_per_s"]
    assert metric["value"] == 100.0
    assert metric["tolerance"] == pytest.approx(0.2)  # (110 - 90) / 100 > the 5 % floor
    assert section["provenance"]["processes"] == 3 and "note" not in section["provenance"]
    single = baseline_from_results([make_result()])["timings"][0]["provenance"]
    assert single["processes"] == 1 and "at least 3" in single["note"]


def test_a_file_from_before_fingerprints_times_nothing(tmp_path: Path) -> None:
    legacy = {"key": dict(KEY), "provenance": {"measured_by": "qa-bench 0.1.0", "date": "x",
                                               "hardware": {"cpu": "Test CPU", "cores": 8}},
              "metrics": {"f1": {"value": 88.0, "tolerance": 1.0, "unit": "points",
                                 "higher_is_better": True},
                          "train_samples_per_s": {"value": 100.0, "tolerance": 0.05,
                                                  "unit": "ratio", "higher_is_better": True}}}
    path = _write(tmp_path, legacy)
    verdicts = by_metric(gate(make_result(f1=80.0), load_baseline_file(path)))
    assert verdicts["f1"].status == "fail"
    assert verdicts["train_samples_per_s"].status == "other_hardware"


def test_timing_section_schema_errors(tmp_path: Path) -> None:
    base = {"key": dict(KEY), "metrics": {}, "provenance": {"measured_by": "t", "date": "d"}}
    cases = [
        ({"timings": {}}, "'timings' must be a list"),
        ({"timings": [{"metrics": {}}]}, r"timings\[0\]: missing field 'hardware'"),
        ({"timings": [{"hardware": {"kind": "cpu"}, "metrics": {"f1": {
            "value": 1.0, "tolerance": 1.0, "unit": "points", "higher_is_better": True}}}]},
         "accuracy is not per hardware"),
    ]
    for extra, message in cases:
        path = _write(tmp_path / message[:8].replace("\\", ""), {**base, **extra})
        with pytest.raises(QABenchError, match=message):
            load_baseline_file(path)


def test_timings_can_come_from_other_runs_than_accuracy(tmp_path: Path) -> None:
    # An accuracy sweep under load (slow, spread) and three quiet timing runs of the same entry.
    sweep = [make_result(em=em, sps=50.0 + em) for em in (96.0, 98.0, 100.0)]
    quiet = [make_result(em=97.0, sps=sps) for sps in (200.0, 204.0, 198.0)]
    update_baseline(tmp_path, sweep, timing_results=quiet)
    baseline = load_baseline(tmp_path, KEY)
    assert baseline.metrics["exact_match"].value == 98.0  # the sweep's three runs only
    assert baseline.metrics["exact_match"].n == 3
    (section,) = baseline.timings
    assert section.metrics["train_samples_per_s"].value == 200.0  # the quiet runs only
    assert section.provenance["processes"] == 3
    # Timing runs of another entry, or with an injected fault, are refused.
    other = make_result(key={**KEY, "model": "another"})
    with pytest.raises(QABenchError, match="another entry"):
        baseline_from_results(sweep, timing_results=[other])
    faulty = make_result(environment={"injected_fault": "label_shift"})
    with pytest.raises(QABenchError, match="injected fault"):
        baseline_from_results(sweep, timing_results=[faulty])


def test_baseline_command_takes_timings_from_quiet_runs(tmp_path: Path) -> None:
    from qa.frontends.cli import main

    def run_dir(name: str, results: list[RunResult]) -> Path:
        folder = tmp_path / name / "results"
        folder.mkdir(parents=True)
        for i, result in enumerate(results):
            (folder / f"r{i}.json").write_text(json.dumps(result.to_dict()))
        return folder.parent

    sweep = run_dir("sweep", [make_result(em=90.0, sps=10.0), make_result(em=94.0, sps=12.0)])
    quiet = run_dir("quiet", [make_result(em=99.0, sps=100.0)] * 3)
    assert main(["baseline", str(sweep), "--timings-from", str(quiet),
                 "--baselines", str(tmp_path / "b")]) == 0
    baseline = load_baseline(tmp_path / "b", KEY)
    assert baseline.metrics["exact_match"].value == 92.0
    assert baseline.timings[0].metrics["train_samples_per_s"].value == 100.0


def test_baseline_command_sets_the_accuracy_tolerance_floor(tmp_path: Path, capsys) -> None:
    # A tight sweep (std 0.5) gates at mean - 3 sigma unless a wider floor is asked for; the
    # floor is written into the file and kept by the next update that does not give one.
    from qa.frontends.cli import main

    folder = tmp_path / "sweep" / "results"
    folder.mkdir(parents=True)
    for i, em in enumerate((99.0, 99.5, 100.0)):
        (folder / f"r{i}.json").write_text(json.dumps(make_result(em=em).to_dict()))
    out = str(tmp_path / "b")
    assert main(["baseline", str(folder.parent), "--baselines", out]) == 0
    assert load_baseline(out, KEY).metrics["exact_match"].effective_tolerance() == 1.5
    assert main(["baseline", str(folder.parent), "--baselines", out,
                 "--accuracy-tolerance", "4"]) == 0
    em = load_baseline(out, KEY).metrics["exact_match"]
    assert (em.tolerance, em.effective_tolerance()) == (4.0, 4.0)
    assert main(["baseline", str(folder.parent), "--baselines", out]) == 0
    assert load_baseline(out, KEY).metrics["exact_match"].tolerance == 4.0
    for bad in ("-1", "nan", "inf", "four"):
        assert main(["baseline", str(folder.parent), "--baselines", out,
                     "--accuracy-tolerance", bad]) == 2
        assert "must be a number of points >= 0" in capsys.readouterr().err


def _ipu_result(emulated: bool, em: float = 80.0) -> RunResult:
    return make_result(em=em, key=dict(IPU_KEY), hardware={**IPU_HW, "emulated": emulated})


def test_an_emulated_baseline_never_judges_real_hardware_nor_the_reverse(tmp_path: Path) -> None:
    # A real pod16 run 30 points worse than the emulated baseline (filed, say, by a copied
    # file under the real key): nothing is judged, accuracy included.
    update_baseline(tmp_path, [_ipu_result(emulated=True)])
    emulated_baseline = load_baseline(tmp_path, IPU_KEY)
    verdicts = gate(_ipu_result(emulated=False, em=50.0), emulated_baseline)
    assert verdicts and {v.status for v in verdicts} == {"other_hardware"}
    em = by_metric(verdicts)["exact_match"]
    assert em.baseline == 80.0 and not em.failed and "emulated hardware" in em.message
    # The reverse: an emulated run against a real baseline.
    real = tmp_path / "real"
    update_baseline(real, [_ipu_result(emulated=False)])
    verdicts = gate(_ipu_result(emulated=True, em=50.0), load_baseline(real, IPU_KEY))
    assert {v.status for v in verdicts} == {"other_hardware"}
    # Same kind on both sides: judged as usual (and the 30-point drop fails).
    verdicts = by_metric(gate(_ipu_result(emulated=True, em=50.0), emulated_baseline))
    assert verdicts["exact_match"].status == "fail"


def test_emulated_and_real_results_never_pool_into_one_baseline() -> None:
    with pytest.raises(QABenchError, match="emulated and real"):
        baseline_from_results([_ipu_result(emulated=True), _ipu_result(emulated=False)])


def test_pooling_adds_runs_to_the_summary_of_the_runs_behind_a_baseline() -> None:
    """``qa-bench baseline --pool``: the union's mean and sample std from two summaries equal
    those computed from all the runs; min and max span both."""
    import statistics

    from qa.gating.baseline_build import _pooled, _summary

    first, second = [99.0, 100.0, 98.5, 99.5], [98.0, 98.4]
    pooled = _pooled(_summary(first), _summary(second))
    union = first + second
    assert pooled[0] == len(union)
    assert pooled[1] == pytest.approx(statistics.fmean(union))
    assert pooled[2] == pytest.approx(statistics.stdev(union))
    assert (pooled[3], pooled[4]) == (98.0, 100.0)
