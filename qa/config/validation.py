"""The one validation pass over a resolved run config, read from the fields' declarations.

Each field of ``qa.config.schema`` declares what it allows in its metadata, next to its default and
help: ``"min"`` / ``"max"`` (inclusive bounds), ``"above"`` (an exclusive lower bound),
``"also"`` (single values allowed besides the range, e.g. ``-1`` for "off") and ``"choices"``
(the fixed set of a string). The type comes from the annotation (``int | None``: an int or
nothing). ``validate`` checks every field against that and the few rules that join two fields;
``allowed`` words a field's rule for ``qa-bench config`` and for the messages, so the listing
and the refusals say the same thing.

Every refusal is one ``QABenchError`` line: ``train.micro_batch_size = 0: must be an integer
>= 1`` (the field, the value, what is allowed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import fields
from typing import Any, get_type_hints

from qa.config.sections import section_classes
from qa.errors import QABenchError
from qa.task.synthetic import TEMPLATES

#: Ints without a declared maximum stop at a C int: torch, numpy and the tokenizers take no more.
INT_MAX = 2**31 - 1


def _kind(hint: Any) -> tuple[str, bool]:
    """``(base type name, optional)`` of an annotation such as ``int | None``."""
    text = str(hint)
    optional = "None" in text
    for kind in ("bool", "int", "float", "str"):
        if text.startswith(kind) or text == f"<class '{kind}'>":
            return kind, optional
    return "object", optional


def declared_fields(root: type) -> Iterator[tuple[str, str, bool, dict[str, Any]]]:
    """``(section.key, type name, optional, metadata)`` of every field of ``root`` (the
    ``RunConfig`` class: sections of fields), in declaration order, then of every backend's
    own section (``qa.config.sections``)."""
    hints_of_root = get_type_hints(root)
    core = [(f.name, hints_of_root[f.name]) for f in fields(root) if f.name != "sections"]
    for name, cls in [*core, *section_classes().items()]:
        hints = get_type_hints(cls)
        for f in fields(cls):
            kind, optional = _kind(hints[f.name])
            yield f"{name}.{f.name}", kind, optional, dict(f.metadata)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def allowed(kind: str, optional: bool, meta: dict[str, Any], value: Any = None) -> str:
    """What a field allows, in words (``an integer >= 1``, ``a number in 0 .. 1``).

    An int's implicit ceiling (``INT_MAX``) is named only when ``value`` is above it.
    """
    if kind == "bool":
        text = "true or false"
    elif meta.get("choices"):
        text = "one of " + ", ".join(map(repr, choices_of(meta)))
    elif kind == "str":
        text = "a non-empty string" if not optional else "a string"
    else:
        noun = "an integer" if kind == "int" else "a finite number"
        low, high, above = meta.get("min"), meta.get("max"), meta.get("above")
        if kind == "int" and high is None and _above_int_max(value):
            high = INT_MAX
        if low is not None and high is not None:
            text = f"{noun} in {_number(low)} .. {_number(high)}"
        elif above is not None:
            text = f"{noun} > {_number(above)}" + (f" and <= {_number(high)}" if high else "")
        elif low is not None:
            text = f"{noun} >= {_number(low)}"
        elif high is not None:
            text = f"{noun} <= {_number(high)}"
        else:
            text = noun
        if meta.get("also"):
            text = " or ".join(map(_number, meta["also"])) + f" or {text}"
    return f"{text} (or none)" if optional else text


def choices_of(meta: dict[str, Any]) -> tuple[str, ...]:
    """A field's allowed strings: a tuple, or a function that lists them when asked (a
    registry that grows, such as the backends)."""
    found = meta.get("choices") or ()
    return tuple(found() if callable(found) else found)


def _above_int_max(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > INT_MAX


def _fits(kind: str, value: Any, meta: dict[str, Any]) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        if not isinstance(value, str):
            return False
        return value in choices_of(meta) if meta.get("choices") else bool(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == "int" and not isinstance(value, int):
        return False
    if not math.isfinite(value):
        return False
    if value in meta.get("also", ()):
        return True
    high = meta.get("max", INT_MAX if kind == "int" else None)
    return ((meta.get("min") is None or value >= meta["min"])
            and (meta.get("above") is None or value > meta["above"])
            and (high is None or value <= high))


def check_field(name: str, kind: str, optional: bool, meta: dict[str, Any], value: Any) -> None:
    """Refuse ``value`` for the field ``name`` unless its declaration allows it.

    Raises:
        QABenchError: ``name = value: must be <allowed>``.
    """
    if value is None and optional:
        return
    if optional and kind == "str" and value == "" and not meta.get("choices"):
        return  # an empty optional path is the same as none
    if not _fits(kind, value, meta):
        shown = repr(value) if isinstance(value, str) else _number(value) \
            if isinstance(value, (int, float)) else repr(value)
        raise QABenchError(f"{name} = {shown}: must be {allowed(kind, optional, meta, value)}")


def validate(config: Any) -> Any:
    """Check a resolved ``RunConfig``: every field's declared range, then the cross-field rules.

    Returns:
        The config, unchanged.

    Raises:
        QABenchError: the first field (or pair of fields) that is not allowed, as one line.
    """
    for name, kind, optional, meta in declared_fields(type(config)):
        section, key = name.split(".")
        check_field(name, kind, optional, meta, getattr(getattr(config, section), key))
    _cross_field_rules(config)
    return config


#: Tokens a feature spends on the special tokens ([CLS] q [SEP] c [SEP]) and a question.
QUESTION_ROOM = 4


def _cross_field_rules(config: Any) -> None:
    data = config.data
    if data.doc_stride > data.max_length - QUESTION_ROOM:
        raise QABenchError(
            f"data.doc_stride = {data.doc_stride}: must be at most data.max_length - "
            f"{QUESTION_ROOM} = {data.max_length - QUESTION_ROOM} (the windows' overlap must "
            "leave room for the special tokens and the question)")
    if bool(data.train_file) != bool(data.validation_file):
        given, absent = (("train_file", "validation_file") if data.train_file
                         else ("validation_file", "train_file"))
        raise QABenchError(f"data.{given} = {getattr(data, given)!r}: data.{absent} must be "
                           "given too (data.train_file and data.validation_file go together)")
    relations = len(TEMPLATES[data.synthetic_templates])
    if data.synthetic_questions >= relations:
        raise QABenchError(
            f"data.synthetic_questions = {data.synthetic_questions}: must be an integer in 1 .. "
            f"{relations - 1} for data.synthetic_templates = {data.synthetic_templates!r} "
            "(one relation per question, one left for background facts)")
    for _, section in config.sections:  # a backend's rules over its own settings
        check = getattr(section, "check", None)
        if callable(check):
            check()


# ------------------------------------------------------------------------------ profiles

#: A profile's lists of names, crossed into its matrix.
PROFILE_LISTS = ("models", "pods", "datasets")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _names(where: str, value: Any) -> None:
    """A non-empty list of distinct, non-empty names."""
    if not isinstance(value, list) or not value:
        raise QABenchError(f"{where} must be a non-empty list of names, got {_shown(value)}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise QABenchError(f"{where} must be a non-empty list of names, got {_shown(item)} "
                               "in it")
    twice = sorted({item for item in value if value.count(item) > 1})
    if twice:
        raise QABenchError(f"{where} lists {twice[0]!r} twice (a duplicate entry)")


def _seeds(where: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise QABenchError(f"{where} must be a non-empty list of integer seeds, got "
                           f"{_shown(value)}")
    for item in value:
        check_field(where, "int", False, {"min": 0, "max": 2**32 - 1}, item)
    twice = sorted({item for item in value if value.count(item) > 1})
    if twice:
        raise QABenchError(f"{where} lists seed {twice[0]} twice (a duplicate entry)")


def _settings(where: str, value: Any) -> None:
    """``[defaults]``-like tables: section tables of ``key = scalar``."""
    if not isinstance(value, dict):
        raise QABenchError(f"{where} must be a table of config sections, got {_shown(value)}")
    for section, table in value.items():
        if not isinstance(table, dict):
            raise QABenchError(f"{where}.{section} must be a table of key = value (a config "
                               f"section such as [defaults.train]), got {_shown(table)}")
        for key, item in table.items():
            if not isinstance(item, (str, int, float)):  # bool is an int
                raise QABenchError(f"{where}.{section}.{key} must be a single value, got "
                                   f"{_shown(item)}")


def check_profile(raw: dict[str, Any], where: str) -> None:
    """The shape of a profile's TOML: names, lists, seeds and the tables of settings.

    Unknown top-level keys and the config fields themselves are checked by the caller
    (``qa.run.profiles.load_profile``) and by ``validate`` on every expanded entry.

    Raises:
        QABenchError: ``<where>: models must be a non-empty list of names, got 'a'`` and the like.
    """
    for key in ("description", "backend"):
        if key in raw and not isinstance(raw[key], str):
            raise QABenchError(f"{where}: {key} must be a string, got {_shown(raw[key])}")
    for key in PROFILE_LISTS:
        _names(f"{where}: {key!r}", raw.get(key))
    if "seeds" in raw:
        _seeds(f"{where}: 'seeds'", raw["seeds"])
    if "defaults" in raw:
        _settings(f"{where}: defaults", raw["defaults"])
    for key in ("model", "dataset"):
        tables = raw.get(key, {})
        if not isinstance(tables, dict):
            raise QABenchError(f"{where}: {key} must be a table of per-{key} settings "
                               f"([{key}.NAME.SECTION]), got {_shown(tables)}")
        for name, value in tables.items():
            _settings(f"{where}: {key}.{name}", value)
