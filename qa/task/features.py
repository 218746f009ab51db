"""Tokenised features with an on-disk cache.

The cache key is (dataset fingerprint, tokenizer content, preprocessing settings, split), so a
second run over the same data skips tokenisation; any change to one of them misses the cache.
Features are stored as Arrow files (``Dataset.save_to_disk``), never pickled; beside them, the
preprocessing fast path's counts (``fast_path.json``), so a cached split still reports them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.config.schema import DataConfig
from qa.task.preprocessing import FastPathStats

log = logging.getLogger("qa")

# Bump when preprocessing changes what it produces, so old caches are not reused.
FEATURES_VERSION = "1"
# The fast path's counts for one cached split.
FAST_PATH_FILE = "fast_path.json"


def tokenizer_digest(tokenizer: Any) -> str:
    """Hash of a fast tokenizer's full definition (vocab, normaliser, post-processor)."""
    text = tokenizer.backend_tokenizer.to_str() + f"|{tokenizer.padding_side}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def feature_cache_key(fingerprint: str, tokenizer: Any, config: DataConfig, split: str,
                      function: Callable) -> str:
    """Key of one split's features in the cache."""
    raw = json.dumps({"data": fingerprint, "tokenizer": tokenizer_digest(tokenizer),
                      "max_length": config.max_length, "doc_stride": config.doc_stride,
                      "split": split, "function": function.__name__,
                      "version": FEATURES_VERSION}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def tokenize_split(split: Any, tokenizer: Any, function: Callable, config: DataConfig,
                   fingerprint: str, cache_dir: Path | None, name: str,
                   stats: FastPathStats | None = None) -> Any:
    """Features of one split, from the cache when present, else tokenised and cached.

    Args:
        split: the examples (``datasets.Dataset``).
        tokenizer: a fast tokenizer.
        function: ``prepare_train_features`` or ``prepare_validation_features``.
        config: max_length / doc_stride.
        fingerprint: the dataset fingerprint (hash of the source files and settings).
        cache_dir: cache root; None disables caching.
        name: split name (part of the key).
        stats: receives the fast path's batch and fallback counts (read back from the cache
            on a hit; absent for caches written before they were recorded).
    """
    from datasets import load_from_disk

    path = None
    if cache_dir is not None:
        key = feature_cache_key(fingerprint, tokenizer, config, name, function)
        path = Path(cache_dir) / "features" / key
        if (path / "dataset_info.json").exists():
            log.info("features for %s from cache %s", name, path)
            if stats is not None and (path / FAST_PATH_FILE).exists():
                stats.merge(FastPathStats.from_dict(
                    json.loads((path / FAST_PATH_FILE).read_text(encoding="utf-8"))))
            return load_from_disk(str(path))
    counts = FastPathStats()
    features = split.map(
        function,
        batched=True,
        remove_columns=split.column_names,
        fn_kwargs={"tokenizer": tokenizer, "max_length": config.max_length,
                   "doc_stride": config.doc_stride, "stats": counts},
        desc=f"tokenise {name}",
        load_from_cache_file=False,
    )
    log.debug("features for %s: %d batches, %d encoded pair by pair (fast path rejected: %s)",
              name, counts.batches, counts.fallbacks, counts.reasons or "never")
    if stats is not None:
        stats.merge(counts)
    if path is not None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        features.save_to_disk(str(tmp))
        (tmp / FAST_PATH_FILE).write_text(json.dumps(counts.to_dict()), encoding="utf-8")
        try:
            tmp.rename(path)
        except OSError:  # another process (a torchrun rank) cached the same features first
            shutil.rmtree(tmp, ignore_errors=True)
        features = load_from_disk(str(path))
    return features
