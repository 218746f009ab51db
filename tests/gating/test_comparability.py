"""Like against like (issue 21 item 3): a gate judges a run only against a baseline measured on
the same workload; judged settings that differ are judged with a caveat.

The runs are real ``RunResult`` objects with the config the smoke profile expands to (plus the
``--set`` a user would pass) and the dataset fingerprints that config really produces
(``1b3e6099479dadbb`` for the smoke data; ``303c2a85f3387b36`` for 120 training contexts, as
computed by ``qa.task.data`` from the generated files); the baseline is the committed one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qa.config.schema import RunConfig, apply_overrides
from qa.config.sections import section_classes
from qa.errors import QABenchError
from qa.gating import comparability
from qa.gating.baseline_build import baseline_from_results
from qa.gating.baselines import load_baseline, load_baseline_file
from qa.gating.comparability import differences, series_key, summarise, workload
from qa.gating.verdicts import VERDICTS, gate
from qa.reporting.merge import Judged
from qa.reporting.report import render_markdown, summary_counts
from qa.results.store import RunResult, short_commit
from qa.run.profiles import expand, load_profile

REPO = Path(__file__).resolve().parents[2]
KEY = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}
SMOKE_DATA = "1b3e6099479dadbb"
CUSTOM_DATA = "303c2a85f3387b36"  # data.synthetic_train_contexts=120
CUSTOM = ["data.synthetic_train_contexts=120", "train.max_steps=30"]


def smoke_result(overrides: list[str] | None = None, em: float = 99.5,
                 fingerprint: str = SMOKE_DATA, **fields: Any) -> RunResult:
    """A finished smoke run (one seed) of the config ``qa-bench run --set ...`` would use."""
    config = apply_overrides(expand(load_profile("smoke"))[0].config, overrides or [])
    raw: dict[str, Any] = {
        "key": dict(KEY), "config": config.to_dict(),
        "metrics": {"exact_match": em, "f1": em + 0.1},
        "timings": {"train_samples_per_s": 150.0, "eval_samples_per_s": 180.0},
        "hardware": {"kind": "cpu", "cpu": "Test CPU", "cpu_id": "T/1/1/1", "cpu_flags": "f",
                     "cores": 2, "threads": 2, "torch_build": "cpu"},
        "environment": {"git_commit": "ef07e2e" + "0" * 33},
        "dataset_fingerprint": fingerprint, "seeds": [{"seed": 42, "exact_match": em}],
        "finished_at": "2026-12-01T03:00:00+00:00"}
    raw.update(fields)
    return RunResult(**raw)


@pytest.fixture
def smoke_baseline() -> Any:
    return load_baseline(REPO / "baselines", KEY)


def test_not_comparable_is_a_verdict_status() -> None:
    assert "not_comparable" in VERDICTS
    assert summary_counts([])["not_comparable"] == 0


def test_custom_profile_with_other_data_is_not_comparable_never_a_fail(smoke_baseline) -> None:
    """Issue 21's row: 120 contexts, 30 steps (EM 40) against the smoke baseline was judged ❌
    with no caveat; now every metric is "not comparable", naming the data and the fields."""
    result = smoke_result(CUSTOM, em=40.0, fingerprint=CUSTOM_DATA)
    verdicts = gate(result, smoke_baseline)
    assert verdicts and {v.status for v in verdicts} == {"not_comparable"}
    assert not any(v.failed for v in verdicts)
    em = next(v for v in verdicts if v.metric == "exact_match")
    expected = smoke_baseline.metrics["exact_match"].value  # the committed baseline's EM
    assert (em.value, em.baseline, em.delta, em.tolerance) == (40.0, expected, None, None)
    assert em.message == (
        "not comparable — dataset fingerprint: 1b3e6099479dadbb -> 303c2a85f3387b36; "
        "data.synthetic_train_contexts: 1000 -> 120; train.max_steps: -1 -> 30")
    timing = next(v for v in verdicts if v.metric == "train_samples_per_s")
    assert timing.baseline == 156.7397  # the baseline's number is shown beside the run's
    # Judged (merge/run): not a failure, and counted apart in the report's summary.
    judged = Judged([result], verdicts, [], Path("report.md"))
    assert judged.outcome.code == 5  # not a failure, and not green: nothing was judged
    text = " ".join(render_markdown([result], verdicts).split())
    assert f"{len(verdicts)} — not comparable" in text
    assert (f"| torch/cpu/tiny-roformer__synthetic | exact_match | 40.00 | {expected:.2f} | — | "
            "— | "
            "— not comparable (dataset fingerprint: 1b3e6099479dadbb -> 303c2a85f3387b36; "
            "data.synthetic_train_contexts: 1000 -> 120; train.max_steps: -1 -> 30) |") in text


def test_the_same_data_with_another_workload_is_not_comparable(smoke_baseline) -> None:
    verdicts = gate(smoke_result(["train.num_train_epochs=1"]), smoke_baseline)
    assert {v.status for v in verdicts} == {"not_comparable"}
    assert verdicts[0].message == "not comparable — train.num_train_epochs: 4.0 -> 1.0"


def test_other_judged_settings_are_judged_with_the_caveat(smoke_baseline) -> None:
    """``--set train.learning_rate=0`` (the README's broken run, EM 1.67) still fails its gates,
    and says it was judged with other settings."""
    verdicts = {v.metric: v for v in gate(smoke_result(["train.learning_rate=0"], em=1.67),
                                          smoke_baseline)}
    assert verdicts["exact_match"].status == "fail"
    assert verdicts["exact_match"].note == ("judged with other settings: "
                                            "train.learning_rate 0.001 -> 0.0")
    text = " ".join(render_markdown([smoke_result(["train.learning_rate=0"], em=1.67)],
                                    list(verdicts.values())).split())
    assert "❌ fail (worse than the baseline beyond tolerance) (judged with other settings: " \
           "train.learning_rate 0.001 -> 0.0)" in text


def test_a_seed_the_baseline_pooled_is_no_caveat(smoke_baseline) -> None:
    assert all(not v.note for v in gate(smoke_result(["train.seed=44"]), smoke_baseline))
    other = gate(smoke_result(["train.seed=7"]), smoke_baseline)
    assert other[0].note == "judged with other settings: train.seed 42, 43, 44, 45, 46 -> 7"


def test_the_committed_smoke_baseline_judges_an_unchanged_smoke_run(smoke_baseline) -> None:
    """Pins the migration (and the profile): the smoke profile as it stands is the workload the
    committed baseline records. A change to smoke.toml's workload fails here — re-record the
    baseline (``--update-baselines``) rather than gate a different workload against it. A field
    added since the baseline was recorded counts at its default (as the gate counts it), so a
    new field left at its default in smoke.toml is no change; set otherwise, it fails here."""
    added = {k: v for k, v in workload(RunConfig().to_dict()).items()
             if k not in smoke_baseline.provenance["workload"]}
    assert {**added, **smoke_baseline.provenance["workload"]} == workload(smoke_result().config)
    verdicts = {v.metric: v for v in gate(smoke_result(), smoke_baseline)}
    assert verdicts["exact_match"].status == "pass" and verdicts["f1"].status == "pass"
    assert not any(v.note for v in verdicts.values())
    assert "not_comparable" not in {v.status for v in verdicts.values()}


def _legacy(tmp_path: Path) -> Any:
    raw = json.loads((REPO / "baselines/torch/cpu/tiny-roformer__synthetic.json").read_text())
    for name in ("workload", "settings", "workload_source"):
        raw["provenance"].pop(name)
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(raw))
    return load_baseline_file(path)


def test_a_legacy_baseline_is_compared_by_dataset_fingerprint_only(tmp_path: Path) -> None:
    legacy = _legacy(tmp_path)
    other_data = gate(smoke_result(CUSTOM, em=40.0, fingerprint=CUSTOM_DATA), legacy)
    assert {v.status for v in other_data} == {"not_comparable"}
    assert other_data[0].message == ("not comparable — dataset fingerprint: 1b3e6099479dadbb "
                                     "-> 303c2a85f3387b36")
    # Same data, another workload: a legacy baseline cannot tell; judged, and it says so.
    same_data = {v.metric: v for v in gate(smoke_result(["train.max_steps=30"], em=40.0),
                                           legacy)}
    assert same_data["exact_match"].status == "fail"
    assert same_data["exact_match"].note == comparability.LEGACY_NOTE


def test_a_field_added_after_the_baseline_counts_at_its_default(tmp_path: Path) -> None:
    """A new config field must not make every committed baseline incomparable: absent from the
    recorded workload, it stands at its default (and a run that changes it is apart)."""
    raw = json.loads((REPO / "baselines/torch/cpu/tiny-roformer__synthetic.json").read_text())
    del raw["provenance"]["workload"]["train.eval_timing_rounds"]
    path = tmp_path / "older.json"
    path.write_text(json.dumps(raw))
    older = load_baseline_file(path)
    assert {v.status for v in gate(smoke_result(), older)} >= {"pass"}
    apart = gate(smoke_result(["train.eval_timing_rounds=5"]), older)
    assert apart[0].message == "not comparable — train.eval_timing_rounds: 2 -> 5"


def test_a_failed_run_still_fails_against_a_baseline_of_other_work(smoke_baseline) -> None:
    result = smoke_result(CUSTOM, fingerprint=CUSTOM_DATA, status="failed", metrics={},
                          failure={"stage": "train", "cause": "x"})
    assert {v.status for v in gate(result, smoke_baseline)} == {"fail"}


def test_written_baselines_record_the_workload_and_refuse_to_pool_other_work() -> None:
    data = baseline_from_results([smoke_result(), smoke_result(["train.seed=43"])])
    provenance = data["provenance"]
    assert provenance["workload"] == workload(smoke_result().config)
    assert provenance["dataset_fingerprint"] == SMOKE_DATA
    assert provenance["settings"]["train.seed"] == [42, 43]
    with pytest.raises(QABenchError, match="cannot pool runs of different workloads into one "
                       "baseline: dataset fingerprint: 1b3e6099479dadbb -> 303c2a85f3387b36; "
                       "data.synthetic_train_contexts: 1000 -> 120"):
        baseline_from_results([smoke_result(), smoke_result(CUSTOM, fingerprint=CUSTOM_DATA)])


def test_differences_name_each_field_and_summarise_counts_the_rest() -> None:
    a = {"data.x": 1, "dataset_fingerprint": "aa", "train.y": "b"}
    b = {"data.x": 2, "dataset_fingerprint": "bb", "train.z": None}
    lines = differences(a, b)
    assert lines == ["dataset fingerprint: aa -> bb", "data.x: 1 -> 2", "train.y: b -> <unset>",
                     "train.z: <unset> -> None"]
    assert summarise(lines, 2) == "dataset fingerprint: aa -> bb; data.x: 1 -> 2 and 2 more"
    assert differences(a, dict(a)) == []


def test_every_config_field_is_workload_unless_listed_as_a_judged_setting() -> None:
    """Default-deny: a field nobody classified is workload (safe: not comparable)."""
    config = smoke_result().config
    flat = comparability.flatten(config)
    judged = set(comparability.JUDGED_SETTINGS)
    assert judged <= set(flat)  # every listed setting exists
    where = ("hardware", *section_classes())  # where it ran, and each backend's own settings
    assert set(workload(config)) == {k for k in flat if k not in judged
                                     and k.split(".")[0] not in where} - {
        "data.squad_dir", "data.train_file", "data.validation_file", "model.cache_dir"}


def test_series_key_is_entry_full_config_and_data() -> None:
    nightly, again = smoke_result(), smoke_result(em=90.0)
    assert series_key(nightly) == series_key(again)
    # Any --set is a series of its own, a judged setting included; so is other data.
    assert series_key(smoke_result(["train.learning_rate=0"])) != series_key(nightly)
    assert series_key(smoke_result(fingerprint=CUSTOM_DATA)) != series_key(nightly)
    # Hardware and local paths are no part of it (as for compare).
    assert series_key(smoke_result(["hardware.threads=1"])) == series_key(nightly)


def test_emulated_runs_are_a_series_of_their_own_even_under_the_real_entry_id() -> None:
    real = smoke_result()
    copied = smoke_result()
    copied.hardware = {**copied.hardware, "emulated": True}  # e.g. a result file copied over
    assert copied.entry_id == real.entry_id
    assert series_key(copied) != series_key(real)
    assert series_key(copied).emulated and not series_key(real).emulated
    assert "emulated" in series_key(copied).label() and "emulated" not in series_key(real).label()


def test_dirty_commits_keep_their_mark_in_labels() -> None:
    assert short_commit("ef07e2e0123456789-dirty") == "ef07e2e+dirty"
    assert short_commit("ef07e2e0123456789") == "ef07e2e"
    assert short_commit(None) == "?"
