"""Baselines are never replaced silently (``qa.gating.baseline_guard``): an unfit run is refused
with
the file left byte-identical, a forced or normal update keeps the old file in
``.previous.jsonl`` and shows old → new, and both writers (``run --update-baselines``, pytest
through ``qa.run.runner``, and ``qa-bench baseline``) go through the guard."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers.gating import IPU_KEY, KEY, make_result

from qa.frontends.cli import main
from qa.gating.baseline_build import update_baseline
from qa.gating.baseline_guard import _gate_reasons, archive_path, guarded_update
from qa.gating.baselines import baseline_path, load_baseline
from qa.gating.verdicts import Verdict
from qa.results.store import RunResult
from qa.run import profiles
from qa.run.runner import RunOptions, run_entries

GOOD = dict(em=99.47, f1=99.6)
BROKEN = dict(em=1.67, f1=5.0)
FAILED = make_result(status="failed")
OTHER_KEY = {**KEY, "model": "other-model"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A baselines folder holding a good baseline (EM 99.47) of KEY."""
    update_baseline(tmp_path / "baselines", [make_result(**GOOD)])
    return tmp_path / "baselines"


def test_a_run_that_fails_its_gates_is_refused_and_the_file_is_untouched(root: Path) -> None:
    path = baseline_path(root, KEY)
    before = _sha(path)
    outcome = guarded_update(root, [make_result(**BROKEN)], force_flag="--force-update-baselines")
    assert outcome.written == []
    (line,) = outcome.refused
    assert line.startswith("baseline NOT written for torch/cpu/tiny-roformer__synthetic: the "
                           "run failed its gates (exact_match 1.67 vs 99.47 ± 1.00, f1 5.00 vs "
                           "99.60 ± 1.00) — kept the baseline of 2024-05-01 (n 1); pass "
                           "--force-update-baselines to replace it anyway")
    assert _sha(path) == before and not archive_path(path).exists()
    # The guard is what stopped it: the unguarded primitive writes the same input.
    update_baseline(root, [make_result(**BROKEN)])
    assert load_baseline(root, KEY).metrics["exact_match"].value == 1.67


def test_a_forced_write_keeps_the_old_baseline_and_says_old_to_new(root: Path) -> None:
    path = baseline_path(root, KEY)
    old = json.loads(path.read_text())
    outcome = guarded_update(root, [make_result(**BROKEN)], force=True, force_flag="--force")
    assert outcome.written == [path] and outcome.refused == []
    assert load_baseline(root, KEY).metrics["exact_match"].value == 1.67
    text = "\n".join(outcome.lines)
    assert "baseline REPLACED on purpose (--force) for torch/cpu/tiny-roformer__synthetic " \
           "although the run failed its gates (exact_match 1.67 vs 99.47" in text
    assert "exact_match 99.47 → 1.67 (tolerance 1.00 → 1.00, n 1 → 1)" in text
    assert "train_samples_per_s 100 → 100 (tolerance 8 % → 8 %) (this hardware)" in text
    (record,) = [json.loads(x) for x in archive_path(path).read_text().splitlines()]
    assert record["baseline"] == old
    assert record["replaced_by"]["forced"] is True
    assert record["replaced_by"]["commit"] == "abc123"
    assert "failed its gates" in record["replaced_by"]["reason"]
    # The archive is never taken for a baseline by anything that globs the folder.
    assert sorted(root.rglob("*.json")) == [path]


def test_a_normal_update_archives_the_previous_and_shows_the_diff(root: Path) -> None:
    path = baseline_path(root, KEY)
    outcome = guarded_update(root, [make_result(em=99.0, f1=99.5, sps=104.0)])
    assert outcome.written == [path]
    assert outcome.lines[0] == f"baseline written: {path}"
    assert "  exact_match 99.47 → 99.00 (tolerance 1.00 → 1.00, n 1 → 1)" in outcome.lines
    guarded_update(root, [make_result(em=99.2, f1=99.5, sps=104.0)])
    records = [json.loads(x) for x in archive_path(path).read_text().splitlines()]
    assert [r["baseline"]["metrics"]["exact_match"]["value"] for r in records] == [99.47, 99.0]
    assert [r["replaced_by"]["forced"] for r in records] == [False, False]


def test_added_and_removed_metrics_are_named(tmp_path: Path) -> None:
    outcome = guarded_update(tmp_path, [make_result(compile_cold=None)])
    assert "  exact_match added: 80.00 (tolerance 1.00, n 1)" in outcome.lines
    outcome = guarded_update(tmp_path, [make_result()])
    assert "  compile_s added: 10 (tolerance 25 %) (this hardware)" in outcome.lines
    # A gated metric the run no longer measures fails its gate: removing it takes the option.
    assert guarded_update(tmp_path, [make_result(compile_cold=None)]).refused
    outcome = guarded_update(tmp_path, [make_result(compile_cold=None)], force=True)
    assert "  compile_s removed (was 10) (this hardware)" in outcome.lines


@pytest.mark.parametrize(("candidate", "why"), [
    (make_result(status="failed"), "result failed in stage train: loss is NaN"),
    (make_result(status="timeout"), "result timeout"),
    (make_result(environment={"injected_fault": "label_shift"}),
     "result carries an injected fault (label_shift)"),
])
def test_failed_and_faulted_results_are_refused(root: Path, candidate: RunResult,
                                                why: str) -> None:
    path = baseline_path(root, KEY)
    before = _sha(path)
    outcome = guarded_update(root, [make_result(**GOOD), candidate])
    assert outcome.written == [] and why in outcome.refused[0]
    assert _sha(path) == before
    forced = guarded_update(root, [make_result(**GOOD), candidate], force=True)
    assert forced.written == [path]
    assert f"left out (never pooled): {why}" in "\n".join(forced.lines)
    assert load_baseline(root, KEY).metrics["exact_match"].n == 1  # the bad one never pooled


def test_an_incomplete_run_is_refused(root: Path) -> None:
    outcome = guarded_update(root, [make_result(**GOOD)], incomplete=True)
    assert outcome.written == []
    assert "the run is incomplete" in outcome.refused[0]


def test_emulated_results_never_replace_a_real_baseline(tmp_path: Path) -> None:
    real = make_result(key=dict(IPU_KEY), hardware={"kind": "ipu", "pod": "pod16",
                                                    "emulated": False})
    update_baseline(tmp_path, [real])
    before = _sha(baseline_path(tmp_path, IPU_KEY))
    emulated = make_result(key=dict(IPU_KEY), hardware={"kind": "ipu", "pod": "pod16",
                                                        "emulated": True})
    outcome = guarded_update(tmp_path, [emulated])
    assert outcome.written == []
    assert "emulated hardware and the baseline was measured on real hardware" \
        in outcome.refused[0]
    assert _sha(baseline_path(tmp_path, IPU_KEY)) == before


def test_not_comparable_verdicts_block_like_failures() -> None:
    verdict = Verdict("e", "exact_match", 80.0, 80.0, 0.0, 1.0, "points", "not_comparable",
                      message="dataset fingerprint fp2 vs fp1")
    assert _gate_reasons([verdict]) == [
        "it is not comparable with the baseline (dataset fingerprint fp2 vs fp1)"]


def test_one_unfit_entry_keeps_every_baseline_of_the_run(root: Path, tmp_path: Path) -> None:
    outcome = guarded_update(root, [make_result(**BROKEN), make_result(key=dict(OTHER_KEY))])
    assert outcome.written == [] and not baseline_path(root, OTHER_KEY).exists()
    assert "other-model__synthetic: fit, but other entries" in outcome.refused[1]


# ----------------------------------------------------------------------- qa-bench baseline


def _run_dir(folder: Path, *results: RunResult) -> Path:
    for i, result in enumerate(results):
        path = folder / "results" / f"r{i}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_dict()))
    return folder


def test_baseline_command_refuses_a_folder_with_a_failed_entry(tmp_path: Path, capsys) -> None:
    failed = make_result(key=dict(OTHER_KEY), status="failed")
    run = _run_dir(tmp_path / "run", make_result(**GOOD), failed)
    out = tmp_path / "b"
    assert main(["baseline", str(run), "--baselines", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("qa-bench: error: ")
    assert (f"baseline NOT written for torch/cpu/other-model__synthetic: no finished, "
            f"fault-free result to build it from (result failed in stage train: loss is NaN "
            f"in {run})") in err
    assert not out.exists()

    assert main(["baseline", str(run), "--baselines", str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    assert f"baseline written: {baseline_path(out, KEY)}" in printed
    assert "baseline NOT written for torch/cpu/other-model__synthetic" in printed
    assert sorted(out.rglob("*.json")) == [baseline_path(out, KEY)]


def test_baseline_command_never_pools_a_regression_into_a_good_baseline(
        root: Path, tmp_path: Path, capsys) -> None:
    good, broken = (_run_dir(tmp_path / name, make_result(**em))
                    for name, em in (("good", GOOD), ("broken", BROKEN)))
    before = _sha(baseline_path(root, KEY))
    assert main(["baseline", str(good), str(broken), "--baselines", str(root)]) == 2
    assert "the run failed its gates (exact_match 1.67 vs 99.47" in capsys.readouterr().err
    assert _sha(baseline_path(root, KEY)) == before
    assert main(["baseline", str(good), str(broken), "--baselines", str(root), "--force"]) == 0
    printed = capsys.readouterr().out
    assert "exact_match 99.47 → 50.57 (tolerance 1.00 → 1.00, n 1 → 2)" in printed
    assert len(archive_path(baseline_path(root, KEY)).read_text().splitlines()) == 1


# ----------------------------------------------------------------- run --update-baselines


@pytest.fixture
def smoke_entry() -> list[profiles.Entry]:
    entries = profiles.expand(profiles.load_profile("smoke"))
    assert [e.id for e in entries][:1] == ["torch/cpu/tiny-roformer__synthetic"]
    return entries[:1]


@pytest.mark.parametrize("force", [False, True])
def test_a_run_that_fails_its_gates_writes_no_baseline_unless_forced(
        root: Path, tmp_path: Path, monkeypatch, smoke_entry, force: bool) -> None:
    # Training is replaced by a finished broken result; everything after it is the real run.
    monkeypatch.setattr("qa.run.runner.run_one", lambda config, options: make_result(**BROKEN))
    path = baseline_path(root, KEY)
    before = _sha(path)
    options = RunOptions(out_dir=tmp_path / "run", baselines_root=root, progress=False,
                         update_baselines=True, force_update_baselines=force)
    summary = run_entries(smoke_entry, options)
    # Judged against the baseline as it was: the run fails whether or not it was written.
    assert summary.outcome.code == 1
    assert {v.baseline for v in summary.verdicts if v.metric == "exact_match"} == {99.47}
    report = (tmp_path / "run" / "report.md").read_text()
    if force:
        assert "baseline REPLACED on purpose (--force-update-baselines)" in summary.notes[0]
        assert "exact_match 99.47 → 1.67" in report
        assert archive_path(path).exists()
    else:
        assert summary.notes[0].startswith("baseline NOT written for torch/cpu/tiny-roformer__"
                                           "synthetic: the run failed its gates")
        assert "baseline NOT written" in report
        assert _sha(path) == before


def test_a_busy_run_writes_no_timings_and_says_so(tmp_path: Path) -> None:
    busy = {"cores": 2, "other_cpu_share": 0.7, "steal_share": 0.0, "window_s": 800.0}
    result = make_result()
    result.timings["contention"] = busy
    outcome = guarded_update(tmp_path, [result])
    assert "  timings: none written for this hardware (every run was timed on a busy machine " \
           "or has no fingerprint); the sections of other hardware are kept" in outcome.lines
    assert load_baseline(tmp_path, KEY).timings == ()


def test_pool_adds_runs_of_another_machine_to_the_baseline(root: Path, tmp_path: Path,
                                                           capsys) -> None:
    """``baseline --pool``: runs of the unchanged tree on another CPU model join the runs the
    baseline was measured from; a run under the current gate still needs ``--force``; the old
    file is archived and the diff shown."""
    old = load_baseline(root, KEY)
    other = _run_dir(tmp_path / "other", make_result(em=old.metrics["exact_match"].value - 3.0,
                                                     f1=99.0))
    assert main(["baseline", str(other), "--baselines", str(root), "--pool"]) == 2
    assert "failed its gates" in capsys.readouterr().err
    assert main(["baseline", str(other), "--baselines", str(root), "--pool", "--force"]) == 0
    printed = capsys.readouterr().out
    new = load_baseline(root, KEY)
    em_old, em_new = old.metrics["exact_match"], new.metrics["exact_match"]
    assert em_new.n == (em_old.n or 1) + 1
    assert em_new.min == pytest.approx(em_old.value - 3.0)
    assert em_new.value < em_old.value and em_new.effective_tolerance() > \
        em_old.effective_tolerance()
    assert new.provenance["pooled_with"]["date"] == old.provenance["date"]
    assert archive_path(baseline_path(root, KEY)).exists()
    assert f"n {em_old.n} → {em_new.n}" in printed
    # The same runs never count twice.
    before = _sha(baseline_path(root, KEY))
    assert main(["baseline", str(other), "--baselines", str(root), "--pool", "--force"]) == 2
    assert "already pooled into this baseline" in capsys.readouterr().err
    assert _sha(baseline_path(root, KEY)) == before
