"""One list of metrics: gating, references and every report column read
``qa.results.metricspec``."""

from __future__ import annotations

from qa.gating.references import REFERENCE_METRICS, Reference
from qa.gating.verdicts import gate
from qa.reporting.report import render_markdown
from qa.results.metricspec import METRICS, SPECS, _reported, specs
from qa.results.store import RunResult

KEY = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}
TIMINGS = {"train_step_s": {"median": 0.5, "iqr": 0.01, "rounds": 9},
           "train_samples_per_s": 321.0, "train_tokens_per_s": 4567.0,
           "eval_samples_per_s": 654.0, "compile": {"cold_s": 12.5, "warm_s": 1.25,
                                                    "cache_hit": True},
           "wall_s": 77.0}


def _result() -> RunResult:
    return RunResult(key=KEY, config={}, metrics={"exact": 61.0, "f1": 66.0}, timings=TIMINGS,
                     memory={"peak_rss_mb": 999.0}, efficiency={"mfu": 0.125})


def test_names_are_unique_and_every_gated_metric_has_a_rule() -> None:
    assert len({s.name for s in SPECS}) == len(SPECS)
    assert len({s.header for s in SPECS}) == len(SPECS)
    assert all(s.unit in ("points", "ratio") and s.default_tolerance is not None
               for s in METRICS.values())
    assert set(REFERENCE_METRICS) == set(METRICS)


def test_timings_table_is_the_spec_columns_in_order() -> None:
    text = render_markdown([_result()], [])
    table = text.split("## Timings", 1)[1].strip().splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    row = [c.strip() for c in table[2].strip("|").split("|")]
    shown = [s for s in specs(table="timings") if s.cell(_result()) is not None]
    assert header == ["Entry", *(s.header for s in shown)]
    assert row[header.index("train samples/s")] == "321.0"
    assert row[header.index("compile cold (s)")] == "12.50"
    assert row[header.index("cache hit")] == "yes"


def test_a_run_without_baseline_gets_a_verdict_for_every_measured_gated_metric() -> None:
    verdicts = gate(_result(), None)
    # v2's "exact" is read as exact_match through the spec's sources.
    assert {v.metric for v in verdicts} == set(METRICS)
    assert {v.status for v in verdicts} == {"missing"}


def test_references_show_every_gated_metric_they_quote() -> None:
    ref = Reference(model="tiny-roformer", dataset="synthetic", label="paper",
                    metrics={"f1": 70.0, "train_samples_per_s": 300.0}, source="somewhere")
    text = render_markdown([_result()], [], references=[ref])
    section = text.split("## Published references", 1)[1].split("\n## ", 1)[0]
    assert "published train samples/s" in section and "this run train samples/s" in section
    assert "published F1" in section and "published EM" not in section


# --------------------------------------------------------------------------- reading a result


def test_a_value_is_read_from_the_first_source_present() -> None:
    """v2 results say "exact": EM's second source; a flag (cache hit) is a cell value too."""
    result = _result()
    assert METRICS["exact_match"].extract(result) == 61.0
    assert METRICS["exact_match"].cell(result) == 61.0
    cache_hit = next(s for s in SPECS if s.name == "cache_hit")
    assert cache_hit.cell(result) is True and cache_hit.extract(result) is None
    flag_off = RunResult(key=KEY, config={}, timings={"compile": {"cache_hit": False}})
    assert cache_hit.cell(flag_off) is False  # a False flag is shown, not skipped
    assert METRICS["f1"].cell(flag_off) is None and METRICS["f1"].extract(flag_off) is None


def test_an_entry_of_another_shape_reads_as_not_measured() -> None:
    """A timings entry that is a number where the spec expects a section (a hand-edited or
    foreign result): the cold compile falls back to the older flat "compile_s"."""
    odd = RunResult(key=KEY, config={}, timings={"compile": 12.5, "compile_s": 12.5,
                                                  "train_step_s": 0.5})
    assert METRICS["compile_s"].extract(odd) == 12.5
    step = next(s for s in SPECS if s.name == "step_median_s")
    assert step.extract(odd) is None and step.cell(odd) is None


def test_a_seed_record_is_read_by_the_last_part_of_a_source() -> None:
    """Seeds keep metrics flat: "metrics.exact" is "exact" there, "timings.compile.cold_s" is
    "cold_s"; the first numeric one wins, a flag or text is not a value."""
    em = METRICS["exact_match"]
    assert em.seed_value({"seed": 1, "exact": 70.0}) == 70.0
    assert em.seed_value({"seed": 1, "exact_match": 71, "exact": 70.0}) == 71.0
    assert em.seed_value({"seed": 1, "exact_match": True, "exact": "70"}) is None
    assert em.seed_value({"seed": 1}) is None
    assert METRICS["compile_s"].seed_value({"cold_s": 9.0, "compile_s": 8.0}) == 9.0


def test_rounds_are_the_positive_measured_durations() -> None:
    """pytest-benchmark gets every positive duration behind a timing metric (a list or one
    value); zeros, negatives, flags, text and non-finite values are dropped."""
    result = RunResult(key=KEY, config={}, timings={
        "train_step_times": [0.5, 0, -1.0, True, "1.0", float("nan"), 2],
        "compile": {"cold_s": 12.5}})
    assert METRICS["train_samples_per_s"].rounds(result) == [0.5, 2.0]
    assert METRICS["compile_s"].rounds(result) == [12.5]
    assert METRICS["compile_warm_s"].rounds(result) == []
    assert METRICS["exact_match"].rounds(result) == []  # no durations behind accuracy


# --------------------------------------------------------------------------- selecting specs


def test_specs_select_by_table_and_role_in_declaration_order() -> None:
    assert specs() == list(SPECS)
    assert [s.name for s in specs(role="summary")] == ["exact_match", "f1",
                                                       "train_samples_per_s"]
    assert [s.name for s in specs(role="trend")] == ["f1", "train_samples_per_s"]
    assert [s.name for s in specs(table="timings", role="scaling")] == ["train_samples_per_s"]
    assert specs(table="timings", role="summary") == [METRICS["train_samples_per_s"]]
    timings = specs(table="timings")
    assert timings == [s for s in SPECS if s.table == "timings"]
    assert "exact_match" not in {s.name for s in timings} and len(timings) == 13
    assert specs(table="nowhere") == [] and specs(role="nothing") == []


def test_a_reported_column_is_shown_never_gated() -> None:
    """``_reported`` declares a timings-table column that no baseline judges."""
    spec = _reported("x_s", ("timings.x.y", "timings.x_s"), "x (s)")
    assert (spec.name, spec.sources, spec.header, spec.table) == (
        "x_s", ("timings.x.y", "timings.x_s"), "x (s)", "timings")
    assert (spec.unit, spec.gated, spec.hardware_bound, spec.default_tolerance) == (
        "", False, False, None)
    assert spec.fmt == "" and _reported("x_s", ("timings.x_s",), "x", fmt=".1f").fmt == ".1f"
    result = RunResult(key=KEY, config={}, timings={"x_s": 1.25})
    assert spec.extract(result) == 1.25 and spec.rounds(result) == []


def test_the_seeds_table_has_a_column_per_accuracy_metric_and_no_timing() -> None:
    """The per-seed table of a multi-seed run: EM and F1 of each seed (the gated accuracy
    metrics), never a timing column (timings are per run, not per seed)."""
    result = _result()
    result.seeds = [{"seed": 1, "exact_match": 60.0, "f1": 65.0},
                    {"seed": 2, "exact_match": 62.0, "f1": 67.0, "train_samples_per_s": 1.0}]
    text = render_markdown([result], [])
    table = text.split("## Seeds", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in table.splitlines() if line.startswith("|")]
    assert rows[0] == ["Entry", "seed", "EM", "F1"]
    assert rows[2][1:] == ["1", "60.00", "65.00"] and rows[3][1:] == ["2", "62.00", "67.00"]
