"""IPU config files, replication, layer splits and the IPU backend's pure keyword builders."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import (
    BertConfig,
    BertForQuestionAnswering,
    DebertaConfig,
    DistilBertConfig,
    DistilBertForQuestionAnswering,
    RobertaConfig,
)

from qa.backends import get
from qa.backends.ipu import IPUBackend
from qa.backends.ipu.config import (
    POD_SIZES,
    IPUSettings,
    api_for_version,
    check_layers,
    config_name_for_model,
    global_batch_size,
    ipu_config_kwargs,
    load_ipu_config,
    pod_ipus,
    replication_factor,
    settings_from_dict,
    shipped_names,
)
from qa.backends.ipu.keywords import (
    check_model_supported,
    model_input_columns,
    padded_indices,
    trainer_kwargs,
    training_args_kwargs,
)
from qa.config.schema import RunConfig
from qa.errors import QABenchError

OLD, NEW = api_for_version("0.3.1"), api_for_version("0.7.1")
SEED_TRAIN = {
    "learning_rate": 2e-5,
    "loss_scaling": 64,
    "weight_decay": 0.01,
    "warmup_ratio": 0.25,
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 32,
    "num_train_epochs": 3,
}
LAYERS = {
    "bert-base-uncased": BertConfig(),
    "bert-large-uncased": BertConfig(num_hidden_layers=24),
    "roberta-base": RobertaConfig(),
    "distilbert-base-uncased": DistilBertConfig(),
    "deberta-base": DebertaConfig(),
    "tiny-bert": BertConfig(num_hidden_layers=2),  # the emulated CI model
}
VALIDATION_COLUMNS = [
    "input_ids",
    "token_type_ids",
    "attention_mask",
    "offset_mapping",
    "example_id",
]


def settings(**raw: object) -> IPUSettings:
    return settings_from_dict({"layers_per_ipu": [0, 4, 4, 4], **raw}, name="test")


def seed_config(pod: str | None = "pod16") -> RunConfig:
    hardware = {"backend": "ipu", "ipu_config": "bert-base-uncased"}
    if pod:
        hardware["pod"] = pod
    return RunConfig.from_dict(
        {"model": {"name": "bert-base-uncased"}, "train": SEED_TRAIN, "hardware": hardware}
    )


# -- shipped files -----------------------------------------------------------------------------


def test_every_nightly_model_has_a_config() -> None:
    assert shipped_names() == sorted(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shipped_config_parses_and_matches_its_model(name: str) -> None:
    loaded = load_ipu_config(name)
    assert loaded.ipus_per_replica == len(loaded.layers_per_ipu) == 4
    assert check_layers(loaded, LAYERS[name].num_hidden_layers) == list(loaded.layers_per_ipu)
    assert "*" in loaded.source, "every value needs a recorded source"
    assert config_name_for_model(name) == name
    for pod, ipus in POD_SIZES.items():
        assert replication_factor(loaded, pod) == ipus // 4


def test_bert_base_facts() -> None:
    loaded = load_ipu_config("bert-base-uncased")
    assert loaded.layers_per_ipu == (0, 4, 4, 4)
    assert loaded.matmul_proportion == 0.25


def test_config_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"layers_per_ipu": [6, 6], "optimum_version": "1.3.0"}))
    loaded = load_ipu_config(path)
    assert (loaded.ipus_per_replica, loaded.name) == (2, str(path))


def test_config_for_a_hub_model_id() -> None:
    assert config_name_for_model("microsoft/deberta-base") == "deberta-base"
    with pytest.raises(QABenchError, match="no shipped IPU config for model 'gpt2'"):
        config_name_for_model("gpt2")


# -- replication and batch ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "replicas"), [("pod4", 1), ("pod8", 2), ("pod16", 4), ("pod32", 8), ("pod64", 16)]
)
def test_replication_per_pod_dict_and_n_ipu_agree(pod: str, replicas: int) -> None:
    per_pod = settings(
        replication_factor={"pod4": 1, "pod8": 2, "pod16": 4, "pod32": 8, "pod64": 16, "default": 1}
    )
    assert replication_factor(per_pod, pod) == replicas  # 0.3-era pod_type lookup
    assert replication_factor(settings(), pod) == replicas  # 0.7-era n_ipu // ipus_per_replica
    assert replication_factor(settings(n_ipu=pod_ipus(pod)), None) == replicas


def test_replication_without_a_pod() -> None:
    assert replication_factor(settings(), None) == 1
    assert replication_factor(settings(replication_factor={"pod16": 4, "default": 2}), None) == 2
    with pytest.raises(QABenchError, match="no 'default'; name a pod"):
        replication_factor(settings(replication_factor={"pod16": 4}), None)


def test_per_pod_default_fills_a_missing_pod() -> None:
    assert replication_factor(settings(replication_factor={"pod16": 4, "default": 1}), "pod8") == 1


def test_global_batch() -> None:
    bert = load_ipu_config("bert-base-uncased")
    assert global_batch_size(1, 32, replication_factor(bert, "pod16")) == 128
    with pytest.raises(QABenchError, match="gradient accumulation must be an integer >= 1"):
        global_batch_size(1, 0, 4)


# -- impossible combinations ---------------------------------------------------------------------


def test_replica_larger_than_the_pod() -> None:
    eight = settings_from_dict({"layers_per_ipu": [-1] * 8, "ipus_per_replica": 8}, name="big")
    with pytest.raises(QABenchError, match="big needs 8 IPUs per replica but pod4 has only 4"):
        replication_factor(eight, "pod4")
    assert replication_factor(eight, "pod16") == 2


def test_per_pod_dict_asking_for_more_ipus_than_the_pod_has() -> None:
    with pytest.raises(QABenchError, match="2 replicas x 4 IPUs per replica = 8 IPUs"):
        replication_factor(settings(replication_factor={"pod4": 2}), "pod4")


def test_per_pod_dict_without_the_pod_or_a_default() -> None:
    with pytest.raises(QABenchError, match="no entry for pod16 and no 'default'"):
        replication_factor(settings(replication_factor={"pod4": 1, "pod64": 16}), "pod16")


def test_ipus_not_divisible_by_the_pipeline() -> None:
    three = settings_from_dict({"layers_per_ipu": [4, 4, 4]}, name="three")
    with pytest.raises(QABenchError, match="16 IPUs, not a multiple of ipus_per_replica=3"):
        replication_factor(three, "pod16")
    with pytest.raises(QABenchError, match="n_ipu=6 is not a multiple of ipus_per_replica=4"):
        settings(n_ipu=6)


def test_unknown_pod_suggests_the_closest() -> None:
    with pytest.raises(QABenchError, match="unknown pod 'pod-16' \\(did you mean 'pod16'\\?\\)"):
        replication_factor(settings(), "pod-16")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"layers_per_ipu": [0, 4, 4, 4], "ipus_per_replika": 4},
            "unknown IPU config key 'ipus_per_replika' \\(did you mean 'ipus_per_replica'\\?\\)",
        ),
        ({"layers_per_ipu": [6, 6], "ipus_per_replica": 4}, "has 2 entries but ipus_per_replica"),
        ({"layers_per_ipu": [0, 4, 4, 4], "matmul_proportion": [0.2, 0.2]}, "has 2 entries"),
        ({"layers_per_ipu": [0, 4, 4, 4], "matmul_proportion": 1.5}, "number in \\(0, 1\\]"),
        ({"layers_per_ipu": [0, 4, 4, 4], "embedding_serialization_factor": 0}, "use 1"),
        (
            {"layers_per_ipu": [0, 4, 4, 4], "recompute_checkpoint_every_layer": "yes"},
            "must be true or false",
        ),
        (
            {"layers_per_ipu": [0, 4, 4, 4], "replication_factor": {"pod61": 2}},
            "unknown pod 'pod61'",
        ),
        (
            {
                "layers_per_ipu": [0, 4, 4, 4],
                "replication_factor": 4,
                "inference_replication_factor": 2,
            },
            "must equal replication_factor",
        ),
        ({"layers_per_ipu": []}, "non-empty list"),
    ],
)
def test_bad_settings(raw: dict, message: str) -> None:
    with pytest.raises(QABenchError, match=message):
        settings_from_dict(raw, name="bad")


def test_bad_json_and_bad_names(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"layers_per_ipu": [0, 4, 4, 4],}')
    with pytest.raises(QABenchError, match="not valid JSON"):
        load_ipu_config(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(QABenchError, match="must be a JSON object"):
        load_ipu_config(listed)
    with pytest.raises(QABenchError, match="file not found"):
        load_ipu_config(tmp_path / "missing.json")
    with pytest.raises(QABenchError, match="did you mean 'bert-base-uncased'"):
        load_ipu_config("bert-base-uncase")


# -- layers ------------------------------------------------------------------------------------


def test_layer_count_must_match_the_model() -> None:
    with pytest.raises(QABenchError, match="places 12 layers but the model has 24"):
        check_layers(load_ipu_config("bert-base-uncased"), 24)


@pytest.mark.parametrize(
    ("layers", "ipus", "total", "expected"),
    [
        ([-1], 4, 12, [3, 3, 3, 3]),
        ([-1, -1], 2, 9, [4, 5]),
        ([1, -1, -1, -1], 4, 12, [1, 3, 3, 5]),
        ([-1], 1, 12, [12]),
    ],
)
def test_wildcards_follow_optimum(layers: list, ipus: int, total: int, expected: list) -> None:
    wild = settings_from_dict({"layers_per_ipu": layers, "ipus_per_replica": ipus}, name="w")
    assert check_layers(wild, total) == expected


def test_wildcards_refused_before_optimum_0_6() -> None:
    wild = settings_from_dict({"layers_per_ipu": [-1], "ipus_per_replica": 4}, name="w")
    assert not OLD.layer_wildcards and NEW.layer_wildcards
    with pytest.raises(QABenchError, match="uses -1"):
        check_layers(wild, 12, wildcards=OLD.layer_wildcards)
    with pytest.raises(QABenchError, match="fixes 13 layers"):
        check_layers(settings_from_dict({"layers_per_ipu": [13, -1]}, name="w"), 12)


# -- API generations and keyword builders --------------------------------------------------------


def test_api_generations() -> None:
    assert (OLD.replication, OLD.compile_method, OLD.wrap_method) == (
        "pod_type",
        "_compile_model",
        "_wrap_model",
    )
    assert (NEW.replication, NEW.compile_method) == ("n_ipu", "compile_model")
    assert api_for_version("0.4.0").compile_method == "compile_model"
    assert api_for_version("0.6.0").replication == "pod_type"
    assert api_for_version("0.6.1").replication == "n_ipu"
    assert api_for_version("0.7.1.dev0").layer_wildcards
    for bad in ("0.2.3", "latest"):
        with pytest.raises(QABenchError):
            api_for_version(bad)


def test_ipu_config_kwargs_per_api() -> None:
    bert = load_ipu_config("bert-base-uncased")
    old = ipu_config_kwargs(bert, "pod16", OLD, 32, executable_cache_dir="/exe")
    new = ipu_config_kwargs(bert, "pod16", NEW, 32, executable_cache_dir="/exe")
    assert old == {**new, "replication_factor": 4, "inference_replication_factor": 4}
    assert new == {
        "ipus_per_replica": 4,
        "layers_per_ipu": [0, 4, 4, 4],
        "gradient_accumulation_steps": 32,
        "device_iterations": 1,
        "inference_device_iterations": 5,
        "matmul_proportion": 0.25,
        "embedding_serialization_factor": 1,
        "recompute_checkpoint_every_layer": True,
        "optimizer_state_offchip": False,
        "replicated_tensor_sharding": True,
        "enable_half_partials": True,
        "executable_cache_dir": "/exe",
    }
    # One replica: nothing to shard the optimizer state across.
    assert not ipu_config_kwargs(bert, "pod4", NEW)["replicated_tensor_sharding"]
    assert ipu_config_kwargs(load_ipu_config("bert-large-uncased"), "pod16", NEW)[
        "matmul_proportion"
    ] == [0.15, 0.18, 0.2, 0.25]


def test_training_args_kwargs_carry_the_seed_hyper_parameters() -> None:
    bert = load_ipu_config("bert-base-uncased")
    common = {
        "output_dir": "out",
        "per_device_train_batch_size": 1,
        "per_device_eval_batch_size": 64,
        "gradient_accumulation_steps": 32,
        "learning_rate": 2e-5,
        "weight_decay": 0.01,
        "warmup_ratio": 0.25,
        "lr_scheduler_type": "linear",
        "num_train_epochs": 3.0,
        "max_steps": -1,
        "seed": 42,
        "logging_steps": 1,
        "save_strategy": "no",
        "evaluation_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "loss_scaling": 64.0,
    }
    assert training_args_kwargs(seed_config(), OLD, bert, "out") == {**common, "pod_type": "pod16"}
    assert training_args_kwargs(seed_config(), NEW, bert, "out") == {**common, "n_ipu": 16}
    assert "pod_type" not in training_args_kwargs(seed_config(None), OLD, bert, "out")
    assert training_args_kwargs(seed_config(None), NEW, bert, "out")["n_ipu"] == 4


def test_trainer_kwargs_leave_out_none() -> None:
    assert trainer_kwargs("m", "c", "a") == {"model": "m", "ipu_config": "c", "args": "a"}


def test_model_support_per_release() -> None:
    check_model_supported("distilbert", api_for_version("0.4.0"))
    with pytest.raises(QABenchError, match="added in 0.4.0"):
        check_model_supported("distilbert", OLD)
    with pytest.raises(QABenchError, match="no IPU question-answering support"):
        check_model_supported("gpt2", NEW)


# -- what reaches the compiled model -------------------------------------------------------------


def test_prediction_columns_exclude_example_id_and_offsets() -> None:
    forward = inspect.signature(BertForQuestionAnswering.forward).parameters
    keep = model_input_columns(VALIDATION_COLUMNS, forward, with_labels=False)
    assert keep == ["input_ids", "token_type_ids", "attention_mask"]


def test_prediction_columns_follow_the_model_signature() -> None:
    forward = inspect.signature(DistilBertForQuestionAnswering.forward).parameters
    keep = model_input_columns(VALIDATION_COLUMNS, forward, with_labels=False)
    assert keep == ["input_ids", "attention_mask"]  # DistilBERT takes no token_type_ids


def test_training_columns_keep_labels_and_prediction_drops_them() -> None:
    forward = inspect.signature(BertForQuestionAnswering.forward).parameters
    columns = ["input_ids", "attention_mask", "start_positions", "end_positions", "example_id"]
    assert model_input_columns(columns, forward, with_labels=True) == columns[:4]
    assert model_input_columns(columns, forward, with_labels=False) == columns[:2]
    with pytest.raises(QABenchError, match="need start_positions and end_positions"):
        model_input_columns(columns[:2], forward, with_labels=True)
    with pytest.raises(QABenchError, match="no input_ids column"):
        model_input_columns(["example_id"], forward, with_labels=False)


def test_padded_indices() -> None:
    assert padded_indices(5, 4) == [0, 1, 2, 3, 4, 4, 4, 4]
    assert padded_indices(8, 4) == list(range(8))
    with pytest.raises(QABenchError):
        padded_indices(0, 4)


# -- availability here ---------------------------------------------------------------------------


def test_backend_is_unavailable_without_poptorch() -> None:
    assert get("ipu") is IPUBackend and IPUBackend.NAME == "ipu"
    assert IPUBackend.available() == (False, "poptorch not importable: install the Poplar SDK")


def test_importing_the_backend_imports_neither_poptorch_nor_optimum() -> None:
    code = (
        "import sys, qa.backends.ipu.backend, qa.backends.ipu.config\n"
        "bad = [m for m in sys.modules if m.startswith(('poptorch', 'optimum', 'transformers'))]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
