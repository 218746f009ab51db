"""Audit of the files qa-bench reads back (issue 21, hidden classes): a malformed field of a
result, a ``verdicts.json`` or a baseline, or a number that cannot be (a score over 100, a
timing <= 0), is refused where the file is read: exit 2, one line naming file and field, no
traceback, and nothing written (run folders, history, baselines byte-identical).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers.compare import ENTRY, make_result

from qa.frontends.cli import main
from qa.results.store import read_history, save_result

RESULT = f"results/{ENTRY}.json"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch) -> Path:
    """Two run folders of one entry, a baselines folder and a history, cwd at the root."""
    for name in ("a", "b"):
        save_result(make_result(), tmp_path / name, history=tmp_path / "history.jsonl")
    (tmp_path / "baselines").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _edit(path: Path, dotted: str, value) -> None:
    raw = json.loads(path.read_text())
    parts = dotted.split(".")
    inner = raw
    for part in parts[:-1]:
        inner = inner[int(part)] if isinstance(inner, list) else inner[part]
    inner[parts[-1]] = value
    path.write_text(json.dumps(raw))


def _refused(tree: Path, capsys, argv: list[str], fragment: str) -> None:
    before = _digest(tree)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qa-bench: error: "), err
    assert fragment in err[0], err[0]
    assert _digest(tree) == before


MALFORMED_RESULTS = [
    ("timings", None, "field 'timings' must be an object, got None"),
    ("key", [], "field 'key' must be an object"),
    ("key.model", 3, "field 'key.model' must be a non-empty string, got 3"),
    ("config", None, "field 'config' must be an object"),
    ("config.train", "x", "field 'config.train' must be an object, got 'x'"),
    ("seeds", None, "field 'seeds' must be a list"),
    ("seeds", [1], "field 'seeds[0]' must be an object, got 1"),
    ("seeds", [{"seed": "a"}], "field 'seeds[0].seed' must be an integer"),
    ("status", "weird", "field 'status' must be one of ok, failed"),
    ("failure", "x", "field 'failure' must be an object"),
    ("dataset_fingerprint", 3, "field 'dataset_fingerprint' must be a string, got 3"),
    ("metrics", "x", "field 'metrics' must be an object"),
    ("metrics.exact_match", "99", "field 'metrics.exact_match' must be a finite number in "
                                  "0 .. 100, got '99'"),
    ("metrics.exact_match", 250, "field 'metrics.exact_match' must be a finite number in "
                                 "0 .. 100, got 250"),
    ("metrics.f1", -3, "field 'metrics.f1' must be a finite number in 0 .. 100, got -3"),
    ("metrics.f1", None, "field 'metrics.f1' must be a finite number"),
    ("timings.compile", "x", "field 'timings.compile' must be an object, got 'x'"),
    ("timings.train_samples_per_s", -3, "field 'timings.train_samples_per_s' must be a finite "
                                        "number > 0"),
    ("timings.compile.cold_s", 0, "field 'timings.compile.cold_s' must be a finite number > 0"),
]


@pytest.mark.parametrize("dotted, value, fragment", MALFORMED_RESULTS,
                         ids=[f"{d}={v!r}" for d, v, _ in MALFORMED_RESULTS])
def test_a_malformed_result_field_is_refused_by_every_command(tree, capsys, dotted, value,
                                                              fragment) -> None:
    _edit(tree / "a" / RESULT, dotted, value)
    for argv in (["report", "a"], ["compare", "a", "b"], ["compare", "b", "a"],
                 ["baseline", "a"], ["merge", "a", "b", "--out", "merged", "--force"]):
        _refused(tree, capsys, argv, f"a/{RESULT}: {fragment}")


def test_merge_refuses_a_malformed_result_instead_of_calling_the_entry_missing(tree,
                                                                                capsys) -> None:
    (tree / "a" / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "profile": "smoke", "entries": [
            {"id": ENTRY, "result": ENTRY, "shard": 1}], "shard": None}))
    _edit(tree / "a" / RESULT, "metrics", None)
    _refused(tree, capsys, ["merge", "a", "--out", "merged"], "field 'metrics'")
    _refused(tree, capsys, ["report", "a"], "field 'metrics'")


def test_a_history_line_with_wrong_types_is_skipped_with_a_warning(tmp_path) -> None:
    history = tmp_path / "history.jsonl"
    save_result(make_result(), tmp_path / "run", history=history)
    bad = make_result().to_dict()
    bad["timings"] = None
    with history.open("a") as handle:
        handle.write(json.dumps(bad) + "\n")
    with pytest.warns(UserWarning, match="history.jsonl:2: skipping unreadable history line"):
        assert len(read_history(history)) == 1


VERDICTS = [
    ("verdicts", None, "field 'verdicts' must be a list"),
    ("verdicts", "x", "field 'verdicts' must be a list"),
    ("notes", 3, "field 'notes' must be a list"),
    ("verdicts.0.status", "great", "field 'verdicts[0]'.status must be one of pass"),
    ("verdicts.0.entry", -3, "field 'verdicts[0]'.entry must be a non-empty string"),
    ("verdicts.0.value", 250, "field 'verdicts[0]'.value must be a finite number in 0 .. 100"),
    ("verdicts.0.tolerance", -3, "field 'verdicts[0]'.tolerance must be a finite number >= 0"),
]


@pytest.mark.parametrize("dotted, value, fragment", VERDICTS,
                         ids=[f"{d}={v!r}" for d, v, _ in VERDICTS])
def test_a_malformed_stored_verdicts_file_is_refused(tree, capsys, dotted, value,
                                                     fragment) -> None:
    (tree / "baselines").rmdir()  # no baselines: report shows the stored verdicts
    (tree / "a" / "verdicts.json").write_text(json.dumps({
        "schema_version": 1, "title": "t", "incomplete": False, "notes": [], "missing": [],
        "skipped": {}, "verdicts": [{
            "entry": ENTRY, "metric": "f1", "value": 88.0,
            "baseline": 88.0, "delta": 0.0, "tolerance": 1.0, "unit": "points",
            "status": "pass", "higher_is_better": True, "message": "", "note": ""}]}))
    assert main(["report", "a"]) == 0  # the file as written is fine
    _edit(tree / "a" / "verdicts.json", dotted, value)
    _refused(tree, capsys, ["report", "a"], f"verdicts.json: {fragment}")


PROVENANCE = [
    ("provenance.hardware", 3, "field 'provenance.hardware' must be a list"),
    ("provenance.workload", "x", "field 'provenance.workload' must be an object"),
    ("provenance.settings", 3, "field 'provenance.settings' must be an object"),
    ("provenance.dataset_fingerprint", 3, "field 'provenance.dataset_fingerprint' must be a "
                                          "string"),
    ("provenance.runs", -3, "field 'provenance.runs' must be an integer >= 1"),
    ("timings", [{"hardware": {"kind": "cpu"}, "metrics": {}, "provenance": "x"}],
     "timings[0].provenance must be an object"),
]


@pytest.mark.parametrize("dotted, value, fragment", PROVENANCE,
                         ids=[f"{d}={v!r}" for d, v, _ in PROVENANCE])
def test_a_malformed_baseline_provenance_is_refused(tree, capsys, dotted, value,
                                                    fragment) -> None:
    assert main(["baseline", "a"]) == 0
    path = tree / "baselines" / f"{ENTRY}.json"
    _edit(path, dotted, value)
    for argv in (["report", "a"], ["baseline", "a"]):
        _refused(tree, capsys, argv, fragment)


def test_a_history_with_binary_junk_is_read_line_by_line(tmp_path) -> None:
    history = tmp_path / "history.jsonl"
    save_result(make_result(), tmp_path / "run", history=history)
    with history.open("ab") as handle:
        handle.write(b"\xff\xfe\x00junk\n")
    with pytest.warns(UserWarning, match="history.jsonl:2: skipping unreadable history line"):
        assert len(read_history(history)) == 1


def test_a_history_that_is_a_folder_is_one_line_not_a_traceback(tree, capsys) -> None:
    (tree / "history.jsonl").unlink()
    (tree / "history.jsonl").mkdir()
    _refused(tree, capsys, ["report", "a"], "cannot read the history")
