"""Matrix profiles: the shipped TOML files, expansion, ``select`` and profile errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.backends.ipu import IPUBackend
from qa.errors import QABenchError
from qa.run.profiles import expand, load_profile, select

PROFILES = Path(__file__).resolve().parents[2] / "qa" / "run" / "profiles"
NIGHTLY_MODELS = {"bert-base-uncased", "bert-large-uncased", "roberta-base",
                  "distilbert-base-uncased", "deberta-base"}


def test_shipped_profiles_exist() -> None:
    assert {p.stem for p in PROFILES.glob("*.toml")} >= {"smoke", "nightly", "sdk-upgrade",
                                                          "pretrained"}


@pytest.mark.parametrize("name", ["smoke", "nightly", "sdk-upgrade", "pretrained"])
def test_shipped_profile_loads_by_name_and_path(name: str) -> None:
    by_name = load_profile(name)
    by_path = load_profile(str(PROFILES / f"{name}.toml"))
    assert by_name.name == by_path.name == name
    assert by_name.description
    assert [e.id for e in expand(by_name)] == [e.id for e in expand(by_path)]


def test_smoke_profile() -> None:
    entries = expand(load_profile("smoke"))
    assert len(entries) == 1
    (entry,) = entries
    assert entry.marks == ()
    config = entry.config
    assert config.hardware.backend == "torch" and config.torch.device == "cpu"
    assert config.model.name == "tiny-roformer"
    assert config.data.dataset == "synthetic"
    assert (config.data.max_length, config.data.doc_stride) == (384, 128)


def test_pretrained_profile(tmp_path: Path) -> None:
    """The real checkpoint on the real dev sets: both versions, CPU and CUDA, the sized run."""
    entries = expand(load_profile("pretrained"), squad_dir=str(tmp_path))
    assert sorted(e.id for e in entries) == [
        f"torch/{pod}/all-minilm-l6-v2__{d}" for pod in ("cpu", "cuda")
        for d in ("squad", "squad_v2")]
    for entry in entries:
        config = entry.config
        assert config.data.version_2 is (config.data.dataset == "squad_v2")
        assert config.data.squad_dir == str(tmp_path) and not config.model.reinit_weights
        assert (config.data.max_length, config.data.doc_stride) == (384, 128)
        assert (config.train.max_steps, config.train.micro_batch_size) == (500, 16)
        assert config.train.dynamic_padding and config.train.group_by_length
        assert config.data.max_train_samples is None and config.data.max_eval_samples is None


def test_nightly_expands_to_the_full_matrix() -> None:
    profile = load_profile("nightly")
    entries = expand(profile)
    assert len(entries) == 5 * 4 * 2 == 40
    assert len({e.id for e in entries}) == 40
    combos = {(e.config.model.name, e.config.hardware.pod, e.config.data.dataset)
              for e in entries}
    assert {m for m, _, _ in combos} == NIGHTLY_MODELS
    assert {p for _, p, _ in combos} == {"pod4", "pod8", "pod16", "pod64"}
    assert {d for _, _, d in combos} == {"squad", "squad_v2"}
    assert len(combos) == 40
    for entry in entries:
        config = entry.config
        assert entry.marks == ("ipu",)
        assert config.hardware.backend == "ipu"
        assert config.ipu.ipu_config == config.model.name
        assert config.data.version_2 is (config.data.dataset == "squad_v2")


@pytest.mark.parametrize("name", ["nightly", "sdk-upgrade"])
def test_seed_notebook_hyper_parameters(name: str) -> None:
    for entry in expand(load_profile(name)):
        train, data = entry.config.train, entry.config.data
        assert train.learning_rate == pytest.approx(2e-5)
        assert train.micro_batch_size == 1
        assert train.gradient_accumulation_steps == 32
        assert train.warmup_ratio == pytest.approx(0.25)
        assert train.weight_decay == pytest.approx(0.01)
        assert train.loss_scaling == 64
        assert train.num_train_epochs == 3
        assert (data.max_length, data.doc_stride) == (384, 128)


def test_sdk_upgrade_profile() -> None:
    profile = load_profile("sdk-upgrade")
    assert profile.seeds == [42, 43, 44]
    entries = expand(profile)
    assert sorted(e.config.data.dataset for e in entries) == ["squad", "squad_v2"]
    assert {e.config.hardware.pod for e in entries} == {"pod16"}


def test_expand_applies_squad_dir_and_overrides(tmp_path: Path) -> None:
    entries = expand(load_profile("sdk-upgrade"), squad_dir=str(tmp_path),
                     overrides=["train.max_steps=5", "train.learning_rate=1e-4"])
    for entry in entries:
        assert entry.config.data.squad_dir == str(tmp_path)
        assert entry.config.train.max_steps == 5
        assert entry.config.train.learning_rate == pytest.approx(1e-4)  # the CLI wins


def test_select_narrows_the_matrix() -> None:
    profile = select(load_profile("nightly"), models=["roberta-base"], pods=["pod16"],
                     datasets=["squad"])
    entries = expand(profile)
    assert [e.id for e in entries] == ["ipu/pod16/roberta-base__squad"]


def test_select_torch_backend_on_an_ipu_profile() -> None:
    profile = select(load_profile("sdk-upgrade"), backend="torch")
    entries = expand(profile)
    assert {e.config.hardware.backend for e in entries} == {"torch"}
    assert {e.config.torch.device for e in entries} == {"cpu"}
    assert all("ipu" not in e.marks for e in entries)


def test_select_accepts_hub_ids_beyond_the_profile() -> None:
    profile = select(load_profile("smoke"), models=["my-org/my-model"])
    assert [e.config.model.name for e in expand(profile)] == ["my-org/my-model"]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"backend": "troch"}, "unknown backend 'troch' (did you mean 'torch'?)"),
    ({"backend": "ipu", "pods": ["pod17"]}, "unknown pod 'pod17' (did you mean 'pod16'?)"),
    ({"pods": ["gpu"]}, "unknown device 'gpu' (did you mean 'cpu'?)"),
    ({"models": ["tiny-robert"]}, "unknown model 'tiny-robert' (did you mean 'tiny-"),
])
def test_select_unknown_names(kwargs: dict, fragment: str) -> None:
    with pytest.raises(QABenchError) as info:
        select(load_profile("smoke"), **kwargs)
    assert fragment in str(info.value)


def test_select_pod_valid_for_other_backend_only() -> None:
    with pytest.raises(QABenchError, match="unknown pod 'cpu'"):
        select(load_profile("smoke"), backend="ipu", pods=["cpu"])
    assert "pod16" in IPUBackend.SLOTS


def test_unknown_profile_name() -> None:
    with pytest.raises(QABenchError, match=r"unknown profile 'smok' \(did you mean 'smoke'\?\)"):
        load_profile("smok")
    with pytest.raises(QABenchError, match="unknown profile 'zzzz' .*nightly"):
        load_profile("zzzz")


GOOD = """\
description = "test"
backend = "torch"
models = ["tiny-bert"]
pods = ["cpu"]
datasets = ["synthetic"]
"""


def write_profile(tmp_path: Path, text: str) -> str:
    path = tmp_path / "custom.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_custom_profile_file(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, GOOD + "[defaults.train]\nmax_steps = 4\n"))
    (entry,) = expand(profile)
    assert entry.config.train.max_steps == 4
    assert profile.seeds == [42]


@pytest.mark.parametrize("text, fragment", [
    (GOOD + "datsets = ['squad']\n", "unknown key 'datsets' (did you mean 'datasets'?)"),
    (GOOD + "[defaults.train]\nlearnig_rate = 1\n",
     "unknown config key 'train.learnig_rate' (did you mean 'learning_rate'?)"),
    (GOOD + "[defaults.trian]\nseed = 1\n", "did you mean 'train'?"),
    (GOOD + "[defaults.train]\nlearning_rate = 'fast'\n", "train.learning_rate expects float"),
    (GOOD + "[model.tiny-bert.model]\nvocab_sise = 10\n", "did you mean 'vocab_size'?"),
    (GOOD + "models = [\n", "not valid TOML"),
    ("backend = \n", "not valid TOML"),
    (GOOD.replace('models = ["tiny-bert"]', "models = []"), "'models' must be a non-empty list"),
    (GOOD.replace('pods = ["cpu"]\n', ""), "'pods' must be a non-empty list"),
])
def test_bad_profile_files(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(QABenchError) as info:
        load_profile(write_profile(tmp_path, text))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)  # one line on the terminal


def test_profile_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(GOOD.replace("test", "caf\u00e9").encode("latin-1"))
    with pytest.raises(QABenchError, match="profile '.*latin1.toml' is not UTF-8 text"):
        load_profile(str(path))
