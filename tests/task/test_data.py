"""Data loading: SQuAD JSON validation, HF columns, synthetic data, fingerprints, offline hub."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from qa.config.schema import DataConfig
from qa.errors import HubUnreachableError, QABenchError
from qa.task.data import SQUAD_FILES, load, read_squad_json

CONTEXT = "Ada Lovelace was born in London in 1815. She worked with Charles Babbage."


def qa(qid: str, question: str, text: str | None, start: int | None = None,
       impossible: bool | None = None) -> dict[str, Any]:
    """One question; ``text=None`` is unanswerable. ``start`` defaults to the text's position."""
    answers = [] if text is None else [
        {"text": text, "answer_start": CONTEXT.index(text) if start is None else start}]
    entry: dict[str, Any] = {"id": qid, "question": question, "answers": answers}
    if impossible is not None:
        entry["is_impossible"] = impossible
    return entry


def squad(*qas: dict[str, Any], context: str = CONTEXT, title: str = "Ada",
          version: str = "1.1") -> dict[str, Any]:
    return {"version": version,
            "data": [{"title": title, "paragraphs": [{"context": context, "qas": list(qas)}]}]}


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


V1 = squad(qa("q1", "Where was Ada born?", "London"), qa("q2", "When was she born?", "1815"))
V2 = squad(qa("q1", "Where was Ada born?", "London", impossible=False),
           qa("q2", "Where was Babbage born?", None, impossible=True), version="v2.0")


# ------------------------------------------------------------------------- read_squad_json


def test_v1_records(tmp_path: Path) -> None:
    records = read_squad_json(write(tmp_path / "v1.json", V1))
    assert [r["id"] for r in records] == ["q1", "q2"]
    first = records[0]
    assert first["title"] == "Ada"
    assert first["context"] == CONTEXT
    assert first["question"] == "Where was Ada born?"
    assert first["answers"] == {"text": ["London"], "answer_start": [25]}
    assert CONTEXT[25:31] == "London"


def test_v2_records_keep_unanswerable_questions(tmp_path: Path) -> None:
    path = write(tmp_path / "v2.json", V2)
    for version_2 in (True, None):  # explicit, and inferred from is_impossible
        records = read_squad_json(path, version_2=version_2)
        by_id = {r["id"]: r for r in records}
        assert by_id["q2"]["answers"] == {"text": [], "answer_start": []}
        assert by_id["q1"]["answers"]["text"] == ["London"]


def test_unanswerable_question_in_v1_dataset(tmp_path: Path) -> None:
    path = write(tmp_path / "v2.json", V2)
    with pytest.raises(QABenchError, match="'q2'.*unanswerable.*not SQuAD v2"):
        read_squad_json(path, version_2=False)


def test_question_without_answer_in_v1_dataset(tmp_path: Path) -> None:
    path = write(tmp_path / "none.json", squad(qa("q1", "Who?", None)))
    with pytest.raises(QABenchError, match="'q1' has no answer"):
        read_squad_json(path, version_2=False)


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n  {"title": ', encoding="utf-8")
    with pytest.raises(QABenchError,
                       match=r"bad\.json' is not valid JSON: malformed JSON at line 2"):
        read_squad_json(path)


@pytest.mark.parametrize("document, fragment", [
    ([1, 2, 3], "not SQuAD layout"),
    ({"version": "1.1", "articles": []}, "not SQuAD layout"),
    ({"data": [{"title": "x"}]}, r"data\[0\] has no 'paragraphs'"),
    ({"data": [{"title": "x", "paragraphs": [{"context": "c"}]}]}, "has no 'qas'"),
    ({"data": [{"title": "x", "paragraphs": [{"context": "c", "qas": ["q"]}]}]},
     "not an object"),
    ({"data": []}, "no questions"),
])
def test_not_squad_layout(tmp_path: Path, document: Any, fragment: str) -> None:
    with pytest.raises(QABenchError, match=fragment):
        read_squad_json(write(tmp_path / "layout.json", document))


def test_answer_not_at_answer_start_names_the_question(tmp_path: Path) -> None:
    path = write(tmp_path / "shifted.json", squad(qa("q-london", "Where?", "London", start=20)))
    with pytest.raises(QABenchError, match="'q-london'.*'London'.*answer_start 20") as info:
        read_squad_json(path)
    assert repr(CONTEXT[20:26]) in str(info.value)  # says what is there instead


@pytest.mark.parametrize("start", [-8, len(CONTEXT), 10_000])
def test_answer_start_out_of_range(tmp_path: Path, start: int) -> None:
    # A negative start must not "find" the text by slicing from the end of the context.
    tail = CONTEXT[-8:-3]
    path = write(tmp_path / "range.json", squad(qa("q1", "What?", tail, start=start)))
    with pytest.raises(QABenchError, match="'q1'"):
        read_squad_json(path)


def test_empty_answer_text(tmp_path: Path) -> None:
    path = write(tmp_path / "empty_answer.json", squad(qa("q1", "What?", "", start=3)))
    with pytest.raises(QABenchError, match="'q1'"):
        read_squad_json(path)


def test_answer_without_int_start(tmp_path: Path) -> None:
    document = squad({"id": "q1", "question": "Where?",
                      "answers": [{"text": "London", "answer_start": "25"}]})
    with pytest.raises(QABenchError, match="'q1'.*int answer_start"):
        read_squad_json(write(tmp_path / "str_start.json", document))


@pytest.mark.parametrize("context", ["", "   \n", None])
def test_empty_context(tmp_path: Path, context: str | None) -> None:
    document = squad(qa("q1", "Where?", None))
    document["data"][0]["paragraphs"][0]["context"] = context
    with pytest.raises(QABenchError, match=r"paragraphs\[0\] has an empty or missing context"):
        read_squad_json(write(tmp_path / "ctx.json", document))


@pytest.mark.parametrize("question", ["", "  ", None])
def test_empty_question(tmp_path: Path, question: str | None) -> None:
    document = squad(qa("q-empty", "placeholder", "London"))
    document["data"][0]["paragraphs"][0]["qas"][0]["question"] = question
    with pytest.raises(QABenchError, match="question 'q-empty' is empty"):
        read_squad_json(write(tmp_path / "question.json", document))


def test_duplicate_id(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.json", squad(qa("same", "Where?", "London"),
                                              qa("same", "When?", "1815")))
    with pytest.raises(QABenchError, match="duplicate question id 'same'"):
        read_squad_json(path)


def test_duplicate_id_across_paragraphs(tmp_path: Path) -> None:
    document = squad(qa("same", "Where?", "London"))
    document["data"].append({"title": "Other", "paragraphs": [
        {"context": CONTEXT, "qas": [qa("same", "When?", "1815")]}]})
    with pytest.raises(QABenchError, match=r"data\[1\].*duplicate question id 'same'"):
        read_squad_json(write(tmp_path / "dup2.json", document))


@pytest.mark.parametrize("qid", [None, "", 17])
def test_missing_id(tmp_path: Path, qid: Any) -> None:
    entry = qa("x", "Where?", "London")
    if qid is None:
        del entry["id"]
    else:
        entry["id"] = qid
    with pytest.raises(QABenchError, match="a question has no id"):
        read_squad_json(write(tmp_path / "noid.json", squad(entry)))


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(V1).replace("Ada", "Ad\u00e9").encode("latin-1"))
    with pytest.raises(QABenchError, match="latin1.json' is not UTF-8"):
        read_squad_json(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(QABenchError, match="cannot read .*nope.json"):
        read_squad_json(tmp_path / "nope.json")


def test_unicode_context_offsets_are_characters(tmp_path: Path) -> None:
    context = "Zoë Ñúñez lives in Zürich."
    document = squad({"id": "u", "question": "Where?",
                      "answers": [{"text": "Zürich", "answer_start": context.index("Zürich")}]},
                     context=context)
    record = read_squad_json(write(tmp_path / "utf8.json", document))[0]
    assert record["answers"]["answer_start"] == [19]


# ----------------------------------------------------------------------------------- load


def test_load_files_gives_hub_columns(tmp_path: Path) -> None:
    config = DataConfig(train_file=str(write(tmp_path / "t.json", V1)),
                        validation_file=str(write(tmp_path / "v.json", V1)))
    splits, fingerprint = load(config, tmp_path / "cache")
    assert set(splits) == {"train", "validation"}
    train = splits["train"]
    assert train.column_names == ["id", "title", "context", "question", "answers"]
    assert set(train.features["answers"]) == {"text", "answer_start"}
    assert train[0]["answers"] == {"text": ["London"], "answer_start": [25]}
    assert len(splits["validation"]) == 2
    assert len(fingerprint) == 16


def test_load_v2_files(tmp_path: Path) -> None:
    config = DataConfig(train_file=str(write(tmp_path / "t.json", V2)),
                        validation_file=str(write(tmp_path / "v.json", V2)), version_2=True)
    splits, _ = load(config, tmp_path / "cache")
    assert splits["validation"][1]["answers"] == {"text": [], "answer_start": []}


def test_load_v1_config_rejects_unanswerable_file(tmp_path: Path) -> None:
    config = DataConfig(train_file=str(write(tmp_path / "t.json", V2)),
                        validation_file=str(write(tmp_path / "v.json", V2)))
    with pytest.raises(QABenchError, match="not SQuAD v2"):
        load(config, tmp_path / "cache")


def test_load_needs_both_files(tmp_path: Path) -> None:
    config = DataConfig(train_file=str(write(tmp_path / "t.json", V1)))
    with pytest.raises(QABenchError, match="given together"):
        load(config, tmp_path / "cache")


def test_load_max_samples(tmp_path: Path) -> None:
    path = str(write(tmp_path / "t.json", V1))
    config = DataConfig(train_file=path, validation_file=path, max_train_samples=1,
                        max_eval_samples=1)
    splits, _ = load(config, tmp_path / "cache")
    assert len(splits["train"]) == 1 and len(splits["validation"]) == 1


@pytest.mark.parametrize("dataset, unanswerable", [("synthetic", False), ("synthetic_v2", True)])
def test_load_synthetic(tmp_path: Path, dataset: str, unanswerable: bool) -> None:
    config = DataConfig(dataset=dataset, synthetic_train_contexts=6,
                        synthetic_validation_contexts=3)
    splits, fingerprint = load(config, tmp_path)
    questions = config.synthetic_questions
    assert len(splits["train"]) == 6 * questions and len(splits["validation"]) == 3 * questions
    assert not set(splits["train"]["id"]) & set(splits["validation"]["id"])
    answers = list(splits["train"]["answers"]) + list(splits["validation"]["answers"])
    empty = [a for a in answers if not a["text"]]
    assert bool(empty) == unanswerable
    files = sorted(p.name for p in (tmp_path / "synthetic").rglob("*.json"))
    assert files == ["train.json", "validation.json"]
    # Cached files are reused: a second load gives the same data and fingerprint.
    again, fingerprint_again = load(config, tmp_path)
    assert fingerprint_again == fingerprint
    assert list(again["train"]["context"]) == list(splits["train"]["context"])


def test_fingerprint_stable_and_sensitive(tmp_path: Path) -> None:
    train, val = write(tmp_path / "t.json", V1), write(tmp_path / "v.json", V1)
    config = DataConfig(train_file=str(train), validation_file=str(val))
    cache = tmp_path / "cache"
    first = load(config, cache)[1]
    assert load(config, cache)[1] == first
    assert load(DataConfig(train_file=str(train), validation_file=str(val), max_length=256),
                cache)[1] != first
    assert load(DataConfig(train_file=str(train), validation_file=str(val), doc_stride=64),
                cache)[1] != first
    changed = squad(qa("q1", "Where was Ada born, exactly?", "London"))
    write(val, changed)
    assert load(config, cache)[1] != first


def test_synthetic_fingerprint_follows_seed(tmp_path: Path) -> None:
    small = {"synthetic_train_contexts": 3, "synthetic_validation_contexts": 2}
    one = load(DataConfig(synthetic_seed=1, **small), tmp_path)[1]
    two = load(DataConfig(synthetic_seed=2, **small), tmp_path)[1]
    assert one != two


# ------------------------------------------------------------------------ local SQuAD dir


def dev_file(n_articles: int, version_2: bool = False) -> dict[str, Any]:
    articles = []
    for a in range(n_articles):
        context = f"Article {a} says that the river Alpha{a} flows into the sea at Beta{a}."
        qas = [{"id": f"a{a}-q{i}", "question": f"Where does Alpha{a} flow? ({i})",
                "answers": [{"text": f"Beta{a}", "answer_start": context.index(f"Beta{a}")}]}
               for i in range(2)]
        articles.append({"title": f"Article {a}", "paragraphs": [{"context": context,
                                                                  "qas": qas}]})
    return {"version": "v2.0" if version_2 else "1.1", "data": articles}


def test_dev_only_folder_is_split_by_article(tmp_path: Path) -> None:
    write(tmp_path / SQUAD_FILES["squad"][1], dev_file(5))
    config = DataConfig(dataset="squad", squad_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="train-v1.1.json not in .*4 of 5 dev articles"):
        splits, fingerprint = load(config, tmp_path / "cache")
    train, validation = splits["train"], splits["validation"]
    assert len(train) == 8 and len(validation) == 2
    assert not set(train["title"]) & set(validation["title"])
    assert not set(train["context"]) & set(validation["context"])
    assert not set(train["id"]) & set(validation["id"])

    # With the train file present the dev set is used whole for evaluation; the fingerprint
    # tells the two situations apart.
    write(tmp_path / SQUAD_FILES["squad"][0], dev_file(3))
    full, full_fingerprint = load(config, tmp_path / "cache")
    assert len(full["validation"]) == 10 and len(full["train"]) == 6
    assert full_fingerprint != fingerprint


def test_dev_only_squad_v2(tmp_path: Path) -> None:
    write(tmp_path / SQUAD_FILES["squad_v2"][1], dev_file(5, version_2=True))
    config = DataConfig(dataset="squad_v2", squad_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="train-v2.0.json not in"):
        splits, _ = load(config, tmp_path / "cache")
    assert len(splits["validation"]) == 2


def test_dev_only_folder_too_small_to_split(tmp_path: Path) -> None:
    write(tmp_path / SQUAD_FILES["squad"][1], dev_file(1))
    config = DataConfig(dataset="squad", squad_dir=str(tmp_path))
    with pytest.raises(QABenchError, match="dev-v1.1.json"):
        load(config, tmp_path / "cache")


def test_squad_dir_without_dev_file(tmp_path: Path) -> None:
    config = DataConfig(dataset="squad", squad_dir=str(tmp_path))
    with pytest.raises(QABenchError, match="dev-v1.1.json not found"):
        load(config, tmp_path / "cache")


# ---------------------------------------------------------------------------------- hub


def test_hub_name_offline_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # The libraries read the variables at import time: set their constants too.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    start = time.perf_counter()
    with pytest.raises(QABenchError) as info:
        load(DataConfig(dataset="qa-bench-tests/no-such-dataset"), tmp_path / "cache")
    assert time.perf_counter() - start < 30
    assert isinstance(info.value, HubUnreachableError)
    message = str(info.value)
    assert "no-such-dataset" in message and "--squad-dir" in message
    assert "\n" not in message
