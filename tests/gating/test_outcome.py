"""No silent pass: an exit 0 only where something was judged; unlike, absent or refused work is
never green (``qa.gating.outcome``, ``qa.run.availability``, ``qa.run.preflight.check_fresh``,
``qa-bench compare``).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from helpers.compare import make_result

from qa.config.schema import DataConfig, ModelConfig, RunConfig
from qa.frontends.cli import main
from qa.gating.outcome import EXIT_FAIL, EXIT_NOTHING_JUDGED, EXIT_OK, decide
from qa.gating.verdicts import Verdict
from qa.results.store import save_result
from qa.run import availability


def verdict(status: str, entry: str = "torch/cpu/m__d", metric: str = "f1") -> Verdict:
    return Verdict(entry, metric, 90.0, 90.0, 0.0, 1.0, "points", status)


OK = make_result()


@pytest.mark.parametrize(("statuses", "code"), [
    (["pass"], EXIT_OK),
    (["improved"], EXIT_OK),
    (["pass", "busy", "other_hardware", "missing"], EXIT_OK),  # accuracy judged, timings not
    (["fail", "pass"], EXIT_FAIL),
    (["missing"], EXIT_NOTHING_JUDGED),  # no baseline: nothing judged
    (["other_hardware", "busy"], EXIT_NOTHING_JUDGED),
    ([], EXIT_NOTHING_JUDGED),
    (["not_comparable", "not_comparable"], EXIT_NOTHING_JUDGED),
])
def test_the_exit_code_says_whether_something_was_judged(statuses, code) -> None:
    outcome = decide([OK], [verdict(s) for s in statuses])
    assert outcome.code == code, outcome.reason
    assert "\n" not in outcome.reason and outcome.reason


def test_a_judged_entry_beside_an_unlike_one_is_not_green() -> None:
    """One entry passes, another ran on work its baseline was not measured on: not green."""
    outcome = decide([OK, OK], [verdict("pass"), verdict("not_comparable", entry="other")])
    assert outcome.code == EXIT_NOTHING_JUDGED and "other" in outcome.reason


def test_failures_and_missing_entries_fail_before_anything_else() -> None:
    failed = make_result(status="failed")
    assert decide([OK, failed], [verdict("pass")]).code == EXIT_FAIL
    assert decide([OK], [verdict("pass")], missing=["torch/cpu/x__y"]).code == EXIT_FAIL
    only_skips = decide([], [], skipped=["a", "b"])
    assert only_skips.code == EXIT_NOTHING_JUDGED and "every entry was skipped (2)" in \
        only_skips.reason


# ---------------------------------------------------------------- absent hardware, data, model

def test_a_run_whose_every_entry_is_absent_is_skipped_fast_and_not_green(tmp_path, capsys):
    """sdk-upgrade on a machine without the Poplar SDK: each entry skipped with the reason in
    seconds (no hub retries), a report naming them, exit 5 — as the pytest plugin skips them."""
    started = time.perf_counter()
    code = main(["run", "--profile", "sdk-upgrade", "--out", str(tmp_path / "run")])
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert code == EXIT_NOTHING_JUDGED
    assert elapsed < 30  # measured ~1.5 s; the old path retried the hub for ~55 s
    assert out.count("skipped: ipu/pod16/bert-base-uncased__squad") == 2  # squad and squad_v2
    report = (tmp_path / "run" / "report.md").read_text()
    assert "NOTHING JUDGED" in report and "## Skipped entries" in report
    assert "poptorch not importable" in report
    # qa-bench report agrees with the run: the same skips, the same exit code.
    assert main(["report", str(tmp_path / "run")]) == EXIT_NOTHING_JUDGED


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty hub cache and datasets cache, the hub's endpoint a closed local port."""
    from datasets import config as datasets_config
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets_config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard: nothing listens
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    availability.hub_reachable.cache_clear()
    yield tmp_path / "hub"
    availability.hub_reachable.cache_clear()


def test_a_hub_dataset_without_a_reachable_hub_is_a_skip_within_seconds(empty_hub) -> None:
    config = RunConfig(data=DataConfig(dataset="squad"))
    started = time.perf_counter()
    why = availability.unavailable(config)
    assert time.perf_counter() - started < availability.HUB_PROBE_TIMEOUT_S + 1
    assert why is not None and "dataset 'squad'" in why and "hub is unreachable" in why
    assert "--squad-dir" in why


def test_offline_mode_is_a_skip_without_asking_the_hub(empty_hub, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    why = availability.unavailable(RunConfig(model=ModelConfig(name="org/some-model")))
    assert why is not None and "$HF_HUB_OFFLINE is set" in why
    assert availability.hub_reachable.cache_info().currsize == 0  # the hub was never probed


def test_a_cached_hub_model_and_local_data_are_available(empty_hub, tmp_path) -> None:
    (empty_hub / "models--org--some-model" / "snapshots" / "abc").mkdir(parents=True)
    assert availability.unavailable(RunConfig(model=ModelConfig(name="org/some-model"))) is None
    (empty_hub / "datasets--rajpurkar--squad" / "snapshots" / "abc").mkdir(parents=True)
    assert availability.unavailable(RunConfig(data=DataConfig(dataset="squad"))) is None
    assert availability.unavailable(RunConfig()) is None  # synthetic data, tiny model


# ---------------------------------------------------------------- one run per folder

def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_that_holds_a_run_is_refused_as_out_and_left_untouched(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--profile", "sdk-upgrade", "--out", str(run)]) == EXIT_NOTHING_JUDGED
    before = _digest(tmp_path)
    capsys.readouterr()
    assert main(["run", "--profile", "sdk-upgrade", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run (manifest.json)" in err[0]
    assert main(["merge", str(tmp_path / "x"), "--out", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert _digest(tmp_path) == before


# ---------------------------------------------------------------- compare

def _run_dir(path: Path, *results) -> Path:
    for result in results:
        save_result(result, path)
    return path


CPU = {"kind": "cpu", "cpu": "AMD EPYC", "cpu_id": "AuthenticAMD/25/1/1", "cores": 2,
       "threads": 2, "torch_build": "cpu"}


def test_compare_of_runs_that_share_no_entry_is_not_a_pass(tmp_path, capsys) -> None:
    real = _run_dir(tmp_path / "real", make_result())
    # The two marks agree, as the store requires (qa.results.store.check_emulated_mark).
    emulated = _run_dir(tmp_path / "emu", make_result(
        key={**make_result().key, "pod": "pod16-emulated"},
        hardware={**make_result().hardware, "emulated": True}))
    assert main(["compare", str(real), str(emulated)]) == EXIT_NOTHING_JUDGED
    err = capsys.readouterr().err
    assert "nothing was compared" in err and "real and emulated hardware" in err
    other = _run_dir(tmp_path / "other", make_result(key={**make_result().key, "model": "x"}))
    assert main(["compare", str(real), str(other)]) == EXIT_NOTHING_JUDGED
    assert "share no entry" in capsys.readouterr().err
    failed = _run_dir(tmp_path / "failed", make_result(status="failed"))
    assert main(["compare", str(failed), str(failed)]) == EXIT_NOTHING_JUDGED
    assert "no entry finished in both runs" in capsys.readouterr().err


def test_compare_refuses_other_hardware_unless_forced(tmp_path, capsys) -> None:
    a = _run_dir(tmp_path / "a", make_result(hardware=CPU))
    b = _run_dir(tmp_path / "b", make_result(hardware={**CPU, "cpu_id": "AuthenticAMD/25/17/0"}))
    same = _run_dir(tmp_path / "same", make_result(hardware=dict(CPU)))
    assert main(["compare", str(a), str(same)]) == EXIT_OK
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "hardware differs (cpu_id: AuthenticAMD/25/1/1 -> AuthenticAMD/25/17/0)" in err
    assert main(["compare", str(a), str(b), "--force"]) == EXIT_OK
    assert "Forced comparison" in capsys.readouterr().out


def test_a_refusal_is_one_line_whatever_the_input_quotes(capsys) -> None:
    """Found by the validation fuzz test: a --set key with a line break in it made the one-line
    refusal two lines. Every QABenchError keeps its message on one line, escaped."""
    assert main(["run", "--set", "train.\n0=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown config key 'train.\\n0'" in err


def test_compare_of_emulated_against_real_only_when_forced(tmp_path, capsys) -> None:
    pod = {"kind": "ipu", "pod": "pod16", "ipus": 16}
    real = _run_dir(tmp_path / "real", make_result(hardware={**pod, "emulated": False}))
    emulated = _run_dir(tmp_path / "emu", make_result(
        key={**make_result().key, "pod": "pod16-emulated"},
        hardware={**pod, "emulated": True}))
    assert main(["compare", str(emulated), str(real)]) == EXIT_NOTHING_JUDGED
    err = capsys.readouterr().err
    assert "real and emulated hardware are not compared" in err and "--force" in err
    assert main(["compare", str(emulated), str(real), "--force"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Forced comparison" in out and "emulated: True -> False" in out
    assert "f1" in out and "only in" not in out  # the entries were paired, not listed apart
