"""One reader per format: a byte-order mark, bad bytes and bad syntax read the same everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.errors import QABenchError
from qa.files import read_json, read_toml
from qa.task.data import read_squad_json
from qa.task.metrics import evaluate_files

ROOT = Path(__file__).resolve().parent
DATA_OK = ROOT / "bad_inputs" / "data_ok.json"


def test_a_squad_file_with_a_byte_order_mark_reads_for_evaluate_and_for_training(
        tmp_path: Path) -> None:
    with_bom = tmp_path / "dev-v1.1.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + DATA_OK.read_bytes())
    predictions = tmp_path / "predictions.json"
    predictions.write_bytes(b"\xef\xbb\xbf" + (ROOT / "bad_inputs" / "predictions_ok.json")
                            .read_bytes())
    assert read_squad_json(with_bom, version_2=False) == read_squad_json(DATA_OK,
                                                                         version_2=False)
    plain = evaluate_files(DATA_OK, ROOT / "bad_inputs" / "predictions_ok.json")
    assert evaluate_files(with_bom, predictions) == plain


@pytest.mark.parametrize(("content", "fragment"), [
    (b"\xff{}", "is not UTF-8 text"),
    (b'{"a": ', "is not valid JSON: malformed JSON at line 1"),
])
def test_json_problems_are_one_line_naming_the_file(tmp_path: Path, content: bytes,
                                                    fragment: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    for what in ("dataset", "baseline"):
        with pytest.raises(QABenchError, match=f"{what} file '.*x.json' {fragment}") as info:
            read_json(path, what)
        assert "\n" not in str(info.value)


def test_toml_reader(tmp_path: Path) -> None:
    good = tmp_path / "p.toml"
    good.write_bytes(b"\xef\xbb\xbfa = 1\n")
    assert read_toml(good) == {"a": 1}
    bad = tmp_path / "q.toml"
    bad.write_text("a = \n", encoding="utf-8")
    with pytest.raises(QABenchError, match=r"profile '.*q.toml' is not valid TOML"):
        read_toml(bad, "profile")
    assert json.dumps(read_toml(good))  # plain data


def test_evaluate_accepts_what_the_official_scripts_accept_and_says_what_it_ignored(
        tmp_path: Path) -> None:
    """Training refuses an answer away from its answer_start; the official scripts (and so
    ``evaluate``) read only ids and answer texts: they score it, with a warning."""
    document = json.loads(DATA_OK.read_text(encoding="utf-8"))
    qa = document["data"][0]["paragraphs"][0]["qas"][0]
    qa["answers"][0]["answer_start"] += 1
    shifted = tmp_path / "shifted.json"
    shifted.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(QABenchError, match="is not at answer_start"):
        read_squad_json(shifted, version_2=False)
    with pytest.warns(UserWarning, match="ignored what only training checks: "
                                         "1 × answer not at its answer_start"):
        scores = evaluate_files(shifted, ROOT / "bad_inputs" / "predictions_ok.json")
    assert scores == evaluate_files(DATA_OK, ROOT / "bad_inputs" / "predictions_ok.json")
