"""Backend sections: each backend's settings are its own table, old ``hardware.*`` spellings
still work with one deprecation line, and results written before the move are still read."""

from __future__ import annotations

import pytest

from qa.backends.ipu.options import IPUOptions
from qa.backends.torch.options import TorchOptions
from qa.config import sections
from qa.config.schema import RunConfig, apply_overrides, config_fields, config_hash
from qa.errors import QABenchError


def test_each_backend_has_its_own_section_declared_in_its_folder() -> None:
    config = RunConfig()
    assert isinstance(config.torch, TorchOptions) and isinstance(config.ipu, IPUOptions)
    assert config.section("torch") is config.torch
    names = [name for name, _, _ in config_fields()]
    assert {"torch.device", "torch.replicas", "ipu.ipu_config", "ipu.fp32"} <= set(names)
    # The shared table keeps only what every backend reads.
    assert not {"hardware.device", "hardware.ipu_config", "hardware.replicas"} & set(names)


def test_a_backend_setting_is_set_and_validated_like_any_other() -> None:
    config = apply_overrides(RunConfig(), ["torch.device=cpu", "torch.replicas=2",
                                           "ipu.fp32=true"])
    assert (config.torch.device, config.torch.replicas, config.ipu.fp32) == ("cpu", 2, True)
    with pytest.raises(QABenchError, match=r"torch.device = 'tpu': must be one of"):
        apply_overrides(RunConfig(), ["torch.device=tpu"])
    with pytest.raises(QABenchError, match=r"unknown config key 'torch.devcie'.*device"):
        apply_overrides(RunConfig(), ["torch.devcie=cpu"])
    with pytest.raises(QABenchError, match=r"torch.node_rank = 1: must be in 0 .. 0"):
        RunConfig.from_dict({"torch": {"node_rank": 1}})


def test_old_spellings_still_work_with_one_deprecation_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sections, "_warned", set())
    old = apply_overrides(RunConfig(), ["hardware.device=cpu", "hardware.device=cpu"])
    from_toml = RunConfig.from_dict({"hardware": {"ipu_config": "tiny-bert", "fp32": True}})
    assert old.torch.device == "cpu" and from_toml.ipu.ipu_config == "tiny-bert"
    assert old == apply_overrides(RunConfig(), ["torch.device=cpu"])
    err = capsys.readouterr().err.splitlines()
    assert err.count("qa-bench: 'hardware.device' is deprecated: use 'torch.device' (the "
                     "torch backend's own settings)") == 1
    assert any("'hardware.ipu_config' is deprecated: use 'ipu.ipu_config'" in e for e in err)


def test_both_spellings_with_different_values_are_refused() -> None:
    with pytest.raises(QABenchError, match=r"hardware.device = 'cuda' and torch.device = 'cpu'"):
        RunConfig.from_dict({"hardware": {"device": "cuda"}, "torch": {"device": "cpu"}})


def test_backend_settings_never_make_two_runs_incomparable() -> None:
    # They say how an entry runs, as [hardware] did before them: a result written before the
    # move (device under hardware) hashes like one written after it.
    new = RunConfig().to_dict()
    old = {k: v for k, v in new.items() if k not in ("torch", "ipu")}
    old["hardware"] = {**new["hardware"], "device": "cpu", "replicas": 2}
    assert config_hash(old) == config_hash(apply_overrides(RunConfig(), ["torch.replicas=2"]))
    assert config_hash(old) != config_hash(apply_overrides(RunConfig(), ["train.seed=1"]))


def test_stored_reads_either_place() -> None:
    assert sections.stored({"hardware": {"replicas": 2}}, "torch", "replicas") == 2
    assert sections.stored({"torch": {"replicas": 3}, "hardware": {"replicas": 2}},
                           "torch", "replicas") == 3
    assert sections.stored({"hardware": {"threads": 2}}, "torch", "threads") is None


def test_replace_section_validates() -> None:
    config = RunConfig().replace_section("torch", replicas=4)
    assert config.torch.replicas == 4 and config.torch.world_size == 4
    with pytest.raises(QABenchError, match="torch.replicas = 0"):
        RunConfig().replace_section("torch", replicas=0)
    with pytest.raises(QABenchError, match="unknown config section 'torhc'"):
        RunConfig().section("torhc")
