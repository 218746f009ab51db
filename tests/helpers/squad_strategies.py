"""Hypothesis strategies and tokenizers shared by the property tests.

The tokenizers are the two kinds qa-bench ships features for: BERT-style WordPiece
(``qa.task.models.tokenizer_from_vocab``, as for bert-base-uncased and the tiny models) and a
RoBERTa-style byte-level BPE with RoBERTa's post-processor (``<s> A </s></s> B </s>``, trimmed
offsets), trained here on a small corpus because no hub is reachable.
"""

from __future__ import annotations

import functools
import string
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from qa.task.models import SPECIAL_TOKENS, tokenizer_from_vocab

# In-vocabulary words (single WordPiece tokens) ...
VOCAB_WORDS = ("the", "king", "river", "city", "north", "old", "new", "bank", "ship", "sea",
               "town", "court", "school", "bridge", "tower", "was", "is", "by", "of", "in",
               "built", "ruled", "named", "1066", "1990")
# ... and words that split into pieces, become [UNK], or change under normalisation: accents,
# CJK, emoji, ligatures, combining marks, punctuation inside words, digits.
OTHER_WORDS = ("xyzzy", "naïve", "Ünïcödé", "東京", "😀", "ﬁne", "e\u0301te", "co-op", "don't",
               "3.14", "$5", "(x)", "Straße", "İstanbul", "KING", "a.b.c", "¿qué?")
# Runs of whitespace of several kinds (the tokenizers split on all of them).
SEPARATORS = (" ", " ", " ", "  ", "\t", "\n", " \n ", "\u00a0", "\u2009", "\u3000", " \u200b ")

# (max_length, doc_stride) pairs: the notebook's, and small ones that make many windows.
SHAPES = ((384, 128), (64, 16), (48, 16), (40, 12), (32, 8), (24, 4))
# (padding_side, truncation_side)
SIDES = (("right", "right"), ("left", "left"), ("right", "left"), ("left", "right"))


@functools.cache
def bert_tokenizer(padding_side: str = "right", truncation_side: str = "right") -> Any:
    """A BERT-style WordPiece tokenizer over a small vocab (other words split into letters)."""
    pieces = [*string.ascii_lowercase, *("##" + c for c in string.ascii_lowercase)]
    vocab = [*SPECIAL_TOKENS, *string.punctuation, *string.digits, *pieces, *VOCAB_WORDS]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vocab.txt"
        path.write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
        tokenizer = tokenizer_from_vocab(path)
    tokenizer.padding_side, tokenizer.truncation_side = padding_side, truncation_side
    return tokenizer


@functools.cache
def roberta_tokenizer(padding_side: str = "right", truncation_side: str = "right") -> Any:
    """A RoBERTa-style tokenizer: byte-level BPE, ``RobertaProcessing`` with trimmed offsets."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [" ".join(VOCAB_WORDS), " ".join(OTHER_WORDS)] * 20
    backend.train_from_iterator(corpus, trainer)
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>")),
        trim_offsets=True, add_prefix_space=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_input_names=["input_ids", "attention_mask"])
    tokenizer.padding_side, tokenizer.truncation_side = padding_side, truncation_side
    return tokenizer


TOKENIZERS = {"bert": bert_tokenizer, "roberta": roberta_tokenizer}


@functools.cache
def _plain(tokenizer: Any) -> Any:
    """A copy of the tokenizer's backend without truncation or padding: the shared one keeps
    whatever the last ``tokenizer(...)`` call set (the seed's call pads to max_length)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    return backend


def encode_plain(tokenizer: Any, text: str) -> Any:
    """``text`` encoded alone, without special tokens, truncation or padding."""
    return _plain(tokenizer).encode(text, add_special_tokens=False)


def token_count(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` encoded alone, without special tokens."""
    return len(_plain(tokenizer).encode(text, add_special_tokens=False).ids)


def token_offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of the (non-empty) tokens of ``text`` encoded alone."""
    encoding = _plain(tokenizer).encode(text, add_special_tokens=False)
    return [o for o in encoding.offsets if o[1] > o[0]]


def texts(min_words: int, max_words: int) -> st.SearchStrategy[str]:
    """Words joined by whitespace runs, sometimes with whitespace before or after."""
    word = st.one_of(st.sampled_from(VOCAB_WORDS), st.sampled_from(OTHER_WORDS))
    gap = st.sampled_from(SEPARATORS)
    return st.builds(
        lambda edge, pairs, tail: edge + "".join(w + g for w, g in pairs)[:-1] + tail,
        st.sampled_from(("", "", " ", "\n ")),
        st.lists(st.tuples(word, gap), min_size=min_words, max_size=max_words),
        st.sampled_from(("", "", " ", ".")))


def _fits(tokenizer: Any, question: str, max_length: int, doc_stride: int) -> bool:
    """Whether the tokenizer itself accepts the question beside an overflowing context (room
    for the context must exceed the stride)."""
    special = tokenizer.backend_tokenizer.num_special_tokens_to_add(True)
    return token_count(tokenizer, question.lstrip()) + special + doc_stride < max_length


def window_edges(n_tokens: int, q_tokens: int, special: int, max_length: int,
                 doc_stride: int) -> list[int]:
    """Context token indices on or next to a window's first or last token, both cut directions."""
    room = max_length - special - q_tokens
    if n_tokens <= room:
        return [0, n_tokens - 1]
    step = room - doc_stride
    edges = set()
    for k in range(0, n_tokens // max(step, 1) + 2):
        for first in (k * step, n_tokens - k * step - room):  # right cut, left cut
            edges.update({first - 1, first, first + 1, first + room - 2, first + room - 1,
                          first + room})
    return sorted(e for e in edges if 0 <= e < n_tokens)


@st.composite
def answers_for(draw: st.DrawFn, context: str, tokenizer: Any, q_tokens: int, max_length: int,
                doc_stride: int) -> dict[str, list]:
    """No answer, or one to three: a token span starting at a window edge or anywhere, or any
    character span; only the first is labelled."""
    backend = tokenizer.backend_tokenizer
    offsets = token_offsets(tokenizer, context)
    if not offsets or draw(st.integers(0, 5)) == 0:
        return {"text": [], "answer_start": []}
    edges = window_edges(len(offsets), q_tokens, backend.num_special_tokens_to_add(True),
                         max_length, doc_stride)
    spans = []
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(("edge", "edge", "token", "chars")))
        if how == "chars":
            start = draw(st.integers(0, len(context) - 1))
            end = draw(st.integers(start + 1, min(len(context), start + 40)))
        else:
            first = draw(st.sampled_from(edges) if how == "edge" else
                         st.integers(0, len(offsets) - 1))
            last = min(len(offsets) - 1, first + draw(st.integers(0, 3)))
            start, end = offsets[first][0], offsets[last][1]
        spans.append((start, end))
    return {"text": [context[s:e] for s, e in spans], "answer_start": [s for s, _ in spans]}


@st.composite
def squad_batches(draw: st.DrawFn, tokenizer: Any, max_length: int, doc_stride: int,
                  max_examples: int = 6) -> dict[str, list]:
    """A batch in the SQuAD columns layout: up to three contexts shared by up to
    ``max_examples`` questions (the fast path encodes each distinct context once)."""
    contexts = draw(st.lists(texts(1, 70), min_size=1, max_size=3))
    columns: dict[str, list] = {"id": [], "question": [], "context": [], "answers": []}
    for i in range(draw(st.integers(1, max_examples))):
        context = draw(st.sampled_from(contexts))
        question = draw(texts(1, 12)).strip() + "?"
        while len(question) > 1 and not _fits(tokenizer, question, max_length, doc_stride):
            question = question[: len(question) // 2].rstrip()
        question = draw(st.sampled_from(("", " ", "   "))) + question  # the seed lstrips it
        q_tokens = token_count(tokenizer, question.lstrip())
        columns["id"].append(f"q{i}")
        columns["question"].append(question)
        columns["context"].append(context)
        columns["answers"].append(draw(answers_for(context, tokenizer, q_tokens, max_length,
                                                   doc_stride)))
    return columns
