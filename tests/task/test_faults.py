"""The injected faults (test equipment for the detection table) do what they say, and only
when asked."""

from __future__ import annotations

import pytest
from datasets import Dataset

from qa.errors import QABenchError
from qa.task import faults
from qa.task.models import train_wordpiece
from qa.task.preprocessing import prepare_validation_features


def test_nothing_is_injected_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    features = Dataset.from_dict({"start_positions": [3, 0], "end_positions": [4, 0]})
    assert faults.active() is None
    assert faults.train_features(features) is features


@pytest.mark.parametrize("fault", [None, "label_shift", "float64"])
def test_float64_casts_the_model_and_only_it_does(fault: str | None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if fault:
        monkeypatch.setenv(faults.ENV, fault)
    else:
        monkeypatch.delenv(faults.ENV, raising=False)
    net = faults.model(torch.nn.Linear(3, 2))
    want = torch.float64 if fault == "float64" else torch.float32
    assert {p.dtype for p in net.parameters()} == {want}


def test_unknown_fault_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.ENV, "label_shfit")
    with pytest.raises(QABenchError, match="unknown fault"):
        faults.active()


def test_label_shift_moves_answer_spans_not_cls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.ENV, "label_shift")
    features = Dataset.from_dict({"start_positions": [3, 0], "end_positions": [5, 0]})
    shifted = faults.train_features(features)
    assert shifted["start_positions"] == [4, 0] and shifted["end_positions"] == [6, 0]


def test_lowercase_mismatch_sends_capitalised_words_out_of_the_vocabulary(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    texts = ["Klaus was born in Berlin.", "Where was Klaus born?"] * 20
    clean = train_wordpiece(texts, 200, lowercase=True, cache_dir=tmp_path)
    monkeypatch.setenv(faults.ENV, "lowercase_mismatch")
    broken = faults.tokenizer(train_wordpiece(texts, 200, lowercase=True, cache_dir=tmp_path),
                              lowercase=True)
    assert "[UNK]" not in clean.tokenize("Klaus was born in Berlin.")
    assert broken.tokenize("Klaus was born in Berlin.").count("[UNK]") == 2


def test_sample_mapping_attributes_features_by_index(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path) -> None:
    tok = train_wordpiece(["word " * 50, "short context here"], 100, cache_dir=tmp_path)
    examples = Dataset.from_dict({"id": ["a", "b"], "question": ["q", "q"],
                                  "context": ["word " * 50, "short context here"]})
    features = examples.map(prepare_validation_features, batched=True,
                            remove_columns=examples.column_names,
                            fn_kwargs={"tokenizer": tok, "max_length": 32, "doc_stride": 8})
    assert features["example_id"][:3] == ["a", "a", "a"]  # the long context overflows
    monkeypatch.setenv(faults.ENV, "sample_mapping")
    broken = faults.validation_features(features, examples)
    assert broken["example_id"][:3] == ["a", "b", "b"]


def test_end_offsets_cut_every_answer_before_its_last_token(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path) -> None:
    import numpy as np

    from qa.task.postprocessing import postprocess_qa_predictions

    context = "Klaus was born in Berlin in 1970."
    tok = train_wordpiece([context, "Where was Klaus born?"] * 5, 200, cache_dir=tmp_path)
    examples = Dataset.from_dict({"id": ["a"], "question": ["Where was Klaus born?"],
                                  "context": [context]})
    features = examples.map(prepare_validation_features, batched=True,
                            remove_columns=examples.column_names,
                            fn_kwargs={"tokenizer": tok, "max_length": 64, "doc_stride": 16})
    words = [context[p[0]:p[1]] if p else None for p in features["offset_mapping"][0]]
    start = np.full((1, len(words)), -9.0)
    end = np.full((1, len(words)), -9.0)
    start[0, words.index("Berlin")], end[0, words.index("1970")] = 9.0, 9.0
    clean = postprocess_qa_predictions(examples, features, start, end)
    monkeypatch.setenv(faults.ENV, "end_offsets")
    broken = postprocess_qa_predictions(examples, faults.validation_features(features, examples),
                                        start, end)
    assert clean["a"] == "Berlin in 1970"
    assert broken["a"] == "Berlin in "
