"""Backend registry: ``register`` a class, ``get`` it by name (with "did you mean").

The built-in backends are registered here; another distribution adds one through the
``qa_bench.backends`` entry-point group (``NAME = "package.module:Class"``), read the first time
a name is asked for. A name registered twice with two different classes is an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md

from qa.backends.base import (
    Backend,
    BackendFailure,
    CompileTiming,
    Diverged,
    Predictions,
    TrainTiming,
)
from qa.errors import QABenchError, unknown

#: The entry-point group other distributions register backends in (value ``module:Class``).
ENTRY_POINT_GROUP = "qa_bench.backends"

# name -> "module:Class"; modules are imported lazily so that e.g. the IPU backend's
# optimum-graphcore import only happens when that backend is asked for.
_REGISTRY: dict[str, str] = {
    "torch": "qa.backends.torch:TorchBackend",
    "ipu": "qa.backends.ipu:IPUBackend",
}
_entry_points_loaded = False

__all__ = ["ENTRY_POINT_GROUP", "Backend", "BackendFailure", "CompileTiming", "Diverged",
           "Predictions", "TrainTiming", "get", "names", "register"]


def register(name: str, target: str) -> None:
    """Register ``module:Class`` under ``name``.

    Raises:
        QABenchError: ``name`` is already registered as another class, or ``target`` is not
            ``module:Class``.
    """
    module_name, sep, class_name = target.partition(":")
    if not (module_name and sep and class_name) or ":" in class_name:
        raise QABenchError(f"backend {name!r}: expected 'module:Class', got {target!r}")
    if name in _REGISTRY and _REGISTRY[name] != target:
        raise QABenchError(f"backend {name!r} is registered twice: as {_REGISTRY[name]} and as "
                           f"{target}")
    _REGISTRY[name] = target


def _load_entry_points() -> None:
    """Register the backends of the ``qa_bench.backends`` entry points, once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for point in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(point, "dist", None)
        where = f" (entry point of {dist.name})" if dist is not None else ""
        try:
            register(point.name, point.value)
        except QABenchError as exc:
            raise QABenchError(f"{exc}{where}") from None  # asked again, refused again
    _entry_points_loaded = True


def names() -> list[str]:
    """Registered backend names (built-in and from entry points)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get(name: str) -> type[Backend]:
    """The backend class registered under ``name``.

    Raises:
        QABenchError: unknown name, with the closest registered one suggested.
    """
    _load_entry_points()
    if name not in _REGISTRY:
        raise unknown("backend", name, _REGISTRY)
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
