"""``qa-bench compare`` in detail: what each row says when a side is missing or failed, how
repeats and seeds are pooled, and what makes two configs "the same"."""

from __future__ import annotations

import copy

from helpers.compare import ENTRY, KEY, make_result, verdicts

from qa.config.schema import RunConfig, comparable_config, config_hash
from qa.reporting.compare import compare_runs, config_differences


def rows(comparisons: list, entry: str = ENTRY) -> dict:
    return {c.metric: c for c in comparisons if c.entry == entry}


def all_rows(a: list, b: list) -> dict:
    """Every comparison of a forced compare (``compare_runs`` returns the regressions only)."""
    from qa.reporting.compare import _compare_entry

    return {c.metric: c for c in _compare_entry(ENTRY, a, b, {})}


def test_a_metric_measured_on_one_side_only_is_not_measured_not_judged() -> None:
    without_compile = make_result()
    without_compile.timings["compile"] = {}
    found = all_rows([make_result()], [without_compile])
    assert found["compile_s"].change == "not measured"
    assert found["compile_s"].note == "not measured in B"
    assert (found["compile_s"].a, found["compile_s"].b, found["compile_s"].delta) == (30.0, None,
                                                                                    None)
    assert (found["compile_s"].entry, found["compile_s"].unit) == (ENTRY, "ratio")
    assert found["compile_s"].tolerance == 0.25  # the cold-compile floor, from A's spread
    found = all_rows([without_compile], [make_result()])
    assert found["compile_s"].note == "not measured in A"
    # A metric missing early in the list does not hide the ones after it.
    no_throughput = make_result()
    no_throughput.timings.pop("train_samples_per_s")
    found = all_rows([make_result()], [no_throughput])
    assert found["train_samples_per_s"].change == "not measured"
    assert found["compile_s"].change == "within noise"
    # Measured on neither side: no row at all.
    assert "compile_warm_s" not in found
    table, regressions = compare_runs([make_result()], [without_compile])
    assert regressions == []
    assert verdicts(table)["compile_s"] == "— not measured (not measured in B)"


def test_accuracy_is_the_mean_over_all_seeds_and_timing_the_median_over_repeats() -> None:
    def run(f1_seeds: list[float], sps: float) -> object:
        seeds = [{"seed": i, "exact_match": 81.0, "f1": f} for i, f in enumerate(f1_seeds)]
        return make_result(f1=sum(f1_seeds) / len(f1_seeds), sps=sps, seeds=seeds)

    a = [run([80.0, 90.0], 100.0), run([88.0], 200.0), run([82.0, 84.0], 900.0)]
    b = [make_result()]
    found = all_rows(a, b)
    assert found["f1"].a == (80 + 90 + 88 + 82 + 84) / 5  # the mean of five seeds
    assert found["train_samples_per_s"].a == 200.0  # the median of three repeats


def test_a_result_without_exact_match_is_compared_on_the_rest() -> None:
    only_f1 = make_result()
    only_f1.metrics.pop("exact_match")
    found = all_rows([only_f1], [only_f1])
    assert "exact_match" not in found and found["f1"].change == "within noise"


def test_failed_entries_say_which_side_failed_and_where() -> None:
    failed_a = make_result(status="failed", failure={"stage": "train", "cause": "NaN"})
    failed_b = make_result(status="failed", failure={"stage": "compile", "cause": "poplar"})
    (row,) = all_rows([failed_a], [make_result()]).values()
    assert (row.entry, row.metric, row.change) == (ENTRY, "status", "improvement")
    assert row.note == "A failed, B ok (failed at train)"
    (row,) = all_rows([make_result()], [failed_b]).values()
    assert (row.change, row.note) == ("regression", "A ok, B failed (failed at compile)")
    (row,) = all_rows([failed_a], [failed_b]).values()
    assert (row.change, row.note) == ("not measured", "A failed, B failed (failed at compile)")
    assert row.unit == "" and row.delta is None and row.tolerance is None
    table, _ = compare_runs([failed_a], [make_result()])
    cells = [line for line in table.splitlines() if line.startswith(f"| {ENTRY}")][0].split("|")
    assert [c.strip() for c in cells[5:8]] == ["—", "—", "—"]  # Δ, Δ rel, tolerance


def test_comparing_configs_leaves_them_untouched() -> None:
    config = RunConfig().to_dict()
    config["data"]["squad_dir"] = "/data/squad"
    before = copy.deepcopy(config)
    config_hash(config)
    config_differences(config, RunConfig().to_dict())
    comparable_config(config)
    assert config == before


def test_fingerprint_ignores_key_order_and_absent_local_paths() -> None:
    config = RunConfig().to_dict()
    reordered = {section: dict(reversed(list(values.items())))
                 for section, values in reversed(list(config.items()))}
    assert config_hash(reordered) == config_hash(config)
    # An older result whose config lacks an ignored key compares like one that has it.
    older = copy.deepcopy(config)
    del older["data"]["squad_dir"]
    assert config_hash(older) == config_hash(config)
    changed = copy.deepcopy(config)
    changed["train"]["seed"] = 7
    assert config_hash(changed) != config_hash(config)


def test_config_differences_name_each_setting_in_full() -> None:
    a = {"train": {"seed": 42, "learning_rate": 0.001}, "data": {"max_length": 384}}
    b = {"train": {"seed": 43, "learning_rate": 0.001}, "data": {"doc_stride": 128}}
    assert config_differences(a, b) == [
        "data.doc_stride: '<unset>' -> 128",
        "data.max_length: 384 -> '<unset>'",
        "train.seed: 42 -> 43",
    ]


def test_a_refusal_quotes_three_differences_at_most() -> None:
    import pytest

    from qa.errors import QABenchError

    changed = RunConfig().to_dict()
    for i, key in enumerate(("seed", "learning_rate", "num_train_epochs", "weight_decay")):
        changed["train"][key] = 1000 + i
    other = make_result(config=changed, key=dict(KEY))
    with pytest.raises(QABenchError) as info:
        compare_runs([make_result()], [other])
    quoted = str(info.value).split("configs differ (")[1].split(")")[0]
    assert quoted.count(" -> ") == 3 and quoted.endswith("; ...")


def test_the_markdown_report_layout() -> None:
    """What a reader of ``qa-bench compare`` sees: title, a forced-comparison warning block, the
    count line, the table (its header, a regression row with absolute and relative deltas and
    the tolerance), entries present in one run only, one trailing newline."""
    changed = RunConfig().to_dict()
    changed["train"]["seed"] = 7
    other = make_result(key={**KEY, "model": "roberta-base"})
    table, regressions = compare_runs([make_result(), other],
                                      [make_result(f1=86.0, config=changed)],
                                      force=True, a_label="old", b_label="new")
    lines = table.split("\n")
    assert lines[:2] == ["## old → new", ""]
    assert lines[2] == "> ⚠️ **Forced comparison** — these runs are not like for like:"
    assert lines[3].startswith(f"> - {ENTRY}: configs differ (train.seed: 42 -> 7)")
    # 4 metrics measured in the shared entry (EM, F1, train throughput, cold compile) + 1 entry
    # present in A only.
    assert lines[4:6] == ["", "1 regression(s) in 5 comparison(s). Accuracy "
                          "tolerances are absolute points, timing tolerances relative."]
    assert lines[6] == ""
    header = [cell.strip() for cell in lines[7].split("|")[1:-1]]
    assert header == ["Entry", "Metric", "old", "new", "Δ", "Δ rel", "Tolerance", "Change"]
    f1 = next(line for line in lines if line.startswith(f"| {ENTRY}") and "| f1 " in line)
    assert [cell.strip() for cell in f1.split("|")[1:-1]] == [
        ENTRY, "f1", "88.00", "86.00", "-2.00", f"{(86 / 88 - 1) * 100:+.1f}%", "±1.00 pt",
        "❌ regression"]
    assert "Entries present in only one run:" in lines
    at = lines.index("Entries present in only one run:")
    assert lines[at - 1: at + 3] == ["", "Entries present in only one run:", "",
                                     "- `ipu/pod16/roberta-base__squad` — only in old"]
    assert not any(line.startswith("| ipu/pod16/roberta-base") for line in lines)  # no row
    assert table.endswith("only in old\n") and not table.startswith((" ", "\n"))
    assert len(regressions) == 1


def test_refusal_counts_the_other_problems() -> None:
    import pytest

    from qa.errors import QABenchError

    other_key = {**KEY, "model": "roberta-base"}
    a = [make_result(), make_result(key=other_key), make_result(key={**KEY, "pod": "pod4"})]
    b = [make_result(dataset_fingerprint=f"fp{i}", key=r.key) for i, r in enumerate(a, 2)]
    with pytest.raises(QABenchError, match=r"dataset fingerprints differ.* \(\+2 more\);"):
        compare_runs(a, b)
    with pytest.raises(QABenchError) as info:
        compare_runs(a[:1], b[:1])
    assert "more)" not in str(info.value)
