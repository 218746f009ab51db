"""Reports: markdown sections and symbols, INCOMPLETE marker, step summary, trend PNG, re-render."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from qa.config.schema import RunConfig
from qa.gating.references import Reference
from qa.gating.verdicts import Verdict
from qa.reporting.report import (
    PLOT_FILE,
    plot_trend,
    render_markdown,
    render_run_dir,
    verdicts_from_json,
    verdicts_to_json,
    write_report,
)
from qa.results.store import RunResult, save_result

KEY = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}
ENTRY = "torch/cpu/tiny-roformer__synthetic"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_result(f1: float = 88.0, sps: float = 100.0, status: str = "ok", replicas: int = 1,
                nodes: int = 1, **overrides: Any) -> RunResult:
    """A small, valid RunResult; keyword overrides replace whole fields."""
    config = RunConfig().to_dict()
    config["torch"]["replicas"] = replicas
    config["torch"]["nodes"] = nodes
    config["train"]["dynamic_padding"] = True
    fields: dict[str, Any] = {
        "key": dict(KEY),
        "config": config,
        "metrics": {"exact_match": 80.0, "f1": f1} if status == "ok" else {},
        "timings": {"train_samples_per_s": sps, "train_tokens_per_s": 384 * sps,
                    "eval_samples_per_s": 2 * sps,
                    "train_step_s": {"median": 0.4, "iqr": 0.02, "rounds": 120},
                    "compile": {"cold_s": 3.2, "warm_s": 0.4, "cache_hit": True},
                    "wall_s": 150.0} if status == "ok" else {},
        "memory": {"peak_rss_mb": 900.0},
        "efficiency": {"mfu": 0.12, "fast_paths": {"attn_implementation": "sdpa"}},
        "environment": {"python": "3.11.7", "cpu": "Test CPU", "git_commit": "abc123",
                        "versions": {"torch": "2.3.0", "transformers": "4.41.0"}},
        "dataset_fingerprint": "fp1",
        "status": status,
        "failure": {"stage": "train", "cause": "loss is NaN | step 7"} if status != "ok" else None,
    }
    fields.update(overrides)
    return RunResult(**fields)


def verdict(metric: str, status: str, value: float = 88.0, unit: str = "points") -> Verdict:
    return Verdict(ENTRY, metric, value, 88.0 if status != "missing" else None, 0.0,
                   0.5 if status != "missing" else None, unit, status)


VERDICTS = [verdict("f1", "pass"), verdict("exact_match", "fail", 70.0),
            verdict("train_samples_per_s", "improved", 150.0, "ratio"),
            verdict("eval_samples_per_s", "missing", 200.0, "ratio")]


def test_verdict_table_has_a_row_and_symbol_per_status() -> None:
    text = render_markdown([make_result()], VERDICTS)
    assert "| Entry" in text and "## Verdicts" in text
    for symbol in ("✅ pass", "❌ fail", "⬆️ improved — update the baseline",
                   "— missing baseline"):
        assert symbol in text
    row = next(line for line in text.splitlines() if "| exact_match" in line)
    assert "70.00" in row and "±0.50 pt" in row and "❌ fail" in row
    assert "1 ✅ pass, 1 ❌ fail, 1 ⬆️ improved, 1 — missing baseline" in text


def test_timings_fast_paths_and_environment() -> None:
    text = render_markdown([make_result()], [])
    timings = text.split("## Timings")[1].split("##")[0]
    for expected in ("step median (s)", "| 0.4 ", "step IQR (s)", "| 0.02 ", "compile cold (s)",
                     "3.20", "compile cached (s)", "MFU", "0.12", "peak RSS (MB)", "900.0",
                     "38,400.0"):
        assert expected in timings
    fast = text.split("## Fast-path options")[1].split("##")[0]
    assert "dynamic padding" in fast and "yes" in fast
    assert "attention" in fast and "sdpa" in fast
    assert "## Environment" in text and "transformers" in text and "abc123" in text


def test_v2_best_thresholds_get_their_own_section_only_where_measured() -> None:
    v2 = make_result(metrics={"exact": 61.0, "exact_match": 61.0, "f1": 64.5,
                              "HasAns_f1": 70.25, "NoAns_f1": 58.75, "best_exact": 63.5,
                              "best_exact_thresh": -1.25, "best_f1": 66.75,
                              "best_f1_thresh": 0.0625})
    report = render_markdown([v2, make_result(key={**KEY, "dataset": "squad"})], [])
    section = report.split("## SQuAD v2.0 no-answer thresholds (references, never gated)")[1]
    section = section.split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(rows) == 2  # the header and the v2 entry: the v1 entry has no row
    assert [c.strip() for c in rows[1].split("|")[2:-1]] == [
        "70.25", "58.75", "63.50", "-1.25", "66.75", "0.0625"]
    assert "no-answer thresholds" not in render_markdown([make_result()], [])


def test_failures_section_and_incomplete_marker() -> None:
    ok, failed = make_result(), make_result(status="diverged", key={**KEY, "model": "m2"})
    text = render_markdown([ok, failed], [], incomplete=True)
    assert text.splitlines()[2].startswith("> **INCOMPLETE**")
    failures = text.split("## Failures")[1]
    assert "torch/cpu/m2__synthetic" in failures and "diverged" in failures
    assert "train" in failures and "loss is NaN \\| step 7" in failures  # pipe escaped
    clean = render_markdown([ok], [])
    assert "INCOMPLETE" not in clean and "## Failures" not in clean


def test_references_are_labelled_as_context_not_gates() -> None:
    ref = Reference("tiny-roformer", "synthetic", "paper", {"exact_match": 80.8, "f1": 88.5},
                    "Devlin et al. 2018, Table 2", url="https://arxiv.org/abs/1810.04805")
    text = render_markdown([make_result()], [], references=[ref])
    section = text.split("## Published references (context only, never gates)")[1]
    assert "88.50" in section and "[Devlin et al. 2018, Table 2](https://arxiv" in section
    other = Reference("bert", "squad", "x", {"f1": 1.0}, "s")
    assert "Published references" not in render_markdown([make_result()], [], references=[other])


def test_scaling_efficiency_relative_to_one_replica() -> None:
    results = [make_result(sps=100.0, replicas=1), make_result(sps=180.0, replicas=2)]
    text = render_markdown(results, [])
    section = text.split("## Scaling efficiency")[1].split("##")[0]
    assert "90%" in section and "100%" in section and "vs 1 process" in section
    assert "Scaling efficiency" not in render_markdown([make_result()], [])


def test_results_written_before_the_torch_section_are_read_the_same() -> None:
    """Older result files keep replicas and nodes under ``hardware``."""
    new = [make_result(sps=100.0, replicas=1), make_result(sps=180.0, replicas=2)]
    old = []
    for result in new:
        config = {k: dict(v) for k, v in result.config.items() if k != "torch"}
        config["hardware"].update(result.config["torch"])
        old.append(dataclasses.replace(result, config=config))
    assert render_markdown(old, []) == render_markdown(new, [])


def test_scaling_efficiency_counts_processes_across_nodes() -> None:
    """Two hosts × 2 replicas is a world of 4: efficiency per process against the one-process
    run, and a 2 × 1 run sits between them."""
    results = [make_result(sps=100.0), make_result(sps=300.0, replicas=2, nodes=2),
               make_result(sps=160.0, replicas=1, nodes=2)]
    section = render_markdown(results, []).split("## Scaling efficiency")[1].split("##")[0]
    rows = [line for line in section.splitlines() if line.startswith("| torch/")]
    assert [[c.strip() for c in r.split("|")[2:5]] for r in rows] == [
        ["1", "1", "1"], ["2", "1", "2"], ["2", "2", "4"]]
    assert "80%" in rows[1] and "75%" in rows[2]


def test_seeds_and_notes_hooks() -> None:
    seeds = [{"seed": 42, "exact_match": 80.0, "f1": 87.0},
             {"seed": 43, "exact_match": 82.0, "f1": 89.0}]
    result = make_result(seeds=seeds)
    result.timings["repeat"] = {"runs": 3, "f1_spread": 0.4}
    text = render_markdown([result], [], notes=["tokenizer cache was warm"])
    assert "## Seeds" in text and "| 43" in text
    notes = text.split("## Reproducibility notes")[1]
    assert "- tokenizer cache was warm" in notes and "repeat: runs=3, f1_spread=0.4" in notes


def test_plot_trend_writes_a_png(tmp_path: Path) -> None:
    history = [make_result(f1=80 + i, sps=90 + i) for i in range(3)]
    history.insert(1, make_result(status="failed"))  # a gap, not a crash
    path = plot_trend(history, tmp_path / "out" / "trend.png")
    assert path is not None and path.read_bytes()[:8] == PNG_MAGIC
    assert plot_trend([], tmp_path / "empty.png") is None
    assert not (tmp_path / "empty.png").exists()


def test_write_report_files_and_step_summary(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run_dir = tmp_path / "run"
    history = [make_result(f1=87.0), make_result(f1=88.0)]
    path = write_report(run_dir, [make_result()], VERDICTS, history=history, title="nightly")
    text = path.read_text()
    assert path == run_dir / "report.md" and text.startswith("# nightly")
    assert f"]({PLOT_FILE})" in text and (run_dir / PLOT_FILE).read_bytes()[:8] == PNG_MAGIC
    appended = summary.read_text()
    assert appended.startswith("earlier step\n# nightly") and "❌ fail" in appended
    assert PLOT_FILE not in appended  # the job summary cannot show a run-folder file
    saved = json.loads((run_dir / "verdicts.json").read_text())
    assert verdicts_from_json(saved["verdicts"]) == VERDICTS


def test_no_step_summary_without_the_variable(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write_report(tmp_path, [make_result()], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "verdicts.json"]


def test_render_run_dir_rebuilds_from_files(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    results = [make_result(), make_result(status="timeout", key={**KEY, "model": "m2"})]
    for result in results:
        save_result(result, tmp_path)
    first = write_report(tmp_path, results, VERDICTS, title="sdk", incomplete=True).read_text()
    (tmp_path / "report.md").unlink()
    again = render_run_dir(tmp_path, references_path=None)
    assert (tmp_path / "report.md").exists() and (tmp_path / PLOT_FILE).exists()
    assert again.startswith("# sdk") and "INCOMPLETE" in again and "## Failures" in again
    verdict_rows = [line for line in first.splitlines() if line.startswith(f"| {ENTRY}")]
    assert all(row in again for row in verdict_rows[:4])


def test_verdicts_json_round_trip() -> None:
    assert verdicts_from_json(json.loads(json.dumps(verdicts_to_json(VERDICTS)))) == VERDICTS
