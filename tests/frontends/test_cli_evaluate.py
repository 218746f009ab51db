"""``qa-bench evaluate`` as a drop-in for ``evaluate-v2.0.py``: what it prints, writes and draws.

The numbers are the reference re-expression's (``benchmarks/oracles/official_squad.py``);
here the output channels are checked: stdout as the script prints it (v2.0 indented, v1.1 on
one line), ``--out-file`` as it writes it (one line, nothing on stdout), ``--out-image-dir``
with the script's five file names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.oracles import official_squad
from qa.frontends.cli import main

QAS = (("a1", ["Paris"]), ("a2", ["blue whale"]), ("a3", ["1990"]), ("n1", []), ("n2", []))
PREDS = {"a1": "Paris", "a2": "blue", "a3": "", "n1": "", "n2": "something"}
PROBS = {"a1": 0.1, "a2": 0.6, "a3": 0.95, "n1": 0.3, "n2": 0.9}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    data = [{"title": "t", "paragraphs": [{"context": "Paris blue whale 1990", "qas": [
        {"id": qid, "question": "q?", "answers": [
            {"text": t, "answer_start": "Paris blue whale 1990".index(t)} for t in golds]}
        for qid, golds in QAS]}]}]
    paths = {"data": tmp_path / "dev.json", "pred": tmp_path / "pred.json",
             "na": tmp_path / "na_prob.json"}
    paths["data"].write_text(json.dumps({"version": "v2.0", "data": data}))
    paths["pred"].write_text(json.dumps(PREDS))
    paths["na"].write_text(json.dumps(PROBS))
    return paths


def _official(files: dict[str, Path], **kwargs: object) -> dict:
    data = json.loads(files["data"].read_text())["data"]
    return official_squad.evaluate_v2(data, PREDS, **kwargs)


@pytest.mark.parametrize("thresh", [None, 0.5, -1.0])
def test_stdout_is_the_scripts_indented_json(files: dict[str, Path], thresh: float | None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = ["evaluate", "--version-2", str(files["data"]), str(files["pred"]),
            "--na-prob-file", str(files["na"])]
    args += ["--na-prob-thresh", str(thresh)] if thresh is not None else []
    assert main(args) == 0
    out, err = capsys.readouterr()
    expected = _official(files, na_probs=PROBS, na_prob_thresh=1.0 if thresh is None else thresh)
    assert (out, err) == (json.dumps(expected, indent=2) + "\n", "")
    assert "best_f1_thresh" in out


def test_out_file_gets_one_line_and_stdout_nothing(files: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "eval.json"
    assert main(["evaluate", "--version-2", str(files["data"]), str(files["pred"]),
                 "-n", str(files["na"]), "-t", "0.5", "-o", str(out_file)]) == 0
    assert capsys.readouterr() == ("", "")
    assert out_file.read_text() == json.dumps(_official(files, na_probs=PROBS,
                                                        na_prob_thresh=0.5))


def test_out_image_dir_gets_the_scripts_pictures(files: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "new" / "images"  # created, as the script creates it
    assert main(["evaluate", "--version-2", str(files["data"]), str(files["pred"]),
                 "-n", str(files["na"]), "-p", str(images)]) == 0
    out, _ = capsys.readouterr()
    drawn: dict = {}
    expected = _official(files, na_probs=PROBS, image_analysis=True, drawn=drawn)
    assert json.loads(out) == expected
    assert list(expected)[-3:] == ["pr_exact_ap", "pr_f1_ap", "pr_oracle_ap"]
    names = {"exact": "pr_exact.png", "f1": "pr_f1.png", "oracle": "pr_oracle.png",
             "hasAns": "na_prob_hist_hasAns.png", "noAns": "na_prob_hist_noAns.png"}
    assert sorted(p.name for p in images.iterdir()) == sorted(names[k] for k in drawn)
    assert len(drawn) == 5
    assert all(p.read_bytes().startswith(PNG) for p in images.iterdir())


def test_v1_still_prints_one_line(files: dict[str, Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(files["data"].read_text())
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if qa["answers"]]
    files["data"].write_text(json.dumps(data))
    assert main(["evaluate", str(files["data"]), str(files["pred"])]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1 and set(json.loads(out)) == {"exact_match", "f1"}
