"""tools/ipu_ab.py: the emulated SDK A/B's verdict from seed-paired differences.

The emulated runs are deterministic, so the same SDK gives identical per-seed accuracy; an
injected trainer bug moves every seed the same way. These tests build the two sides' results
(no training) and check the verdict rule, including where qa-bench compare's unpaired rule
(max(1 point, 3 sigma of A's seeds)) cannot see a drop that every seed shows.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.compare import make_result

from qa.results.store import save_result

TOOL = Path(__file__).resolve().parents[2] / "tools" / "ipu_ab.py"


@pytest.fixture(scope="module")
def ipu_ab():
    spec = importlib.util.spec_from_file_location("ipu_ab", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side(path: Path, em: list[float], f1: list[float]) -> Path:
    seeds = [{"seed": 42 + i, "exact_match": e, "f1": f} for i, (e, f) in enumerate(zip(em, f1,
                                                                                      strict=True))]
    save_result(make_result(f1=sum(f1) / len(f1), seeds=seeds,
                            metrics={"exact_match": sum(em) / len(em), "f1": sum(f1) / len(f1)}),
                path)
    return path


# Side A as measured (docs/ipu.md): the tiny model's seeds spread widely.
A_EM, A_F1 = [30.0, 24.0, 11.33], [35.79, 28.28, 13.67]


def test_the_same_sdk_is_no_change(ipu_ab, tmp_path) -> None:
    a = side(tmp_path / "a", A_EM, A_F1)
    b = side(tmp_path / "b", A_EM, A_F1)
    assert ipu_ab.paired(a, b)[0] == "no change"


def test_a_drop_on_every_seed_is_a_regression_that_the_unpaired_rule_misses(ipu_ab,
                                                                            tmp_path) -> None:
    a = side(tmp_path / "a", A_EM, A_F1)
    b = side(tmp_path / "b", [1.11, 3.33, 0.0], [1.85, 7.05, 3.80])
    assert ipu_ab.paired(a, b)[0] == "regression"
    assert ipu_ab.unpaired(a, b)[0] == "no change"  # 3 sigma of A's seeds: ~28 points


def test_seed_noise_is_within_the_spread(ipu_ab, tmp_path) -> None:
    a = side(tmp_path / "a", A_EM, A_F1)
    b = side(tmp_path / "b", [18.0, 30.0, 20.0], [22.0, 36.0, 24.0])  # up, up, down
    assert ipu_ab.paired(a, b)[0] == "changed within the seeds' spread"


def test_judge_mode_exits_1_on_a_regression(ipu_ab, tmp_path, capsys) -> None:
    a = side(tmp_path / "a", A_EM, A_F1)
    same = side(tmp_path / "same", A_EM, A_F1)
    worse = side(tmp_path / "worse", [1.11, 3.33, 0.0], [1.85, 7.05, 3.80])
    assert ipu_ab.main(["--judge", str(a), str(same)]) == 0
    assert "**no change**" in capsys.readouterr().out
    assert ipu_ab.main(["--judge", str(a), str(worse)]) == 1
    assert "**regression**" in capsys.readouterr().out
