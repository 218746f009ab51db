"""``qa-bench publish``: the site's content and order, its refusals and exit codes.

The history is ``helpers.dashboard.nightly_history``: a real smoke run's result and synthetic
nights grown from it, with a level shift that makes the newest tiny-roformer run fail. The
browser's view of the same site is ``test_publish_browser.py`` (e2e).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.dashboard import (
    EMULATED,
    FAILING,
    IMPROVING,
    SHIFT_AT,
    nightly_history,
    real_result,
    write_baselines,
    write_history,
)

from qa.errors import QABenchError
from qa.frontends.cli import main
from qa.gating.comparability import series_key
from qa.reporting.publish import MARKER, build_views, read_histories
from qa.results.store import RunResult, short_commit


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[RunResult]]:
    """(history file, baselines folder, runs)."""
    folder = tmp_path_factory.mktemp("nightly")
    runs = nightly_history()
    write_baselines(folder / "baselines", runs)
    return write_history(folder / "history.jsonl", runs), folder / "baselines", runs


@pytest.fixture(scope="module")
def site(nightly: tuple[Path, Path, list[RunResult]],
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    history, baselines, _ = nightly
    out = tmp_path_factory.mktemp("site") / "site"
    assert main(["publish", str(history), "--baselines", str(baselines), "--out", str(out)]) == 0
    return out


def _rows(index: Path) -> list[tuple[str, str]]:
    """(entry, state) of the overview's rows, in order."""
    text = index.read_text(encoding="utf-8")
    return re.findall(r'<tr class="series [^"]*" data-state="([^"]*)" data-entry="([^"]*)"',
                      text)


def test_the_failing_series_is_listed_first_with_its_failed_gates(
        site: Path, nightly: tuple[Path, Path, list[RunResult]]) -> None:
    rows = _rows(site / "index.html")
    # neither alphabetically, nor by date, nor in the history's order would it be first
    assert sorted(entry for _, entry in rows)[0] != FAILING
    runs = nightly[2]
    assert runs[0].entry_id != FAILING
    assert len({r.finished_at for r in runs if r.finished_at == runs[-1].finished_at}) == 1
    assert len({r.entry_id for r in runs if r.finished_at == runs[-1].finished_at}) == 3
    assert rows[0] == ("fail", FAILING)
    assert {entry: state for state, entry in rows} == {FAILING: "fail", IMPROVING: "pass",
                                                       EMULATED: "pass"}
    text = (site / "index.html").read_text(encoding="utf-8")
    first_row = text.split('<tr class="series')[1]
    assert first_row.count('class="verdict fail"') == 2  # EM and F1
    assert "F1 dropped" in first_row and "EM dropped" in first_row


def test_every_series_and_gated_metric_has_a_page_with_plot_band_and_points(
        site: Path, nightly: tuple[Path, Path, list[RunResult]]) -> None:
    _, _, runs = nightly
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "index.html" in pages
    for slug in ("torch--cpu--tiny-roformer__synthetic", "torch--cpu--tiny-bert__synthetic",
                 "ipu--pod4-emulated--tiny-bert__synthetic"):
        for metric in ("exact_match", "f1", "train_samples_per_s", "eval_samples_per_s"):
            assert f"{slug}/{metric}.html" in pages
    page = (site / "torch--cpu--tiny-roformer__synthetic" / "f1.html").read_text("utf-8")
    ours = [r for r in runs if r.entry_id == FAILING]
    assert page.count("<svg") == 1
    assert len(re.findall(r'<g id="qa-point-\d+"><title>', page)) == len(ours)
    for run in ours:  # each run in the table and in a tooltip: commit, date, value
        commit = short_commit(run.environment["git_commit"])
        assert page.count(commit) >= 3  # axis label, tooltip, table
    shifted = short_commit(ours[SHIFT_AT].environment["git_commit"])
    assert re.search(rf"F1 dropped −\d\.\d from commit {shifted}", page)
    assert "baseline" in page and "±" in page
    assert page.count('class="verdict fail"') >= len(ours) - SHIFT_AT  # the shifted nights
    # The hardware of each point, as its fingerprint describes it (qa.measure.hardware.describe).
    assert ours[0].hardware["cpu_id"] and page.count(ours[0].hardware["cpu_id"]) >= len(ours)


def test_emulated_and_real_runs_never_share_a_line(tmp_path: Path) -> None:
    real = real_result()
    raw = real.to_dict()
    raw["hardware"] = {**raw["hardware"], "emulated": True}  # a copied file: same entry id
    raw["environment"] = {**raw["environment"], "git_commit": "e" * 40}
    with pytest.raises(QABenchError, match="emulated result filed as real"):
        RunResult.from_dict(raw)  # refused when read: it never reaches a line
    raw["key"] = {**raw["key"], "pod": f"{raw['key']['pod']}-emulated"}  # filed as emulated
    copied = RunResult.from_dict(raw)
    assert series_key(copied) != series_key(real)
    views = build_views([real, copied], None)
    assert len(views) == 2
    assert sorted(len(v.runs) for v in views) == [1, 1]
    history = write_history(tmp_path / "h.jsonl", [real, copied])
    assert main(["publish", str(history), "--out", str(tmp_path / "site")]) == 0
    folders = sorted(p.name for p in (tmp_path / "site").iterdir() if p.is_dir())
    assert len(folders) == 2 and any("-emulated" in f for f in folders)
    real_page = next(f for f in folders if "-emulated" not in f)
    assert "eeeeeee" not in (tmp_path / "site" / real_page / "f1.html").read_text("utf-8")


def test_bad_input_is_refused_with_exit_2_and_one_line(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(real_result().to_dict(), indent=2), encoding="utf-8")
    cases = {"missing": ([str(tmp_path / "nope.jsonl")], "no such history file"),
             "folder": ([str(tmp_path)], "a folder, not a history file"),
             "a result file": ([str(result_file)], "not a qa-bench history")}
    for name, (args, words) in cases.items():
        assert main(["publish", *args, "--out", str(tmp_path / "out")]) == 2, name
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, (name, err)
        assert not (tmp_path / "out").exists(), name


def test_an_empty_history_has_nothing_to_publish_exit_5(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "history.jsonl"
    empty.write_text("", encoding="utf-8")
    assert main(["publish", str(empty), "--out", str(tmp_path / "site")]) == 5
    assert "nothing to publish" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


@pytest.fixture
def one_run(tmp_path: Path) -> Path:
    """A history of the real run alone (one series: a few pages, quick to render)."""
    return write_history(tmp_path / "one.jsonl", [real_result()])


def test_out_is_replaced_only_when_it_is_a_site(one_run: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    precious = tmp_path / "checkout"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["publish", str(one_run), "--out", str(precious)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]
    site = tmp_path / "site"
    assert main(["publish", str(one_run), "--out", str(site)]) == 0
    stale = site / "gone-series" / "f1.html"
    stale.parent.mkdir()
    stale.write_text("old", encoding="utf-8")
    assert (site / MARKER).exists()
    assert main(["publish", str(one_run), "--out", str(site)]) == 0
    assert not stale.exists() and (site / "index.html").exists()
    assert not list(tmp_path.glob(".site.*"))  # no staging folder left behind


def test_histories_are_joined_once_and_torn_lines_are_noted(
        nightly: tuple[Path, Path, list[RunResult]], one_run: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    history, _, runs = nightly
    torn = tmp_path / "shard.jsonl"
    torn.write_text(one_run.read_text(encoding="utf-8") + "{\"key\": {", encoding="utf-8")
    joined = read_histories([history, torn])  # the real run is in both: shown once
    assert len(joined.runs) == len(runs) and len(joined.unreadable) == 1
    assert main(["publish", str(one_run), str(torn), "--out", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert "from 1 runs" in out and "1 unreadable history line(s) skipped" in out


def test_without_baselines_nothing_is_judged(
        nightly: tuple[Path, Path, list[RunResult]], tmp_path: Path) -> None:
    _, _, runs = nightly
    empty = tmp_path / "baselines"
    empty.mkdir()
    assert {view.state for view in build_views(runs, empty)} == {"not judged"}
    assert {view.state for view in build_views(runs, None)} == {"not judged"}


def test_a_latest_run_that_did_not_finish_fails_its_series(tmp_path: Path) -> None:
    real = real_result()
    raw = real.to_dict()
    raw.update(status="failed", failure={"stage": "train", "cause": "loss is NaN"}, metrics={},
               seeds=[], finished_at="2026-12-08T03:00:00+00:00")
    broken = RunResult.from_dict(raw)
    history = write_history(tmp_path / "h.jsonl", [real, broken])
    assert [v.state for v in build_views([real, broken], None)] == ["fail"]
    assert main(["publish", str(history), "--out", str(tmp_path / "site")]) == 0
    index = (tmp_path / "site" / "index.html").read_text("utf-8")
    assert "failed in train" in index
    page = (tmp_path / "site" / real.entry_id.replace("/", "--") / "f1.html").read_text("utf-8")
    assert "1 run(s) of this series did not finish" in page
