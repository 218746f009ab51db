"""The bad-input corpus: every bad input gives one clear line, exit code 2 and no traceback.

The files live in ``tests/bad_inputs/``. Each case below is ``name -> (input, expected message
fragment)``; the tables are the corpus index, so ``len(ALL_CASES)`` counts it. Cases run through
the real front ends: ``qa.frontends.cli.main`` in-process, a few through ``python -m
qa.frontends.cli`` and
``pytest benchmarks`` subprocesses (to see what reaches the terminal), and the library entry
points the front ends call (baseline files, the preprocessing of an over-long question).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.frontends.cli import main
from qa.gating.baselines import load_baseline_file
from qa.progress import PROGRESS_LINE
from qa.results.store import RunResult, save_result
from qa.task.data import read_squad_json

BAD = Path(__file__).resolve().parents[1] / "bad_inputs"
REPO = Path(__file__).resolve().parents[2]
PREFIX = "qa-bench: error: "

# --------------------------------------------------------------------------- the corpus

# qa-bench CLI arguments ({bad}: this corpus folder, {tmp}: the test's tmp_path) -> fragment.
CLI_CASES: dict[str, tuple[list[str], str]] = {
    "evaluate: malformed JSON data": (
        ["evaluate", "{bad}/data_malformed.json", "{bad}/predictions_ok.json"],
        "is not valid JSON"),
    "evaluate: data not in SQuAD layout": (
        ["evaluate", "{bad}/data_not_squad_layout.json", "{bad}/predictions_ok.json"],
        "is not SQuAD layout: it has no 'data' key"),
    "evaluate: non-UTF-8 data": (
        ["evaluate", "{bad}/data_not_utf8.json", "{bad}/predictions_ok.json"],
        "is not UTF-8 text"),
    "evaluate: predictions are a list": (
        ["evaluate", "{bad}/data_ok.json", "{bad}/predictions_list.json"],
        "must be a JSON object mapping question id to answer text, got a list"),
    "evaluate: prediction not a string": (
        ["evaluate", "{bad}/data_ok.json", "{bad}/predictions_non_string.json"],
        "prediction for id 'ada-2' must be a string"),
    "evaluate: non-UTF-8 predictions": (
        ["evaluate", "{bad}/data_ok.json", "{bad}/predictions_not_utf8.json"],
        "is not UTF-8 text"),
    "evaluate: missing data file": (
        ["evaluate", "{tmp}/missing.json", "{bad}/predictions_ok.json"],
        "cannot read dataset file"),
    "evaluate: missing predictions file": (
        ["evaluate", "{bad}/data_ok.json", "{tmp}/missing.json"],
        "cannot read predictions file"),
    "evaluate: no-answer probabilities lack a predicted question": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{bad}/na_probs_missing_id.json"],
        "no-answer probabilities lack 1 of the 3 predicted questions (first: 'ada-2')"),
    "evaluate: a no-answer probability is not a number": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{bad}/na_probs_not_number.json"],
        "the value of 'ada-1' must be a number, got a string"),
    "evaluate: no-answer probabilities are a list": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{bad}/na_probs_list.json"],
        "must be a JSON object mapping question id to a number, got a list"),
    "evaluate: malformed no-answer probabilities": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{bad}/data_malformed.json"],
        "no-answer probabilities file"),
    "evaluate: missing no-answer probabilities file": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{tmp}/missing.json"],
        "cannot read no-answer probabilities file"),
    "evaluate: a v2.0 option without --version-2": (
        ["evaluate", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{bad}/na_probs_ok.json"],
        "--na-prob-file is a SQuAD v2.0 option (add --version-2)"),
    "evaluate: --out-image-dir without --na-prob-file": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--out-image-dir", "{tmp}/images"],
        "--out-image-dir needs --na-prob-file"),
    "evaluate: --out-image-dir is a file": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-file", "{bad}/na_probs_ok.json", "--out-image-dir", "{bad}/data_ok.json"],
        "is a file, not a folder"),
    "evaluate: --na-prob-thresh nan": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--na-prob-thresh", "nan"],
        "--na-prob-thresh must be a number, got NaN"),
    "evaluate: --out-file is a folder": (
        ["evaluate", "--version-2", "{bad}/data_ok.json", "{bad}/predictions_ok.json",
         "--out-file", "{tmp}"],
        "is a folder"),
    "run: unknown profile": (
        ["run", "--profile", "smok"], "unknown profile 'smok' (did you mean 'smoke'?)"),
    "run: unknown backend": (
        ["run", "--backend", "troch"], "unknown backend 'troch' (did you mean 'torch'?)"),
    "run: unknown pod": (
        ["run", "--backend", "ipu", "--pods", "pod17"],
        "unknown pod 'pod17' (did you mean 'pod16'?)"),
    "run: unknown device": (
        ["run", "--pods", "gpu"], "unknown device 'gpu' (did you mean 'cpu'?)"),
    "run: unknown model": (
        ["run", "--models", "tiny-robert"], "unknown model 'tiny-robert' (did you mean 'tiny-"),
    "run: --set key typo": (
        ["run", "--set", "train.learnig_rate=1"],
        "unknown config key 'train.learnig_rate' (did you mean 'learning_rate'?)"),
    "run: --set wrong type": (
        ["run", "--set", "train.learning_rate=abc"],
        "train.learning_rate expects float, got 'abc'"),
    "run: --set unknown section": (
        ["run", "--set", "nosuchsection.x=1"], "unknown config section 'nosuchsection'"),
    "run: --set malformed": (
        ["run", "--set", "foo"], "--set expects section.key=value, got 'foo'"),
    "run: --seeds 0": (["run", "--seeds", "0"], "--seeds must be at least 1"),
    "run: --repeat 0": (["run", "--repeat", "0"], "--repeat must be at least 1"),
    "run: output folder cannot be written": (
        ["run", "--out", "{tmp}/a-file/sub"], "cannot write to output folder"),
    "run: --squad-dir does not exist": (
        ["run", "--squad-dir", "{tmp}/no-such-dir"], "no such folder"),
    "run: option value of the wrong type": (
        ["run", "--seeds", "two"], "invalid int value: 'two'"),
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
}

# Bad data files given to ``qa-bench run`` (train file; the validation file is good). These are
# found in the pipeline's data stage, which passes bad input up to the CLI (exit 2).
RUN_DATA_CASES: dict[str, tuple[str, str]] = {
    "run: answer not at its answer_start": (
        "data_answer_not_at_start.json", "question 'ada-shifted': answer '1815' is not at"),
    "run: empty context": ("data_empty_context.json", "has an empty or missing context"),
    "run: empty question": ("data_empty_question.json", "question 'ada-2' is empty"),
    "run: duplicate question ids": ("data_duplicate_ids.json", "duplicate question id 'ada-1'"),
    "run: missing question id": ("data_missing_id.json", "a question has no id"),
    "run: malformed JSON data": ("data_malformed.json", "malformed JSON"),
    "run: non-UTF-8 data": ("data_not_utf8.json", "not UTF-8"),
}

# Option values checked before any work (they carry a missing validation file so that a
# regression fails fast in the data stage instead of training).
EARLY_OPTION_CASES: dict[str, tuple[list[str], str]] = {
    "run: --replicas 0": (["run", "--replicas", "0"], "--replicas must be at least 1"),
    "run: negative --entry-timeout": (["run", "--entry-timeout", "-5"], "--entry-timeout"),
    "run: --nnodes 2 without a rendezvous": (["run", "--nnodes", "2"],
                                             "needs torch.rdzv_endpoint"),
    "run: --node-rank out of range": (["run", "--nnodes", "2", "--node-rank", "2",
                                       "--rdzv-endpoint", "h:1"],
                                      "torch.node_rank = 2: must be in 0 .. 1"),
}
NO_RUN = ["--set", "data.train_file={bad}/data_ok.json",
          "--set", "data.validation_file={tmp}/missing-validation.json"]

# ``qa-bench run`` with a squad dir that exists but holds no dev file (also a data-stage error).
RUN_SQUAD_DIR_CASE = ("run: --squad-dir without the dev file", "dev-v1.1.json not found")

# Every data file of the corpus through the loader both front ends use.
LOADER_CASES: dict[str, tuple[str, str]] = {
    "loader: malformed JSON": ("data_malformed.json", "malformed JSON at line"),
    "loader: not SQuAD layout": ("data_not_squad_layout.json", "not SQuAD layout"),
    "loader: non-UTF-8 bytes": ("data_not_utf8.json", "not UTF-8 text"),
    "loader: answer not at answer_start": (
        "data_answer_not_at_start.json", "question 'ada-shifted': answer '1815' is not at "
                                         "answer_start 5"),
    "loader: empty context": ("data_empty_context.json", "has an empty or missing context"),
    "loader: empty question": ("data_empty_question.json", "question 'ada-2' is empty"),
    "loader: duplicate id": ("data_duplicate_ids.json", "duplicate question id 'ada-1'"),
    "loader: missing id": ("data_missing_id.json", "a question has no id"),
    "loader: unanswerable question in a v1 dataset": (
        "data_unanswerable_in_v1.json", "'ada-none' is unanswerable but the dataset is not"),
}

# Baseline files: through ``load_baseline_file`` and through ``qa-bench report --baselines``.
BASELINE_CASES: dict[str, tuple[str, str]] = {
    "baseline: bad JSON": ("baseline_bad_json.json", "not valid JSON"),
    "baseline: missing field": ("baseline_missing_field.json",
                                "metrics.f1: missing field 'tolerance'"),
    "baseline: negative tolerance": ("baseline_negative_tolerance.json",
                                     "tolerance must be a number >= 0, got -0.5"),
    "baseline: unknown metric": ("baseline_unknown_metric.json",
                                 "unknown metric 'f2' (did you mean 'f1'?)"),
}

# Through a real ``python -m qa.frontends.cli`` process: nothing but one line reaches the terminal.
SUBPROCESS_CASES = ["evaluate: malformed JSON data", "evaluate: predictions are a list",
                    "run: unknown profile", "run: --set key typo",
                    "run: output folder cannot be written"]

# The pytest front end's options: ``pytest benchmarks ...``.
PYTEST_CASES: dict[str, tuple[list[str], str]] = {
    "pytest: unknown profile": (["--profile", "smok"], "did you mean 'smoke'?"),
    "pytest: --set key typo": (["--set", "train.learnig_rate=1"],
                               "did you mean 'learning_rate'?"),
}

LONG_QUESTION_CASE = "preprocessing: question longer than max_length"
STRIDE_CASE = "preprocessing: doc_stride leaves no room for the question"

ALL_CASES = [*CLI_CASES, *RUN_DATA_CASES, *EARLY_OPTION_CASES, RUN_SQUAD_DIR_CASE[0], *LOADER_CASES,
             *BASELINE_CASES, *(f"{n} (subprocess)" for n in SUBPROCESS_CASES), *PYTEST_CASES,
             LONG_QUESTION_CASE, STRIDE_CASE]

# Guard rails for ``run`` cases: if a check ever stopped catching its input, the run would be
# tiny and stay inside tmp_path instead of training the smoke profile in the checkout.
RUN_GUARD = ["--out", "{tmp}/runs/out", "--baselines", "{tmp}/baselines", "--no-progress",
             "--entry-timeout", "120", "--set", "train.max_steps=2",
             "--set", "data.synthetic_train_contexts=4",
             "--set", "data.synthetic_validation_contexts=2", "--set", "train.compile_eval=false"]

# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, offline, with the cache there too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.delenv("QA_BENCH_SQUAD_DIR", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (tmp_path / "a-file").write_text("a regular file, not a folder\n", encoding="utf-8")
    return tmp_path


def fill(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{bad}", str(BAD)).replace("{tmp}", str(tmp)) for a in args]


def cli_argv(args: list[str], tmp: Path) -> list[str]:
    if args[0] == "run":  # the case's own options come last, so they win over the guard
        args = ["run", *RUN_GUARD, *args[1:]]
    return fill(args, tmp)


def assert_one_clear_line(rc: int, out: str, err: str, fragment: str) -> None:
    """One line says what is wrong, the last on stderr; before it only the progress lines
    (``qa.progress``) of the run that had started (bad data is found in its data stage)."""
    assert "Traceback" not in out + err
    lines = err.splitlines()
    progress_lines = [line for line in lines if re.match(PROGRESS_LINE, line)]
    assert lines[:len(progress_lines)] == progress_lines, lines  # the error comes last
    lines = lines[len(progress_lines):]
    assert rc == 2, f"exit code {rc}; stderr: {err!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith(PREFIX), lines[0]
    assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert out == ""


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def subprocess_env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PYTHONWARNINGS": "default"}
    env.pop("QA_BENCH_SQUAD_DIR", None)
    return env


# ------------------------------------------------------------------------------ tests


def test_corpus_is_complete() -> None:
    assert len(ALL_CASES) == len(set(ALL_CASES))
    used = {f for f, _ in [*RUN_DATA_CASES.values(), *LOADER_CASES.values(),
                           *BASELINE_CASES.values()]}
    used |= {Path(a).name for args, _ in CLI_CASES.values() for a in args if "{bad}" in a}
    on_disk = {p.name for p in BAD.iterdir() if p.suffix == ".json"}
    assert used <= on_disk
    # Every bad file is used; the good ones are the counterparts a case needs.
    assert on_disk - used <= {"data_ok.json", "predictions_ok.json", "baseline_ok.json",
                              "data_question_too_long.json", "na_probs_ok.json"}
    assert set(SUBPROCESS_CASES) <= set(CLI_CASES)


def test_good_counterparts_are_accepted(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus's good files pass, so each bad file differs from a good one in its defect."""
    rc, out, err = run_main(fill(["evaluate", "{bad}/data_ok.json", "{bad}/predictions_ok.json"],
                                 sandbox), capsys)
    assert (rc, err) == (0, "")
    assert '"exact_match": 100.0' in out
    rc, out, err = run_main(fill(["evaluate", "--version-2", "{bad}/data_ok.json",
                                  "{bad}/predictions_ok.json", "--na-prob-file",
                                  "{bad}/na_probs_ok.json"], sandbox), capsys)
    assert (rc, err) == (0, "")
    assert '"best_f1": 100.0' in out
    assert len(read_squad_json(BAD / "data_ok.json", version_2=False)) == 3
    assert load_baseline_file(BAD / "baseline_ok.json").metrics["f1"].tolerance == 1.0


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_case(name: str, sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args, fragment = CLI_CASES[name]
    rc, out, err = run_main(cli_argv(args, sandbox), capsys)
    assert_one_clear_line(rc, out, err, fragment)
    assert not (sandbox / "runs").exists(), "bad input must be caught before any work"


@pytest.mark.parametrize("name", list(RUN_DATA_CASES))
def test_run_with_bad_data_file(name: str, sandbox: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    bad_file, fragment = RUN_DATA_CASES[name]
    args = ["run", "--set", f"data.train_file={{bad}}/{bad_file}",
            "--set", "data.validation_file={bad}/data_ok.json"]
    rc, out, err = run_main(cli_argv(args, sandbox), capsys)
    assert_one_clear_line(rc, out, err, fragment)
    results = [p for p in (sandbox / "runs").rglob("*.json") if p.name != "manifest.json"]
    assert not results, "no result for an entry with bad data"


@pytest.mark.parametrize("name", list(EARLY_OPTION_CASES))
def test_option_checked_before_running(name: str, sandbox: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    args, fragment = EARLY_OPTION_CASES[name]
    rc, out, err = run_main(cli_argv([*args, *NO_RUN], sandbox), capsys)
    assert_one_clear_line(rc, out, err, fragment)


def test_run_with_squad_dir_lacking_dev_file(sandbox: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    empty = sandbox / "squad"
    empty.mkdir()
    args = ["run", "--datasets", "squad", "--squad-dir", str(empty)]
    rc, out, err = run_main(cli_argv(args, sandbox), capsys)
    assert_one_clear_line(rc, out, err, RUN_SQUAD_DIR_CASE[1])


@pytest.mark.parametrize("name", list(LOADER_CASES))
def test_loader_case(name: str) -> None:
    bad_file, fragment = LOADER_CASES[name]
    with pytest.raises(QABenchError) as info:
        read_squad_json(BAD / bad_file, version_2=False)
    message = str(info.value)
    assert fragment in message
    assert bad_file in message  # names the file, whichever of train/validation it is
    assert "\n" not in message


@pytest.mark.parametrize("name", list(BASELINE_CASES))
def test_baseline_file_case(name: str) -> None:
    bad_file, fragment = BASELINE_CASES[name]
    with pytest.raises(QABenchError) as info:
        load_baseline_file(BAD / bad_file)
    message = str(info.value)
    assert fragment in message and bad_file in message
    assert "\n" not in message


@pytest.mark.parametrize("name", list(BASELINE_CASES))
def test_baseline_case_through_report_cli(name: str, sandbox: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``qa-bench report RUN --baselines DIR`` re-judges a run against a bad baseline file."""
    bad_file, fragment = BASELINE_CASES[name]
    key = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}
    run_dir = sandbox / "runs" / "r1"
    save_result(RunResult(key=key, config=RunConfig().to_dict(),
                          metrics={"exact_match": 70.0, "f1": 75.0}, timings={}), run_dir)
    root = sandbox / "baselines"
    (root / "torch" / "cpu").mkdir(parents=True)
    shutil.copy(BAD / bad_file, root / "torch" / "cpu" / "tiny-roformer__synthetic.json")
    rc, out, err = run_main(["report", str(run_dir), "--baselines", str(root)], capsys)
    assert_one_clear_line(rc, out, err, fragment)


@pytest.mark.e2e
@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_cli_case_in_a_subprocess(name: str, sandbox: Path) -> None:
    args, fragment = CLI_CASES[name]
    proc = subprocess.run([sys.executable, "-m", "qa.frontends.cli", *cli_argv(args, sandbox)],
                          capture_output=True, text=True, cwd=sandbox, env=subprocess_env(sandbox),
                          timeout=120)
    assert_one_clear_line(proc.returncode, proc.stdout, proc.stderr, fragment)


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(PYTEST_CASES))
def test_pytest_option_case(name: str, sandbox: Path) -> None:
    args, fragment = PYTEST_CASES[name]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider",
         "--out", str(sandbox / "runs" / "out"), *args],
        capture_output=True, text=True, cwd=REPO, env=subprocess_env(sandbox), timeout=120)
    output = proc.stdout + proc.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    assert len(lines) == 1, lines
    assert PREFIX in lines[0] and fragment in lines[0]


def test_question_longer_than_max_length(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """An over-long question is cut to fit (with a warning), never a tokenizer crash."""
    from qa.task.models import train_wordpiece
    from qa.task.preprocessing import prepare_train_features, prepare_validation_features

    records = read_squad_json(BAD / "data_question_too_long.json", version_2=False)
    tokenizer = train_wordpiece([r["context"] for r in records] + [r["question"] for r in records],
                                vocab_size=300, cache_dir=tmp_path)
    max_length, stride = 64, 16
    long_question = records[0]["question"]
    assert len(tokenizer(long_question)["input_ids"]) > 4 * max_length
    batch = {key: [r[key] for r in records] for key in records[0]}

    with caplog.at_level(logging.WARNING, logger="qa"):
        train = prepare_train_features(batch, tokenizer, max_length=max_length,
                                       doc_stride=stride)
        validation = prepare_validation_features(batch, tokenizer, max_length=max_length,
                                                 doc_stride=stride)
    assert "truncated" in caplog.text
    assert all(len(ids) == max_length for ids in train["input_ids"])
    assert all(len(ids) == max_length for ids in validation["input_ids"])
    assert set(validation["example_id"]) == {"ada-long", "ada-2"}
    # The long question's answer is still labelled in some window, on the right tokens.
    answers = {tokenizer.decode(ids[s:e + 1]).strip()
               for ids, s, e in zip(train["input_ids"], train["start_positions"],
                                    train["end_positions"], strict=True) if s > 0}
    assert {"london", "1815"} <= answers


def test_doc_stride_leaving_no_room_is_a_clear_error(tmp_path: Path) -> None:
    from qa.task.models import train_wordpiece
    from qa.task.preprocessing import prepare_train_features

    records = read_squad_json(BAD / "data_question_too_long.json", version_2=False)
    tokenizer = train_wordpiece([r["context"] for r in records], vocab_size=200,
                                cache_dir=tmp_path)
    batch = {key: [r[key] for r in records] for key in records[0]}
    with pytest.raises(QABenchError, match="doc_stride=60 leaves no room"):
        prepare_train_features(batch, tokenizer, max_length=64, doc_stride=60)
