"""The IPU memory model against what is known: configs that ran on IPUs fit, the documented
out-of-memory case is refused, with the numbers (docs/ipu.md, "Memory model")."""

from __future__ import annotations

import pytest

from qa.backends.ipu import memory
from qa.backends.ipu.config import load_ipu_config, replication_factor, settings_from_dict
from qa.backends.ipu.memory import ARCHITECTURES, Workload, check_fits, estimate, pipeline_stages
from qa.errors import QABenchError

BASE = ARCHITECTURES["bert-base-uncased"]
LARGE = ARCHITECTURES["bert-large-uncased"]

# graphcore/examples nlp/bert/pytorch/configs_squad.yml, "squad_large_384": BERT-large on 8 IPUs,
# micro batch 4, optimizer state on chip, "relies on replicatedTensorSharding to reduce the
# optimizer state such that it fits on chip. NB This requires replication_factor=2 to fit."
LARGE_8 = settings_from_dict({
    "ipus_per_replica": 8, "layers_per_ipu": [2, 3, 3, 3, 3, 3, 3, 4],
    "matmul_proportion": [0.08, 0.28, 0.32, 0.32, 0.36, 0.38, 0.4, 0.32],
    "recompute_checkpoint_every_layer": True, "optimizer_state_offchip": False,
    "replicated_tensor_sharding": True}, name="squad_large_384")
# The same file's 4-IPU SQuAD BERT-large and configs_pretraining.yml's BERT-base/large layouts.
LARGE_4 = settings_from_dict({
    "ipus_per_replica": 4, "layers_per_ipu": [3, 7, 7, 7],
    "matmul_proportion": [0.15, 0.25, 0.25, 0.25], "recompute_checkpoint_every_layer": True,
    "optimizer_state_offchip": True, "replicated_tensor_sharding": True}, name="large_4")
BASE_4 = settings_from_dict({
    "ipus_per_replica": 4, "layers_per_ipu": [0, 4, 4, 4], "matmul_proportion": 0.25,
    "recompute_checkpoint_every_layer": True, "optimizer_state_offchip": True,
    "replicated_tensor_sharding": True}, name="base_4")


def fullest_mb(settings, arch, work) -> float:
    return max(e.total for e in estimate(settings, arch, work)) / 1e6


@pytest.mark.parametrize("model", sorted(ARCHITECTURES))
@pytest.mark.parametrize("pod", ["pod4", "pod8", "pod16", "pod64"])
def test_every_shipped_config_fits_as_the_nightly_runs_it(model: str, pod: str) -> None:
    settings = load_ipu_config(model)
    work = Workload(micro_batch=1, sequence_length=384, gradient_accumulation=32,
                    replicas=replication_factor(settings, pod))
    estimates = check_fits(settings, ARCHITECTURES[model], work)
    assert len(estimates) == settings.ipus_per_replica
    assert max(e.total for e in estimates) < 0.95 * memory.IPU_MEMORY_BYTES


@pytest.mark.parametrize(("settings", "arch", "work", "low", "high"), [
    # graphcore/examples configs that ran on Mk2 pods: (fullest IPU's estimate, MB) in a band
    (LARGE_8, LARGE, Workload(4, 384, 32, replicas=2), 790, 850),
    (LARGE_4, LARGE, Workload(2, 384, 64, replicas=2), 740, 800),
    (BASE_4, BASE, Workload(32, 128, 512, replicas=4, masked_tokens=20), 640, 700),
    (BASE_4, BASE, Workload(8, 512, 512, replicas=4, masked_tokens=76), 740, 800),
    (LARGE_4, LARGE, Workload(8, 128, 2048, replicas=4, masked_tokens=20), 740, 800),
], ids=["squad-large-8ipu-mb4-rts2", "squad-large-4ipu-mb2", "pretrain-base-128-mb32",
        "pretrain-base-512-mb8", "pretrain-large-128-mb8"])
def test_published_configs_fit(settings, arch, work, low: float, high: float) -> None:
    check_fits(settings, arch, work)
    assert low < fullest_mb(settings, arch, work) < high


def test_the_documented_out_of_memory_case_is_refused_naming_the_ipu_and_the_excess() -> None:
    # "NB This requires replication_factor=2 to fit": one replica has no sharding.
    with pytest.raises(QABenchError) as refused:
        check_fits(LARGE_8, LARGE, Workload(4, 384, 32, replicas=1))
    message = str(refused.value)
    assert "\n" not in message
    assert "does not fit IPU7's In-Processor Memory: estimated 975 MB of 900 MB, 75 MB over" \
        in message
    assert "largest: optimizer" in message


def test_sharding_is_what_makes_it_fit() -> None:
    one, two = (fullest_mb(LARGE_8, LARGE, Workload(4, 384, 32, replicas=r)) for r in (1, 2))
    assert two < 900 < one
    unsharded = settings_from_dict({**_raw(LARGE_8), "replicated_tensor_sharding": False})
    assert fullest_mb(unsharded, LARGE, Workload(4, 384, 32, replicas=2)) > 900


def _raw(settings) -> dict:
    return {"ipus_per_replica": settings.ipus_per_replica,
            "layers_per_ipu": list(settings.layers_per_ipu),
            "matmul_proportion": list(settings.matmul_proportion),
            "recompute_checkpoint_every_layer": settings.recompute_checkpoint_every_layer,
            "optimizer_state_offchip": settings.optimizer_state_offchip,
            "replicated_tensor_sharding": settings.replicated_tensor_sharding}


def test_bert_large_on_one_ipu_is_refused() -> None:
    one = settings_from_dict({"ipus_per_replica": 1, "layers_per_ipu": [-1]}, name="one")
    with pytest.raises(QABenchError, match=r"does not fit IPU0's .* MB over"):
        check_fits(one, LARGE, Workload(1, 384, 32, replicas=1))


@pytest.mark.parametrize("knob", ["micro_batch", "sequence_length"])
def test_pushing_micro_batch_or_sequence_up_ends_in_a_refusal(knob: str) -> None:
    settings = load_ipu_config("bert-large-uncased")
    sizes = {"micro_batch": 1, "sequence_length": 384}
    totals = []
    while True:
        work = Workload(sizes["micro_batch"], sizes["sequence_length"], 32, replicas=1)
        totals.append(fullest_mb(settings, LARGE, work))
        try:
            check_fits(settings, LARGE, work)
        except QABenchError:
            break
        sizes[knob] *= 2
        assert sizes[knob] <= 64 * 384
    assert totals == sorted(totals) and len(totals) >= 2


def test_moving_a_layer_onto_the_embeddings_ipu_costs_memory_there() -> None:
    shipped = load_ipu_config("bert-large-uncased")  # [3, 7, 7, 7]
    heavier = settings_from_dict({**_raw(shipped), "layers_per_ipu": [6, 6, 6, 6],
                                  "matmul_proportion": list(shipped.matmul_proportion)})
    work = Workload(1, 384, 32, replicas=1)
    ipu0 = [estimate(s, LARGE, work)[0].total for s in (shipped, heavier)]
    assert ipu0[1] - ipu0[0] == pytest.approx(3 * LARGE.layer_params() * 2 * 2 + 3 * 384 * 1024
                                              * 2 * 7, rel=1e-9)


def test_fp32_doubles_what_is_stored_in_the_model_type() -> None:
    settings = load_ipu_config("bert-base-uncased")
    half, full = (estimate(settings, BASE, Workload(1, 384, 32, 1, fp32=f))[1].parts
                  for f in (False, True))
    assert full["weights"] == 2 * half["weights"]
    assert full["stash"] == 2 * half["stash"]


def test_optimizer_state_offchip_leaves_only_the_streamed_tensor() -> None:
    on = load_ipu_config("bert-base-uncased")
    off = load_ipu_config("roberta-base")  # same layout, state off chip
    work = Workload(1, 384, 32, replicas=1)
    layer_state = estimate(on, BASE, work)[1].parts["optimizer"]
    assert layer_state == pytest.approx(4 * BASE.layer_params() * 6)
    assert estimate(off, BASE, work)[1].parts["optimizer"] == pytest.approx(768 * 3072 * 6)


@pytest.mark.parametrize(("layers", "ipus", "training", "stages"), [
    ([0, 4, 4, 4], 4, True, 7), ([0, 4, 4, 4], 4, False, 4), ([3, 7, 7, 7], 4, True, 7),
    ([0, 1, 1, 0], 4, True, 7), ([2, 3, 3, 3, 3, 3, 3, 4], 8, True, 15), ([-1], 1, True, 1),
])
def test_pipeline_stages_count_each_change_of_ipu(layers, ipus, training, stages) -> None:
    settings = settings_from_dict({"ipus_per_replica": ipus, "layers_per_ipu": layers})
    depth = 12 if -1 in layers else sum(layers)
    assert pipeline_stages(settings, depth, training) == stages
