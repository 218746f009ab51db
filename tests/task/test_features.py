"""The on-disk feature cache of ``qa.task.features``: hits skip preprocessing, any key change
misses."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa.config.schema import DataConfig
from qa.task import data
from qa.task.features import tokenize_split, tokenizer_digest
from qa.task.models import train_wordpiece
from qa.task.preprocessing import FastPathStats, prepare_train_features, prepare_validation_features

CONFIG = DataConfig(
    synthetic_train_contexts=24, synthetic_validation_contexts=8, max_length=128, doc_stride=32
)


class Counted:
    """A preprocessing function that counts its calls (a spy on the harness, not on the cache).

    ``functools.update_wrapper`` keeps the wrapped function's ``__name__``, which is part of the
    cache key, so the wrapper shares the cache entries of the function it wraps.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    """Small synthetic train/validation splits and their fingerprint."""
    return data.load(CONFIG, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def tokenizer(splits: tuple[Any, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    dataset, _ = splits
    texts = [*dict.fromkeys(dataset["train"]["context"]), *dataset["train"]["question"]]
    return train_wordpiece(texts, vocab_size=600, cache_dir=tmp_path_factory.mktemp("tok"))


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


@pytest.mark.parametrize(
    ("split", "function"),
    [("train", prepare_train_features), ("validation", prepare_validation_features)],
)
def test_second_call_is_served_from_the_cache(
    splits: tuple[Any, str], tokenizer: Any, tmp_path: Path, split: str, function: Callable
) -> None:
    dataset, fingerprint = splits
    spy = Counted(function)
    assert spy.__name__ == function.__name__

    counts = [FastPathStats(), FastPathStats()]

    def call() -> Any:
        return tokenize_split(dataset[split], tokenizer, spy, CONFIG, fingerprint, tmp_path, split,
                              counts[spy.calls > 0])

    first, first_s = _timed(call)
    calls = spy.calls
    assert calls > 0
    second, second_s = _timed(call)
    # A cached split still reports how its batches were encoded: all on the fast path.
    assert counts[1] == counts[0] == FastPathStats(calls, 0, {})
    print(
        f"\n{split} features ({len(first)} rows): first call {first_s * 1e3:.1f} ms "
        f"(tokenise + write), second {second_s * 1e3:.1f} ms (cache)"
    )
    assert spy.calls == calls, "the second call ran preprocessing instead of reading the cache"
    assert len(list((tmp_path / "features").iterdir())) == 1
    # The cached features are what preprocessing computes now, without any cache.
    fresh = tokenize_split(dataset[split], tokenizer, function, CONFIG, fingerprint, None, split)
    assert len(second) > len(dataset[split]), "no context overflowed: a weak comparison"
    assert second.column_names == fresh.column_names
    assert second.to_dict() == fresh.to_dict()
    direct = function(dataset[split][:], tokenizer, CONFIG.max_length, CONFIG.doc_stride)
    assert second["input_ids"] == direct["input_ids"]


def _changed_tokenizer(tokenizer: Any) -> Any:
    changed = type(tokenizer)(
        tokenizer_object=tokenizer.backend_tokenizer, **tokenizer.special_tokens_map
    )
    changed.add_tokens(["zyxwvut"])  # a different vocabulary
    return changed


CHANGES: dict[str, Callable[[Any, DataConfig, str], tuple[Any, DataConfig, str]]] = {
    "max_length": lambda tok, cfg, fp: (tok, replace(cfg, max_length=96), fp),
    "doc_stride": lambda tok, cfg, fp: (tok, replace(cfg, doc_stride=16), fp),
    "tokenizer": lambda tok, cfg, fp: (_changed_tokenizer(tok), cfg, fp),
    "fingerprint": lambda tok, cfg, fp: (tok, cfg, fp[::-1]),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_key_misses_the_cache(
    splits: tuple[Any, str], tokenizer: Any, tmp_path: Path, change: str
) -> None:
    dataset, fingerprint = splits
    digest = tokenizer_digest(tokenizer)
    spy = Counted(prepare_train_features)
    base = tokenize_split(dataset["train"], tokenizer, spy, CONFIG, fingerprint, tmp_path, "train")
    calls = spy.calls
    tok, config, fp = CHANGES[change](tokenizer, CONFIG, fingerprint)
    features = tokenize_split(dataset["train"], tok, spy, config, fp, tmp_path, "train")
    assert spy.calls > calls, f"a changed {change} was served from the cache"
    assert len(list((tmp_path / "features").iterdir())) == 2
    if change == "max_length":
        assert len(features["input_ids"][0]) == 96 != len(base["input_ids"][0])
    # The original key still hits (and the change left the shared tokenizer alone).
    assert tokenizer_digest(tokenizer) == digest
    calls = spy.calls
    tokenize_split(dataset["train"], tokenizer, spy, CONFIG, fingerprint, tmp_path, "train")
    assert spy.calls == calls
