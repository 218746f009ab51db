"""``qa-bench run --preflight``: the whole matrix judged by the hardware's static rules, on any
CPU, in seconds, without poptorch or optimum-graphcore."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from qa.frontends.cli import main

NIGHTLY_ENTRIES = 40  # 5 models x 4 pods x 2 datasets


def test_the_nightly_matrix_passes_in_seconds(capsys) -> None:
    start = time.perf_counter()
    code = main(["run", "--profile", "nightly", "--backend", "ipu", "--preflight"])
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert sum(line.startswith("ok ipu/") for line in out) == NIGHTLY_ENTRIES
    assert out[-1] == f"ok: all {NIGHTLY_ENTRIES} entries pass the static rules (exit 0)"
    assert seconds < 30


def test_an_injected_bad_entry_is_refused_with_exit_1(tmp_path: Path, capsys) -> None:
    profile = Path(__file__).parents[2] / "qa" / "run" / "profiles" / "nightly.toml"
    bad = tmp_path / "bad.toml"
    # The nightly profile with BERT-large's accumulation cut below its 7 pipeline stages.
    bad.write_text(profile.read_text(encoding="utf-8")
                   + '\n[model."bert-large-uncased".train]\ngradient_accumulation_steps = 4\n',
                   encoding="utf-8")
    code = main(["run", "--profile", str(bad), "--preflight"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    refused = [line for line in out if line.startswith("REFUSED")]
    assert len(refused) == 8 and all("bert-large-uncased" in line for line in refused)
    assert "pipeline stages (7)" in refused[0]
    assert sum(line.startswith("ok ") for line in out) == NIGHTLY_ENTRIES - 8
    assert out[-1] == f"NOT OK: 8 of {NIGHTLY_ENTRIES} entries would be refused (exit 1)"


def test_an_entry_that_does_not_fit_is_refused(capsys) -> None:
    code = main(["run", "--profile", "nightly", "--models", "bert-large-uncased", "--pods",
                 "pod4", "--datasets", "squad", "--set", "train.micro_batch_size=8",
                 "--preflight"])
    out = capsys.readouterr().out
    assert code == 1 and "In-Processor Memory" in out and "MB over" in out


def test_a_backend_without_static_rules_judges_nothing(capsys) -> None:
    assert main(["run", "--profile", "smoke", "--preflight"]) == 5
    assert "not checked" in capsys.readouterr().out


def test_bad_input_is_exit_2(capsys) -> None:
    assert main(["run", "--profile", "nightly", "--preflight", "--pods", "pod3"]) == 2


def test_preflight_imports_no_sdk_and_no_ml_library() -> None:
    heavy = ["poptorch", "optimum", "torch", "transformers", "datasets"]
    code = ("import sys; from qa.frontends.cli import main; "
            "rc = main(['run', '--profile', 'nightly', '--preflight']); "
            f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
            "print('loaded:', loaded); sys.exit(10 if loaded else rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]
