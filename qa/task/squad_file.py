"""The one validator of official-layout SQuAD JSON files, for training and for ``evaluate``.

``{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``

Two modes over the same walk:

- ``strict`` (data loading): what training needs is an error when absent or wrong: a
  context, a question, unique ids, each answer found at its ``answer_start``, no unanswerable
  question in a v1.1 dataset.
- lenient (``qa-bench evaluate``): accepts what the official evaluate scripts accept. They read
  only ids and answer texts, so the checks above are skipped and counted in ``ignored`` (the
  caller says what it ignored); a missing id or answer text is still an error there too.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from qa.errors import QABenchError
from qa.files import read_json


@dataclass
class SquadFile:
    """A validated SQuAD file: its ``data`` list, flat records, and what lenient mode ignored."""

    data: list[Any]
    records: list[dict[str, Any]]
    ignored: Counter[str] = field(default_factory=Counter)


def read_squad_file(path: str | os.PathLike, version_2: bool | None = None,
                    strict: bool = True) -> SquadFile:
    """Read and validate an official-layout SQuAD file.

    Args:
        path: the file.
        version_2: allow unanswerable questions; None infers it from ``is_impossible`` fields.
        strict: training's checks (see the module docstring); False for ``evaluate``.

    Raises:
        QABenchError: one line naming the file and the place in it.
    """
    label = f"dataset file {str(path)!r}"
    document = read_json(path, "dataset")
    if not isinstance(document, dict):
        raise QABenchError(f"{label} is not SQuAD layout: it must be a JSON object with a "
                           f"'data' list, got {_kind(document)}")
    if "data" not in document:
        raise QABenchError(f"{label} is not SQuAD layout: it has no 'data' key")
    if not isinstance(document["data"], list):
        raise QABenchError(f"{label} is not SQuAD layout: 'data' must be a list, got "
                           f"{_kind(document['data'])}")
    walk = _Walk(label, version_2, strict)
    for a, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise QABenchError(f"{label}: data[{a}] has no 'paragraphs' list (not SQuAD layout)")
        title = str(article.get("title", ""))
        for p, paragraph in enumerate(paragraphs):
            walk.paragraph(paragraph, title, f"{label}: data[{a}].paragraphs[{p}]")
    if not walk.records:
        raise QABenchError(f"{label}: no questions in the file")
    return SquadFile(document["data"], walk.records, walk.ignored)


class _Walk:
    """The per-paragraph and per-question checks, collecting records."""

    def __init__(self, label: str, version_2: bool | None, strict: bool) -> None:
        self.label, self.version_2, self.strict = label, version_2, strict
        self.records: list[dict[str, Any]] = []
        self.ignored: Counter[str] = Counter()
        self.seen: set[str] = set()

    def lenient(self, what: str, message: str) -> None:
        """An error in strict mode; counted under ``what`` otherwise."""
        if self.strict:
            raise QABenchError(message)
        self.ignored[what] += 1

    def paragraph(self, paragraph: Any, title: str, where: str) -> None:
        if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
            raise QABenchError(f"{where} has no 'qas' list (not SQuAD layout)")
        context = paragraph.get("context")
        if not isinstance(context, str) or not context.strip():
            self.lenient("empty or missing context", f"{where} has an empty or missing context")
            context = context if isinstance(context, str) else ""
        for qa in paragraph["qas"]:
            self.records.append(self.question(qa, title, context, where))

    def question(self, qa: Any, title: str, context: str, where: str) -> dict[str, Any]:
        if not isinstance(qa, dict):
            raise QABenchError(f"{where}: a qas entry is not an object")
        qid = qa.get("id")
        if qid is None or qid == "":
            raise QABenchError(f"{where}: a question has no id")
        if not isinstance(qid, str):
            raise QABenchError(f"{where}: a question has no id (question id must be a string, "
                               f"got {_kind(qid)})")
        if qid in self.seen:
            self.lenient("duplicate question id", f"{where}: duplicate question id {qid!r}")
        self.seen.add(qid)
        question = qa.get("question")
        if not isinstance(question, str) or not question.strip():
            self.lenient("empty question", f"{where}: question {qid!r} is empty")
        answers = qa.get("answers", [] if self.strict else None)
        if not isinstance(answers, list):
            raise QABenchError(f"{where}: question {qid!r} has no 'answers' list")
        if qa.get("is_impossible") and self.version_2 is False:
            self.lenient("unanswerable question in a v1.1 dataset",
                         f"{where}: question {qid!r} is unanswerable but the dataset is not "
                         "SQuAD v2")
        texts, starts = [], []
        for answer in answers:
            text, start = self.answer(answer, qid, context, where)
            texts.append(text)
            starts.append(start)
        if not texts and not qa.get("is_impossible") and self.version_2 is False:
            self.lenient("question without an answer", f"{where}: question {qid!r} has no answer")
        return {"id": qid, "title": title, "context": context,
                "question": question if isinstance(question, str) else "",
                "answers": {"text": texts, "answer_start": starts}}

    def answer(self, answer: Any, qid: str, context: str, where: str) -> tuple[str, int]:
        text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise QABenchError(f"{where}: question {qid!r}: each answer needs a string 'text'"
                               + (" and an int answer_start" if self.strict else ""))
        if not isinstance(start, int) or isinstance(start, bool):
            self.lenient("answer without an int answer_start",
                         f"{where}: question {qid!r}: each answer needs a string 'text' and an "
                         "int answer_start")
            return text, -1
        if not text or start < 0:
            # An empty text "matches" anywhere, and a negative start slices from the end.
            self.lenient("answer that is empty or at a negative answer_start",
                         f"{where}: question {qid!r}: answer {text!r} at answer_start {start} "
                         "(needs non-empty text and answer_start >= 0)")
        elif context[start:start + len(text)] != text:
            found = context[start:start + len(text)]
            self.lenient("answer not at its answer_start",
                         f"{where}: question {qid!r}: answer {text!r} is not at answer_start "
                         f"{start} (the context has {found!r} there)")
        return text, start


def ignored_summary(ignored: Counter[str]) -> str:
    """``"2 × empty or missing context, 1 × duplicate question id"``."""
    return ", ".join(f"{n} × {what}" for what, n in ignored.items())


def _kind(obj: Any) -> str:
    """A short name for the JSON type of ``obj``, for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(obj), type(obj).__name__)
