"""The static rules a pod refuses an entry by (``qa.backends.ipu.rules``), with poptorch's
wording, judged from the configs alone."""

from __future__ import annotations

import json

import pytest

from qa.backends.ipu.rules import check_entry
from qa.config.schema import RunConfig, apply_overrides


def entry(*sets: str) -> RunConfig:
    return apply_overrides(RunConfig(), [
        "hardware.backend=ipu", "hardware.pod=pod16", "model.name=bert-base-uncased",
        "data.max_length=384", "train.micro_batch_size=1",
        "train.gradient_accumulation_steps=32", *sets])


def test_a_nightly_entry_passes_every_rule() -> None:
    verdict = check_entry(entry())
    assert verdict.refusal is None
    assert "4 x 4 IPUs, global batch 128, 7 stages <= accumulation 32" in verdict.detail


@pytest.mark.parametrize(("accumulation", "refused"), [(6, True), (7, False), (2, True)])
def test_pipeline_depth_needs_accumulation_of_at_least_2f_minus_1(accumulation: int,
                                                                   refused: bool) -> None:
    verdict = check_entry(entry(f"train.gradient_accumulation_steps={accumulation}"))
    assert (verdict.refusal is not None) is refused
    if refused:
        assert ("Training.gradientAccumulation must be greater than or equal to the number of "
                "pipeline stages (7)") in verdict.refusal


def test_a_replica_bigger_than_the_pod_is_refused(tmp_path) -> None:
    path = tmp_path / "eight.json"
    path.write_text(json.dumps({"ipus_per_replica": 8, "layers_per_ipu": [-1]}))
    verdict = check_entry(entry("hardware.pod=pod4", f"ipu.ipu_config={path}"))
    assert verdict.refusal is not None and "needs 8 IPUs per replica but pod4 has only 4" \
        in verdict.refusal


def test_a_per_pod_replication_beyond_the_pod_is_refused(tmp_path) -> None:
    path = tmp_path / "over.json"
    path.write_text(json.dumps({"ipus_per_replica": 4, "layers_per_ipu": [0, 4, 4, 4],
                                "replication_factor": {"pod16": 8}}))
    verdict = check_entry(entry(f"ipu.ipu_config={path}"))
    assert verdict.refusal is not None and "32 IPUs, but pod16 has 16" in verdict.refusal


def test_a_layer_split_that_misses_the_model_is_refused(tmp_path) -> None:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"ipus_per_replica": 4, "layers_per_ipu": [0, 4, 4, 3]}))
    verdict = check_entry(entry(f"ipu.ipu_config={path}"))
    assert verdict.refusal is not None and "places 11 layers but the model has 12" \
        in verdict.refusal


def test_memory_is_the_last_rule() -> None:
    verdict = check_entry(entry("model.name=bert-large-uncased", "train.micro_batch_size=8"))
    assert verdict.refusal is not None
    assert "does not fit IPU1's In-Processor Memory" in verdict.refusal
    assert check_entry(entry("model.name=bert-large-uncased",
                             "train.micro_batch_size=4")).refusal is None
