"""Shape checks for the fields of the JSON files qa-bench reads back (results, verdicts,
baselines): one ``QABenchError`` line naming the file and the field, never a traceback later.

The readers (``RunResult.from_dict``, ``qa.report.read_verdicts_file``, ``Baseline.from_dict``)
call these once, where the file is read, so no later stage meets a ``null`` where it expects an
object or a score of 250.
"""

from __future__ import annotations

import math
from typing import Any

from qa.errors import QABenchError

#: Metric names that are percentages (0 .. 100): SQuAD v1.1 and v2.0 scores, overall and per
#: answer kind (``HasAns_f1``, ``NoAns_exact``, ``best_f1``).
SCORE_NAMES = ("exact_match", "exact", "f1")


def is_score(name: str) -> bool:
    """Whether the metric ``name`` is a percentage score (EM / F1 and their v2.0 variants)."""
    return name in SCORE_NAMES or name.rsplit("_", 1)[-1] in SCORE_NAMES


def shown(value: Any) -> str:
    """A short ``repr`` for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def obj(where: str, value: Any, optional: bool = False) -> dict[str, Any]:
    """``value`` if it is a JSON object (``{}`` for an optional null)."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise QABenchError(f"{where} must be an object, got {shown(value)}")
    return value


def array(where: str, value: Any) -> list[Any]:
    """``value`` if it is a JSON list."""
    if not isinstance(value, list):
        raise QABenchError(f"{where} must be a list, got {shown(value)}")
    return value


def text(where: str, value: Any, optional: bool = False, empty: bool = True) -> Any:
    """``value`` if it is a string (or null, when optional; non-empty unless ``empty``)."""
    if value is None and optional:
        return value
    if not isinstance(value, str) or (not empty and not value):
        what = "a string" if empty else "a non-empty string"
        raise QABenchError(f"{where} must be {what}, got {shown(value)}")
    return value


def flag(where: str, value: Any) -> bool:
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        raise QABenchError(f"{where} must be true or false, got {shown(value)}")
    return value


def number(where: str, value: Any, low: float | None = None, high: float | None = None,
           above: float | None = None, optional: bool = False) -> Any:
    """``value`` if it is a finite number (bool excluded) in ``low .. high`` / ``> above``."""
    if value is None and optional:
        return value
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)
    if not finite or (low is not None and value < low) or (high is not None and value > high) \
            or (above is not None and value <= above):
        if low is not None and high is not None:
            rule = f"a finite number in {low:g} .. {high:g}"
        elif above is not None:
            rule = f"a finite number > {above:g}"
        elif low is not None:
            rule = f"a finite number >= {low:g}"
        else:
            rule = "a finite number"
        raise QABenchError(f"{where} must be {rule}{' (or null)' if optional else ''}, "
                           f"got {shown(value)}")
    return value


def metric_values(source: str, path: str, values: Any) -> dict[str, Any]:
    """A flat ``{metric: value}`` object at ``path`` of the file ``source``: scores in
    0 .. 100, counts and the rest >= 0."""
    for name, value in obj(f"{source}: field {path!r}", values).items():
        where = f"{source}: field '{path}.{name}'"
        number(where, value, 0, 100) if is_score(name) else number(where, value, 0)
    return values
