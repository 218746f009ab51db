"""Backend registry: ``register`` a class, ``get`` it by name (with "did you mean")."""

from __future__ import annotations

import importlib

from qa.backends.base import (
    Backend,
    BackendFailure,
    CompileTiming,
    Diverged,
    Predictions,
    TrainTiming,
)
from qa.errors import QABenchError, unknown

# name -> "module:Class"; modules are imported lazily so that e.g. the IPU backend's
# optimum-graphcore import only happens when that backend is asked for.
_REGISTRY: dict[str, str] = {
    "torch": "qa.backends.torch:TorchBackend",
    "ipu": "qa.backends.ipu:IPUBackend",
}

__all__ = ["Backend", "BackendFailure", "CompileTiming", "Diverged", "Predictions", "TrainTiming",
           "get", "names", "register"]


def register(name: str, target: str) -> None:
    """Register ``module:Class`` under ``name``; registering a name twice is an error."""
    if name in _REGISTRY and _REGISTRY[name] != target:
        raise QABenchError(f"backend {name!r} is already registered as {_REGISTRY[name]}")
    _REGISTRY[name] = target


def names() -> list[str]:
    """Registered backend names."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Backend]:
    """The backend class registered under ``name``.

    Raises:
        QABenchError: unknown name, with the closest registered one suggested.
    """
    if name not in _REGISTRY:
        raise unknown("backend", name, _REGISTRY)
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
