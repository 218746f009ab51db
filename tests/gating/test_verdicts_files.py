"""``verdicts.json`` read back (``qa.gating.verdicts.check_verdicts_file``, ``Verdict.from_dict``):
every field a report re-renders from is checked where the file is read, refused with one line
naming the file and the field; and what ``write_report`` writes for an unjudged metric (nulls,
fields left at their defaults, a file with no optional key) is accepted as it is.

The CLI path (``qa-bench report`` on a malformed file: exit 2, one line) is in tests/test_shapes.py;
these call the reader directly, one field at a time.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from qa.errors import QABenchError
from qa.gating.verdicts import Verdict, check_verdicts_file

SOURCE = "run/verdicts.json"
WHERE = f"{SOURCE}: field"
# A judged score and an unjudged timing, as write_report writes them.
SCORE = {"entry": "torch/cpu/m__d", "metric": "f1", "value": 87.0, "baseline": 88.0,
         "delta": -1.0, "tolerance": 0.5, "unit": "points", "status": "fail",
         "higher_is_better": True, "message": "worse than the baseline beyond tolerance",
         "note": ""}
TIMING = {"entry": "torch/cpu/m__d", "metric": "train_samples_per_s", "value": 321.0,
          "baseline": None, "delta": None, "tolerance": None, "unit": "ratio",
          "status": "missing", "higher_is_better": True, "message": "not in the baseline",
          "note": ""}


def _file(**fields: Any) -> dict[str, Any]:
    return {"schema_version": 1, "title": "t", "incomplete": False, "notes": ["a note"],
            "missing": ["torch/cpu/x__d"], "skipped": {"torch/cpu/y__d": "no IPU"},
            "verdicts": [copy.deepcopy(SCORE), copy.deepcopy(TIMING)], **fields}


def test_a_file_as_written_is_returned_as_it_is() -> None:
    raw = _file()
    assert check_verdicts_file(raw, SOURCE) is raw
    assert [Verdict.from_dict(v) for v in raw["verdicts"]] == [
        Verdict(**SCORE), Verdict(**TIMING)]


def test_a_file_with_no_optional_field_is_accepted() -> None:
    """A file from an older writer (or a run killed before anything was judged): every field
    is optional, none is required to be there."""
    assert check_verdicts_file({}, SOURCE) == {}
    assert check_verdicts_file({"verdicts": []}, SOURCE) == {"verdicts": []}


@pytest.mark.parametrize("unit, metric", [("points", "exact_match"), ("ratio", "compile_s")])
def test_an_unmeasured_verdict_with_nulls_and_defaults_is_accepted(unit: str,
                                                                   metric: str) -> None:
    """A gated metric a failed run did not measure: value, delta and tolerance null; a verdict
    without direction or message (an older writer) takes the dataclass defaults."""
    raw = {"entry": "torch/cpu/m__d", "metric": metric, "value": None, "baseline": None,
           "delta": None, "tolerance": None, "unit": unit, "status": "fail"}
    assert check_verdicts_file({"verdicts": [raw]}, SOURCE) == {"verdicts": [raw]}
    verdict = Verdict.from_dict(raw)
    assert verdict == Verdict("torch/cpu/m__d", metric, None, None, None, None, unit, "fail")
    assert verdict.higher_is_better is True and verdict.message == verdict.note == ""


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    inner: Any = raw
    parts = dotted.split(".")
    for part in parts[:-1]:
        inner = inner[int(part)] if isinstance(inner, list) else inner[part]
    inner[parts[-1]] = value
    return raw


# (field, bad value, the one line it is refused with)
MALFORMED = [
    ("title", 3, f"{WHERE} 'title' must be a string, got 3"),
    ("incomplete", "yes", f"{WHERE} 'incomplete' must be true or false, got 'yes'"),
    ("notes", [3], f"{WHERE} 'notes[0]' must be a string, got 3"),
    ("missing", "x", f"{WHERE} 'missing' must be a list, got 'x'"),
    ("missing", ["a", None], f"{WHERE} 'missing[1]' must be a string, got None"),
    ("skipped", [], f"{WHERE} 'skipped' must be an object, got []"),
    ("skipped", {"torch/cpu/y__d": 3}, f"{WHERE} 'skipped.torch/cpu/y__d' must be a string, "
                                       "got 3"),
    ("verdicts", {}, f"{WHERE} 'verdicts' must be a list, got {{}}"),
    ("verdicts", [3], f"{WHERE} 'verdicts[0]' must be an object, got 3"),
    ("verdicts.0.metric", "", f"{WHERE} 'verdicts[0]'.metric must be a non-empty string, got ''"),
    ("verdicts.0.value", 100.5, f"{WHERE} 'verdicts[0]'.value must be a finite number in "
                                "0 .. 100 (or null), got 100.5"),
    ("verdicts.0.baseline", 250, f"{WHERE} 'verdicts[0]'.baseline must be a finite number in "
                                 "0 .. 100 (or null), got 250"),
    ("verdicts.1.value", "321", f"{WHERE} 'verdicts[1]'.value must be a finite number (or null), "
                                "got '321'"),
    ("verdicts.1.baseline", True, f"{WHERE} 'verdicts[1]'.baseline must be a finite number "
                                  "(or null), got True"),
    ("verdicts.0.delta", "x", f"{WHERE} 'verdicts[0]'.delta must be a finite number (or null), "
                              "got 'x'"),
    ("verdicts.0.tolerance", -0.5, f"{WHERE} 'verdicts[0]'.tolerance must be a finite number "
                                   ">= 0 (or null), got -0.5"),
    ("verdicts.0.higher_is_better", "yes", f"{WHERE} 'verdicts[0]'.higher_is_better must be true "
                                           "or false, got 'yes'"),
    ("verdicts.0.message", 3, f"{WHERE} 'verdicts[0]'.message must be a string, got 3"),
    ("verdicts.1.note", None, f"{WHERE} 'verdicts[1]'.note must be a string, got None"),
]


@pytest.mark.parametrize("dotted, value, line", MALFORMED,
                         ids=[f"{d}={v!r}" for d, v, _ in MALFORMED])
def test_a_malformed_field_is_refused_naming_file_and_field(dotted: str, value: Any,
                                                            line: str) -> None:
    with pytest.raises(QABenchError) as refused:
        check_verdicts_file(_set(_file(), dotted, value), SOURCE)
    assert str(refused.value) == line


def test_a_file_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(QABenchError) as refused:
        check_verdicts_file([SCORE], SOURCE)
    assert str(refused.value).startswith(f"{SOURCE} must be an object, got [")


def test_a_verdict_read_on_its_own_is_named_verdict() -> None:
    """``Verdict.from_dict`` outside a file (``verdicts_from_json``) still names the field."""
    with pytest.raises(QABenchError) as refused:
        Verdict.from_dict({**SCORE, "value": 250})
    assert str(refused.value) == ("verdict.value must be a finite number in 0 .. 100 (or null), "
                                  "got 250")
