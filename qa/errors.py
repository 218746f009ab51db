"""User-facing errors: one clear line, exit code 2, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class QABenchError(Exception):
    """An error caused by the user's input (a file, an option, a name).

    The CLI and the pytest layer print ``str(error)`` on one line and exit with code 2: line
    breaks that user input carries into the message (a key, a value, a file's text) are shown
    escaped, so the message stays one line whatever it quotes.
    """

    def __init__(self, message: object = "") -> None:
        text = str(message)
        super().__init__(text.replace("\r", "\\r").replace("\n", "\\n"))


class HubUnreachableError(QABenchError):
    """A hub name was given but the hub cannot be reached (offline machine)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or a list of the valid ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (choose from: {', '.join(choices)})"


def unknown(kind: str, name: str, choices: Iterable[str]) -> QABenchError:
    """Build the error for an unknown name, e.g. ``unknown model 'bert-bse' (did you mean ...)``."""
    return QABenchError(f"unknown {kind} {name!r}{did_you_mean(name, choices)}")
