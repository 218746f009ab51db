"""One reader per format for the files qa-bench is given: JSON and TOML.

Every failure is one ``QABenchError`` line naming the file: unreadable, not UTF-8, not valid.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from qa.errors import QABenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _text(path: str | os.PathLike, label: str) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise QABenchError(f"cannot read {label}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QABenchError(f"{label} is not UTF-8 text (bad byte at offset {exc.start})") \
            from None


def read_json(path: str | os.PathLike, what: str = "") -> Any:
    """Parse a JSON file we are given: the one JSON reader of qa-bench (results, baselines,
    SQuAD data, predictions, verdicts).

    UTF-8 with or without a byte-order mark (``utf-8-sig``: editors on Windows write one, and
    the official SQuAD scripts' ``json.load`` of a text file accepts it on such systems).

    Args:
        path: the file.
        what: what the file is ("dataset", "predictions", ...), named in the messages.

    Raises:
        QABenchError: unreadable, not UTF-8 or not valid JSON (one line, file named).
    """
    label = f"{what} file {str(path)!r}" if what else repr(str(path))
    text = _text(path, label)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise QABenchError(f"{label} is not valid JSON: malformed JSON at line {exc.lineno} "
                           f"column {exc.colno} ({exc.msg})") from None


def read_toml(path: str | os.PathLike, what: str = "") -> dict[str, Any]:
    """Parse a TOML file we are given (profiles, published references): the one TOML import.

    Raises:
        QABenchError: unreadable, not UTF-8 or not valid TOML (one line, file named).
    """
    label = f"{what} {str(path)!r}" if what else repr(str(path))
    try:
        return tomllib.loads(_text(path, label))
    except tomllib.TOMLDecodeError as exc:
        raise QABenchError(f"{label} is not valid TOML ({exc})") from None
