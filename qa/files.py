"""One reader per format for the files qa-bench is given: JSON and TOML.

Every failure is one ``QABenchError`` line naming the file: unreadable, not UTF-8, not valid.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
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


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON to ``path`` via a temp file in the same folder and an atomic rename.

    Raises:
        QABenchError: the folder cannot be created or written.
    """
    def dump(handle: Any) -> None:
        json.dump(data, handle, indent=2, sort_keys=True, default=json_default)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())

    return _write_atomic(Path(path), dump)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write text to ``path`` atomically (temp file + rename)."""
    return _write_atomic(Path(path), lambda handle: handle.write(text))


def _write_atomic(path: Path, write: Any) -> Path:
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it over ``path``.

    On any failure (disk full, an unserialisable value) the temp file is removed and ``path``
    keeps its old content.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise QABenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
