"""``qa-bench compare`` edges: the refusal's exact words, a metric measured in B only, the
relative delta of a large change, and the entries present in B only."""

from __future__ import annotations

import pytest
from helpers.compare import ENTRY, KEY, make_result

from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.reporting.compare import compare_runs

OTHER = "ipu/pod16/roberta-base__squad"


def _row(table: str, metric: str) -> list[str]:
    line = next(ln for ln in table.splitlines()
                if ln.startswith(f"| {ENTRY}") and f"| {metric} " in ln)
    return [cell.strip() for cell in line.split("|")[1:-1]]


def test_a_single_refusal_is_quoted_whole_with_nothing_appended() -> None:
    with pytest.raises(QABenchError) as info:
        compare_runs([make_result()], [make_result(dataset_fingerprint="fp2")])
    assert str(info.value) == (f"runs are not comparable: {ENTRY}: dataset fingerprints differ "
                               "(fp1 vs fp2); use --force to compare anyway")


def test_two_refusals_quote_the_first_and_count_the_second() -> None:
    other_key = {**KEY, "model": "roberta-base"}
    a = [make_result(), make_result(key=other_key)]
    b = [make_result(dataset_fingerprint="fp2"), make_result(key=other_key,
                                                             dataset_fingerprint="fp3")]
    with pytest.raises(QABenchError) as info:
        compare_runs(a, b)
    assert str(info.value) == (f"runs are not comparable: {ENTRY}: dataset fingerprints differ "
                               "(fp1 vs fp2) (+1 more); use --force to compare anyway")


def test_config_differences_are_listed_with_semicolons() -> None:
    changed = RunConfig().to_dict()
    default_lr = changed["train"]["learning_rate"]
    changed["train"]["seed"], changed["train"]["learning_rate"] = 7, 0.5
    with pytest.raises(QABenchError) as info:
        compare_runs([make_result()], [make_result(config=changed)])
    assert f"configs differ (train.learning_rate: {default_lr!r} -> 0.5; train.seed: 42 -> 7)" \
        in str(info.value)


def test_a_metric_measured_in_b_only_shows_b_s_value() -> None:
    without_compile = make_result()
    without_compile.timings["compile"] = {}
    table, regressions = compare_runs([without_compile], [make_result(compile_cold=25.0)])
    assert regressions == []
    row = _row(table, "compile_s")
    assert row[2:4] == ["—", "25.00"]
    assert row[-1] == "— not measured (not measured in A)"


def test_the_relative_delta_of_a_large_change() -> None:
    """400 → 600 samples/s is +50 %: shown as such (a percentage, one decimal)."""
    table, regressions = compare_runs([make_result()], [make_result(sps=600.0)])
    assert regressions == []
    row = _row(table, "train_samples_per_s")
    assert row[5] == "+50.0%"
    assert row[-1] == "⬆️ improvement"


def test_entries_present_in_b_only_are_named() -> None:
    other = make_result(key={**KEY, "model": "roberta-base"})
    table, regressions = compare_runs([make_result()], [make_result(), other], b_label="new")
    assert regressions == []
    assert table.endswith(f"Entries present in only one run:\n\n- `{OTHER}` — only in new\n")
