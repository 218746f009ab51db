"""A result whose key and hardware fingerprint disagree on emulation is refused when read."""

from __future__ import annotations

import json

import pytest
from helpers.gating import make_result

from qa.errors import QABenchError
from qa.results.store import load_result, load_run_dir, read_history, save_result

IPU_KEY = {"backend": "ipu", "pod": "pod16", "model": "bert-base-uncased", "dataset": "squad"}


def saved(tmp_path, pod: str, emulated: bool):
    result = make_result(key={**IPU_KEY, "pod": pod},
                         hardware={"kind": "ipu", "pod": "pod16", "emulated": emulated})
    return save_result(result, tmp_path / "run")


@pytest.mark.parametrize(("pod", "emulated"), [("pod16", False), ("pod16-emulated", True)])
def test_agreeing_marks_load(tmp_path, pod: str, emulated: bool) -> None:
    assert load_result(saved(tmp_path, pod, emulated)).hardware["emulated"] is emulated


@pytest.mark.parametrize(("pod", "emulated", "says"), [
    ("pod16", True, "key pod 'pod16' says real hardware but hardware.emulated is true"),
    ("pod16-emulated", False, "key pod 'pod16-emulated' says emulated hardware but "
                              "hardware.emulated is false"),
])
def test_disagreeing_marks_are_refused_in_one_line(tmp_path, pod, emulated, says) -> None:
    path = saved(tmp_path, pod, emulated)
    with pytest.raises(QABenchError) as refused:
        load_result(path)
    assert says in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(QABenchError, match="is refused"):
        load_run_dir(tmp_path / "run")


def test_an_emulated_result_relabelled_as_real_is_refused(tmp_path) -> None:
    path = saved(tmp_path, "pod16-emulated", True)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["key"]["pod"] = "pod16"  # filed as a real pod's result by hand
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(QABenchError, match="says real hardware but hardware.emulated is true"):
        load_result(path)


def test_the_history_skips_a_disagreeing_line_with_a_warning(tmp_path) -> None:
    saved(tmp_path, "pod16", True)
    with pytest.warns(UserWarning, match="says real hardware"):
        assert read_history(tmp_path / "history.jsonl") == []
