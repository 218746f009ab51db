"""Backend sections of the run config: each backend declares its own settings in its own folder.

A backend's settings (``[torch]``: device, replicas, nodes ...; ``[ipu]``: the IPU config file,
fp32) are a frozen dataclass in that backend's folder, declared like the core sections (a
default, ``"help"`` and the allowed range in each field's metadata) and optionally with a
``check()`` method for the rules that join two of its fields. This module only knows *where* each
class lives, as ``"module:Class"`` text, so the config layer never imports a backend: the built-in
ones are listed in ``BUILTIN``; another distribution adds its own through the
``qa_bench.backend_options`` entry-point group (``NAME = "package.module:Class"``), beside its
``qa_bench.backends`` entry. The classes are imported the first time a config is built, and must
import nothing heavy (no torch).

``MOVED`` lists the settings that used to live in ``[hardware]``: the old spelling is still
accepted, with one deprecation line on stderr per spelling and process.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as md
import sys
from typing import Any

from qa.errors import QABenchError

#: The entry-point group other distributions declare their backend's settings class in.
ENTRY_POINT_GROUP = "qa_bench.backend_options"

#: Built-in backends' settings classes: section name (the backend's name) -> "module:Class".
BUILTIN: dict[str, str] = {
    "torch": "qa.backends.torch.options:TorchOptions",
    "ipu": "qa.backends.ipu.options:IPUOptions",
}

#: Old ``hardware.KEY`` spellings -> the section that owns the key now (same key name).
MOVED: dict[str, str] = {
    "device": "torch", "replicas": "torch", "nodes": "torch", "node_rank": "torch",
    "rdzv_endpoint": "torch", "bf16": "torch",
    "ipu_config": "ipu", "fp32": "ipu",
}

_classes: dict[str, type] | None = None
_warned: set[str] = set()


def _load(name: str, target: str, where: str) -> type:
    module_name, sep, class_name = target.partition(":")
    if not (module_name and sep and class_name):
        raise QABenchError(f"config section {name!r}{where}: expected 'module:Class', "
                           f"got {target!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise QABenchError(f"config section {name!r}{where}: cannot load {target} "
                           f"({exc})") from None
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise QABenchError(f"config section {name!r}{where}: {target} is not a frozen dataclass")
    return cls


def section_classes() -> dict[str, type]:
    """Every backend section: name -> its settings class (built-in, then entry points).

    Raises:
        QABenchError: a class that cannot be loaded or is not a frozen dataclass, or a name
            declared twice with two different classes.
    """
    global _classes
    if _classes is None:
        found = {name: _load(name, target, "") for name, target in BUILTIN.items()}
        for point in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(point, "dist", None)
            where = f" (entry point of {dist.name})" if dist is not None else ""
            cls = _load(point.name, point.value, where)
            if point.name in found and found[point.name] is not cls:
                raise QABenchError(f"config section {point.name!r} is declared twice{where}")
            found[point.name] = cls
        _classes = found
    return dict(_classes)


def moved_key(section: str, key: str) -> tuple[str, str]:
    """``(section, key)`` where a setting lives now: ``hardware.device`` -> ``torch.device``,
    with a deprecation line on stderr the first time each old spelling is used."""
    if section != "hardware" or key not in MOVED:
        return section, key
    new = MOVED[key]
    old = f"hardware.{key}"
    if old not in _warned:
        _warned.add(old)
        print(f"qa-bench: '{old}' is deprecated: use '{new}.{key}' (the {new} backend's own "
              "settings)", file=sys.stderr)
    return new, key


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A config dict with old ``[hardware]`` keys moved to their sections (a copy).

    Raises:
        QABenchError: the same setting given under both spellings with different values.
    """
    hardware = raw.get("hardware")
    if not isinstance(hardware, dict) or not set(hardware) & set(MOVED):
        return raw
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key in [k for k in hardware if k in MOVED]:
        section, _ = moved_key("hardware", key)
        value = out["hardware"].pop(key)
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            raise QABenchError(f"config section {section!r} must be a table of key = value")
        if key in target and target[key] != value:
            raise QABenchError(f"hardware.{key} = {value!r} and {section}.{key} = "
                               f"{target[key]!r}: give it once, as {section}.{key}")
        target.setdefault(key, value)
    return out


def stored(raw: dict[str, Any], section: str, key: str) -> Any:
    """``section.key`` of a stored config dict (a result's ``config``), also where results
    written before the move kept it (``hardware.key``); None when neither has it."""
    table = raw.get(section)
    if isinstance(table, dict) and key in table:
        return table[key]
    old = raw.get("hardware")
    if MOVED.get(key) == section and isinstance(old, dict):
        return old.get(key)
    return None
