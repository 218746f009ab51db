"""Run configuration: ``--set`` overrides, dict round trip, config hash."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import pytest

from qa.config.schema import (
    DataConfig,
    HardwareConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    config_hash,
)
from qa.errors import QABenchError


def test_overrides_coerce_types() -> None:
    config = apply_overrides(RunConfig(), [
        "train.learning_rate=3e-4",
        "train.max_steps=12",
        "train.torch_compile=true",
        "train.dynamic_padding=off",
        "train.loss_scaling=64",
        "data.max_train_samples=none",
        "data.max_eval_samples=50",
        "model.name=bert-base-uncased",
        "hardware.pod = pod16",
    ])
    assert config.train.learning_rate == pytest.approx(3e-4)
    assert isinstance(config.train.learning_rate, float)
    assert config.train.max_steps == 12 and isinstance(config.train.max_steps, int)
    assert config.train.torch_compile is True
    assert config.train.dynamic_padding is False
    assert config.train.loss_scaling == 64.0 and isinstance(config.train.loss_scaling, float)
    assert config.data.max_train_samples is None
    assert config.data.max_eval_samples == 50
    assert config.model.name == "bert-base-uncased"
    assert config.hardware.pod == "pod16"  # whitespace around '=' is ignored
    # Untouched fields keep their defaults.
    assert config.train.seed == TrainConfig().seed
    assert config.data == replace(DataConfig(), max_eval_samples=50)


def test_override_to_none_and_back() -> None:
    config = apply_overrides(RunConfig(), ["data.max_train_samples=7"])
    assert config.data.max_train_samples == 7
    assert apply_overrides(config, ["data.max_train_samples=null"]).data.max_train_samples is None


def test_later_override_wins() -> None:
    config = apply_overrides(RunConfig(), ["train.seed=1", "train.seed=2"])
    assert config.train.seed == 2


def test_overrides_leave_the_input_config_alone() -> None:
    base = RunConfig()
    apply_overrides(base, ["train.seed=5"])
    assert base == RunConfig()


def test_value_may_contain_equals_sign() -> None:
    config = apply_overrides(RunConfig(), ["model.name=org/model=v2"])
    assert config.model.name == "org/model=v2"


@pytest.mark.parametrize("item, fragment", [
    ("train.learning_rate=abc", "train.learning_rate expects float, got 'abc'"),
    ("train.max_steps=1.5", "train.max_steps expects int"),
    ("train.max_steps=", "train.max_steps expects int"),
    ("train.torch_compile=maybe", "train.torch_compile expects bool"),
    ("train.seed=none", "train.seed cannot be empty"),
    ("data.max_length=null", "data.max_length cannot be empty"),
])
def test_override_type_errors(item: str, fragment: str) -> None:
    with pytest.raises(QABenchError) as info:
        apply_overrides(RunConfig(), [item])
    assert fragment in str(info.value)


@pytest.mark.parametrize("item, fragment", [
    ("train.learnig_rate=1", "unknown config key 'train.learnig_rate' (did you mean "
                             "'learning_rate'?)"),
    ("trian.seed=1", "unknown config section 'trian' (did you mean 'train'?)"),
    ("data.max_lenght=3", "did you mean 'max_length'?"),
    ("hardware.bakend=ipu", "did you mean 'backend'?"),
])
def test_unknown_names_suggest(item: str, fragment: str) -> None:
    with pytest.raises(QABenchError) as info:
        apply_overrides(RunConfig(), [item])
    assert fragment in str(info.value)


def test_unknown_section_far_from_any_lists_choices() -> None:
    with pytest.raises(QABenchError) as info:
        apply_overrides(RunConfig(), ["nosuchsection.x=1"])
    message = str(info.value)
    assert "unknown config section 'nosuchsection'" in message
    for section in ("data", "model", "train", "hardware", "postprocess"):
        assert section in message


@pytest.mark.parametrize(
    "item", ["foo", "train.seed", "seed=1", "=1", ".=1", "train.=1", ".seed=1", ""])
def test_malformed_override(item: str) -> None:
    with pytest.raises(QABenchError, match="section.key=value"):
        apply_overrides(RunConfig(), [item])


def test_nested_key_is_unknown() -> None:
    with pytest.raises(QABenchError, match="unknown config key 'train.seed.x'"):
        apply_overrides(RunConfig(), ["train.seed.x=1"])


def sample_config() -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset="squad_v2", version_2=True, max_train_samples=100,
                        squad_dir="/data/squad"),
        model=ModelConfig(name="bert-base-uncased", lowercase=False),
        train=TrainConfig(learning_rate=2e-5, micro_batch_size=1, gradient_accumulation_steps=32,
                          loss_scaling=64.0, torch_compile=True),
        hardware=HardwareConfig(backend="ipu", pod="pod16"),
    ).replace_section("ipu", ipu_config="bert-base-uncased")


def test_from_dict_round_trip() -> None:
    config = sample_config()
    raw = config.to_dict()
    assert raw["train"]["gradient_accumulation_steps"] == 32
    assert raw["hardware"]["pod"] == "pod16"
    assert raw["ipu"]["ipu_config"] == "bert-base-uncased" and raw["torch"]["device"] == "auto"
    assert RunConfig.from_dict(raw) == config
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()


def test_from_dict_partial_uses_defaults() -> None:
    config = RunConfig.from_dict({"train": {"seed": 3}})
    assert config.train.seed == 3
    assert config.data == DataConfig()


def test_from_dict_coerces_toml_values() -> None:
    config = RunConfig.from_dict({"train": {"num_train_epochs": 3, "max_steps": 10.0}})
    assert isinstance(config.train.num_train_epochs, float)
    assert config.train.max_steps == 10 and isinstance(config.train.max_steps, int)


@pytest.mark.parametrize("raw, fragment", [
    ({"trainn": {}}, "unknown config section 'trainn' (did you mean 'train'?)"),
    ({"train": {"lr": 1}}, "unknown config key 'train.lr'"),
    ({"train": 5}, "config section 'train' must be a table"),
    ({"train": {"max_steps": 2.5}}, "train.max_steps expects int"),
    ({"train": {"max_steps": True}}, "train.max_steps expects int, got True"),
    ({"train": {"learning_rate": False}}, "train.learning_rate expects float, got False"),
    ({"train": {"torch_compile": 1}}, "train.torch_compile expects bool"),
])
def test_from_dict_errors(raw: dict, fragment: str) -> None:
    with pytest.raises(QABenchError) as info:
        RunConfig.from_dict(raw)
    assert fragment in str(info.value)


def test_config_hash_stable_and_ignores_hardware() -> None:
    config = sample_config()
    digest = config_hash(config)
    assert digest == config_hash(RunConfig.from_dict(config.to_dict()))
    other_hardware = replace(config, hardware=HardwareConfig(backend="torch")).replace_section(
        "torch", device="cpu")
    assert config_hash(other_hardware) == digest
    assert config_hash(replace(config, train=replace(config.train, learning_rate=3e-5))) != digest
    assert config_hash(replace(config, data=replace(config.data, max_length=256))) != digest
    # Ignoring nothing makes hardware count.
    assert config_hash(other_hardware, ignore=()) != config_hash(config, ignore=())


def test_config_hash_same_in_another_process() -> None:
    code = ("from qa.config.schema import RunConfig, apply_overrides, config_hash; "
            "print(config_hash(apply_overrides(RunConfig(), ['train.seed=9', 'model.name=x'])))")
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, timeout=60).stdout.strip()
    assert out == config_hash(apply_overrides(RunConfig(), ["train.seed=9", "model.name=x"]))
