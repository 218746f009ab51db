"""RunResult JSON, atomic writes, the history file and path-safe names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.files import write_json_atomic, write_text_atomic
from qa.results.store import (
    SCHEMA_VERSION,
    RunResult,
    append_history,
    entry_id,
    load_result,
    load_run_dir,
    read_history,
    safe_name,
    save_result,
)

KEY = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}


def make_result(**overrides) -> RunResult:
    fields = {
        "key": dict(KEY),
        "config": RunConfig().to_dict(),
        "metrics": {"exact_match": 71.5, "f1": 80.25},
        "timings": {"train_samples_per_s": 123.4, "train_step_s": {"median": 0.1, "iqr": 0.01}},
        "memory": {"peak_rss_mb": 900.0},
        "environment": {"python": "3.11", "versions": {"torch": "2.x"}},
        "dataset_fingerprint": "abc123",
        "seeds": [{"seed": 42, "exact_match": 71.5}],
        "started_at": "2024-01-01T00:00:00+00:00",
        "finished_at": "2024-01-01T00:05:00+00:00",
    }
    fields.update(overrides)
    return RunResult(**fields)


def test_run_result_round_trip_through_json(tmp_path: Path) -> None:
    result = make_result(status="failed", failure={"stage": "train", "cause": "boom"})
    again = RunResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    path = write_json_atomic(tmp_path / "r.json", result.to_dict())
    assert load_result(path) == result


def test_run_result_from_dict_rejects_other_json() -> None:
    with pytest.raises(QABenchError, match="must be a JSON object"):
        RunResult.from_dict([1, 2])  # type: ignore[arg-type]
    raw = make_result().to_dict()
    del raw["metrics"]
    with pytest.raises(QABenchError, match="missing metrics"):
        RunResult.from_dict(raw)
    raw = make_result().to_dict()
    raw["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(QABenchError, match="schema_version"):
        RunResult.from_dict(raw)


def test_run_result_ignores_unknown_fields() -> None:
    raw = {**make_result().to_dict(), "added_in_a_later_minor": 1}
    assert RunResult.from_dict(raw) == make_result()


def test_load_result_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(QABenchError, match="not valid JSON"):
        load_result(bad)
    with pytest.raises(QABenchError, match="cannot read"):
        load_result(tmp_path / "missing.json")
    with pytest.raises(QABenchError, match="no such run directory"):
        load_run_dir(tmp_path / "missing")
    with pytest.raises(QABenchError, match="no results/"):
        load_run_dir(tmp_path)


def test_save_result_and_load_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    path = save_result(make_result(), run)
    assert path == run / "results" / "torch" / "cpu" / "tiny-roformer__synthetic.json"
    assert load_run_dir(run) == [make_result()]
    assert read_history(tmp_path / "runs" / "history.jsonl") == [make_result()]


def test_write_json_atomic_writes_numpy_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "out.json"
    write_json_atomic(path, {"a": np.float32(1.5), "b": np.arange(3), "c": "é"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1.5, "b": [0, 1, 2], "c": "é"}
    write_json_atomic(path, {"a": 2})  # replacing an existing file
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_failed_write_keeps_the_old_file_and_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json_atomic(path, {"version": 1})
    before = path.read_bytes()
    # Serialisation fails half-way through the dump: the first keys are already written.
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": 1, "b": list(range(1000)), "z": object()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_text_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    write_text_atomic(path, "old\n")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, not a folder", encoding="utf-8")
    with pytest.raises(QABenchError, match="cannot write .*file/sub/out.json"):
        write_json_atomic(blocker / "sub" / "out.json", {"a": 1})
    with pytest.raises(QABenchError, match="cannot write"):
        write_text_atomic(blocker / "sub" / "report.md", "x")
    with pytest.raises(QABenchError, match="cannot write"):
        save_result(make_result(), blocker / "sub")
    with pytest.raises(QABenchError, match="cannot write"):
        append_history(blocker / "history.jsonl", make_result())
    assert blocker.read_text(encoding="utf-8") == "a regular file, not a folder"


def test_history_appends(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    first, second = make_result(), make_result(metrics={"exact_match": 1.0, "f1": 2.0})
    append_history(history, first)
    append_history(history, second)
    assert history.read_text(encoding="utf-8").count("\n") == 2
    assert read_history(history) == [first, second]
    assert read_history(tmp_path / "none.jsonl") == []


def test_history_skips_a_torn_last_line(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    append_history(history, make_result())
    append_history(history, make_result(status="failed"))
    whole = history.read_text(encoding="utf-8")
    torn_line = json.dumps(make_result(status="timeout").to_dict())[:57]  # killed mid-write
    history.write_text(whole + torn_line, encoding="utf-8")
    with pytest.warns(UserWarning, match="history.jsonl:3: skipping unreadable history line"):
        results = read_history(history)
    assert [r.status for r in results] == ["ok", "failed"]


def test_history_skips_bad_lines_in_the_middle(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    append_history(history, make_result())
    with open(history, "a", encoding="utf-8") as handle:
        handle.write('{"not": "a result"}\n\n[1, 2]\n')
    append_history(history, make_result(status="diverged"))
    with pytest.warns(UserWarning) as caught:
        results = read_history(history)
    assert [r.status for r in results] == ["ok", "diverged"]
    assert len(caught) == 2  # the blank line is not a problem


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path", "org/model", "..", ".",
                                  "...", "a\\b", "a\x00b", "", ".hidden", "x/../../y"])
def test_safe_name_has_no_path_parts(name: str) -> None:
    safe = safe_name(name)
    assert safe
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert ".." not in safe
    assert not safe.startswith(".")


def test_safe_name_keeps_ordinary_ids_readable() -> None:
    assert safe_name("bert-base-uncased") == "bert-base-uncased"
    assert safe_name("squad_v2") == "squad_v2"
    assert safe_name("org/model") == "org-model"
    assert safe_name("bert.v1") == "bert.v1"


@pytest.mark.parametrize("model", ["../../etc/passwd", "/abs/path", "org/model", "..",
                                   "a/../../b"])
def test_entry_id_stays_under_its_root(tmp_path: Path, model: str) -> None:
    key = {"backend": "../torch", "pod": "/cpu", "model": model, "dataset": "../squad"}
    ident = entry_id(key)
    parts = ident.split("/")
    assert len(parts) == 3
    assert all(p and p not in (".", "..") and not p.startswith(".") for p in parts)
    root = tmp_path / "baselines"
    target = (root / f"{ident}.json").resolve()
    assert target.is_relative_to(root.resolve())
    assert len(target.relative_to(root.resolve()).parts) == 3


def test_save_result_with_hostile_model_name_stays_in_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = make_result(key={**KEY, "model": "../../../../escape"})
    path = save_result(result, run)
    assert path.resolve().is_relative_to(run.resolve())
    assert not list(tmp_path.glob("escape*"))
