"""One list of metrics: gating, references and every report column read ``qa.metricspec``."""

from __future__ import annotations

from qa.metricspec import METRICS, SPECS, specs
from qa.references import REFERENCE_METRICS, Reference
from qa.report import render_markdown
from qa.results import RunResult
from qa.verdicts import gate

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
