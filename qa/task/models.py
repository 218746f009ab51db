"""Tokenizer and model factory.

Three kinds of model:
* hub ids or local checkpoint folders, through the Auto classes (``trust_remote_code`` off unless
  the config says otherwise);
* pretrained checkpoints shipped in an optional package (``all-minilm-l6-v2``,
  ``qa.task.packaged``): extracted once into the cache, loaded with ``from_pretrained`` and the
  checkpoint's own ``tokenizer.json``, with only the QA head newly initialised (checked);
* tiny models built here from a config (``tiny-roformer``, the embedded default, and ``tiny-bert``)
  with a WordPiece tokenizer trained locally on the training text (or read from a ``vocab.txt``),
  cached on disk by content hash so a second run does not retrain it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.config.schema import ModelConfig, TrainConfig
from qa.errors import HubUnreachableError, QABenchError
from qa.task import packaged

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]


@dataclass(frozen=True)
class TinySpec:
    """Architecture of a tiny model built from a config (no pretrained weights)."""

    model_type: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512


# The prototype measured on 2 cores: a tiny BERT plateaued at EM 65-69 (learned absolute positions),
# a RoFormer of the same size (rotary positions) reached EM 99.4 at 384/128 — hence the default.
# Here, on synthetic generator v7 (smoke profile, 6 epochs): EM 95.5 / 91.5 / 92.25 (seeds 42-44).
TINY_MODELS: dict[str, TinySpec] = {
    "tiny-roformer": TinySpec("roformer", 128, 2, 4, 256),
    "tiny-bert": TinySpec("bert", 128, 2, 4, 256),
    # BERT-base's architecture with random weights: the shape to measure throughput and MFU
    # (e.g. on a GPU) without a checkpoint; not a model to judge EM/F1 by.
    "bert-base-random": TinySpec("bert", 768, 12, 12, 3072),
}


def cache_root(config: ModelConfig | None = None) -> Path:
    """Cache folder: ``config.cache_dir``, else ``$QA_BENCH_CACHE``, else ~/.cache/qa-bench."""
    if config is not None and config.cache_dir:
        return Path(config.cache_dir)
    env = os.environ.get("QA_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "qa-bench"


def is_tiny(name: str) -> bool:
    """Whether ``name`` is one of the tiny models built here."""
    return name in TINY_MODELS


def tokenizer_from_vocab(vocab_file: str | os.PathLike, lowercase: bool = True) -> Any:
    """A BERT-style fast tokenizer from a WordPiece ``vocab.txt``.

    Built from the ``tokenizers`` pieces because in transformers 5.x
    ``BertTokenizerFast(vocab_file=...)`` silently ignores the file.

    Raises:
        QABenchError: the file cannot be read or lacks the BERT special tokens.
    """
    try:
        lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QABenchError(f"cannot read vocab file {vocab_file}: {exc}") from None
    vocab = {token: index for index, token in enumerate(lines)}
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise QABenchError(f"vocab file {vocab_file} lacks special tokens {missing}")
    from tokenizers import Tokenizer, models

    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    return wrap_tokenizer(_bert_pipeline(backend, vocab, lowercase))


def _bert_pipeline(backend: Any, vocab: dict[str, int], lowercase: bool) -> Any:
    from tokenizers import decoders, normalizers, pre_tokenizers, processors

    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def wrap_tokenizer(backend: Any) -> Any:
    """A transformers fast tokenizer around a ``tokenizers.Tokenizer`` with BERT's special tokens
    (right padding, token type ids)."""
    from transformers import PreTrainedTokenizerFast

    # model_input_names must be explicit: without it a tokenizer rebuilt from tokenizer.json
    # returns no token_type_ids.
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_input_names=MODEL_INPUT_NAMES,
    )


def train_wordpiece(
    texts: Iterable[str], vocab_size: int, lowercase: bool = True, cache_dir: Path | None = None
) -> Any:
    """Train (or load from the cache) a WordPiece tokenizer on ``texts``.

    The cache key is a hash of the texts and settings: the same data never trains twice.
    """
    texts = list(texts)
    digest = hashlib.sha256()
    digest.update(f"wordpiece-v1|{vocab_size}|{lowercase}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    path = (cache_dir or cache_root()) / "tokenizers" / f"{digest.hexdigest()[:20]}.json"
    from tokenizers import Tokenizer, models, trainers

    if path.exists():
        return wrap_tokenizer(Tokenizer.from_file(str(path)))
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # Normaliser and pre-tokeniser must be in place before training; the post-processor needs
    # the trained ids of [CLS]/[SEP], so it is set afterwards.
    from tokenizers import normalizers, pre_tokenizers

    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=None)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    backend.train_from_iterator(texts, trainer=trainer)
    backend = _bert_pipeline(backend, backend.get_vocab(), lowercase)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    backend.save(str(tmp))
    os.replace(tmp, path)
    return wrap_tokenizer(backend)


def build_tiny_model(name: str, vocab_size: int, train: TrainConfig, max_length: int,
                     attn_implementation: str | None = None) -> Any:
    """A randomly initialised QA model of the named spec, seeded by ``train.seed``."""
    import torch
    from transformers import AutoModelForQuestionAnswering, BertConfig, RoFormerConfig

    spec = TINY_MODELS[name]
    common = dict(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=max(spec.max_position_embeddings, max_length),
        hidden_dropout_prob=train.dropout,
        attention_probs_dropout_prob=train.dropout,
        type_vocab_size=2,
        pad_token_id=0,
    )
    if spec.model_type == "roformer":
        config = RoFormerConfig(embedding_size=spec.hidden_size, **common)
    else:
        config = BertConfig(**common)
    torch.manual_seed(train.seed)
    return _attention_checked(name, attn_implementation, lambda **kw: (
        AutoModelForQuestionAnswering.from_config(config, **kw)))


def _attention_checked(name: str, attn_implementation: str | None, build: Any) -> Any:
    """``build(attn_implementation=...)``, turning "not supported" into a one-line error."""
    if attn_implementation is None:
        return build()
    try:
        return build(attn_implementation=attn_implementation)
    except (ValueError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise QABenchError(f"model {name!r} with attn_implementation={attn_implementation!r}: "
                           f"{first}") from None


def load(config: ModelConfig, train: TrainConfig, texts: Iterable[str] | None = None,
         max_length: int = 384, report: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Build or load ``(tokenizer, model)`` for a run.

    Args:
        config: which model.
        train: seed and dropout for tiny models.
        texts: training text to fit a WordPiece tokenizer on (tiny models without a vocab file).
        max_length: longest sequence the model must accept.
        report: filled with where a pretrained model's weights came from and what loaded.

    Raises:
        QABenchError: unknown name offline, unreadable vocab, missing training text, an absent or
            altered packaged checkpoint, or pretrained weights that did not load.
    """
    if is_tiny(config.name):
        if config.vocab_file:
            tokenizer = tokenizer_from_vocab(config.vocab_file, config.lowercase)
        elif texts is None:
            raise QABenchError(f"{config.name} needs training text or model.vocab_file")
        else:
            tokenizer = train_wordpiece(texts, config.vocab_size, config.lowercase,
                                        cache_root(config))
        model = build_tiny_model(config.name, len(tokenizer), train, max_length,
                                 config.attn_implementation)
        return tokenizer, model
    if packaged.is_packaged(config.name):
        tokenizer, model, loaded = load_packaged(packaged.PACKAGED[config.name],
                                                 cache_root(config), train.seed,
                                                 config.attn_implementation)
    else:
        tokenizer, model = _load_pretrained(config)
        loaded = {}
    if config.reinit_weights:
        model = reinitialised(model, train.seed)
        loaded["reinit_weights"] = True
    if report is not None:
        report.update(loaded)
    return tokenizer, model


def load_packaged(spec: packaged.PackagedModel, cache: Path, seed: int,
                  attn_implementation: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """``(tokenizer, model, report)`` of a packaged checkpoint with a new QA head.

    The tokenizer is the checkpoint's own ``tokenizer.json`` (a fast tokenizer, right padding,
    token type ids); the model ``AutoModelForQuestionAnswering.from_pretrained`` of the extracted
    folder, where only the QA head (``qa_outputs``) may be newly initialised: anything else
    missing means the weights were not (all) loaded, an error here (``packaged.check_loaded``),
    never a quiet fine-tune from random weights.

    Raises:
        QABenchError: the package is absent or altered, or the weights did not load.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    folder = packaged.extract(spec, cache)
    tokenizer = checkpoint_tokenizer(folder / "tokenizer.json")
    torch.manual_seed(seed)  # the new head's initial weights follow the run's seed
    try:
        model, info = _attention_checked(spec.name, attn_implementation, lambda **kw: (
            AutoModelForQuestionAnswering.from_pretrained(str(folder), output_loading_info=True,
                                                          **kw)))
    except OSError as exc:
        raise QABenchError(f"cannot load {spec.name} from {folder}: {exc}") from None
    report = {**spec.provenance(), **packaged.check_loaded(model, info, len(tokenizer))}
    return tokenizer, model, report


def checkpoint_tokenizer(path: Path) -> Any:
    """A fast tokenizer from a checkpoint's ``tokenizer.json``, as its model was trained with.

    The file's own padding and truncation (all-MiniLM-L6-v2's: fixed 128 tokens) are switched
    off: preprocessing sets both per call, and a tokenizer that quietly cut every pair to 128
    tokens elsewhere would make a worse model, not an error.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(path))
    backend.no_padding()
    backend.no_truncation()
    return wrap_tokenizer(backend)


def reinitialised(model: Any, seed: int) -> Any:
    """The same architecture with every weight drawn afresh (seeded): ``model.reinit_weights``,
    the control that shows what the pretrained weights are worth."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(seed)
    config = model.config
    return AutoModelForQuestionAnswering.from_config(
        config, attn_implementation=getattr(config, "_attn_implementation", None))


def _load_pretrained(config: ModelConfig) -> tuple[Any, Any]:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    local = Path(config.name).is_dir()
    if not local and ("/" in config.name and config.name.startswith((".", "/"))):
        raise QABenchError(f"model folder {config.name} does not exist")
    kwargs = {"trust_remote_code": config.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.name, **kwargs)
        model = _attention_checked(config.name, config.attn_implementation, lambda **kw: (
            AutoModelForQuestionAnswering.from_pretrained(config.name, **kwargs, **kw)))
    except OSError as exc:
        if local:
            raise QABenchError(f"cannot load model from {config.name}: {exc}") from None
        choices = ", ".join(TINY_MODELS)
        raise HubUnreachableError(
            f"cannot load model {config.name!r} from the hub (offline or unknown id); use a local "
            f"checkpoint folder or a built-in tiny model ({choices})"
        ) from None
    return tokenizer, model


def parameter_count(model: Any) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
