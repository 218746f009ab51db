"""``torch``, imported on its first use rather than when the torch backend's class is loaded.

The backend registry hands out classes, and commands that only read results need the class's
descriptions (pods, marks, the result key): ``qa-bench merge --profile`` expands the profile's
matrix to name the entries no shard delivered. With torch imported on first use, that runs on a
light install without torch (the nightly workflow's merge job); training imports it at its first
step as before. The standard library's ``importlib.util.LazyLoader`` defers the import; where
torch is not installed at all, the module is a stand-in whose first use raises an ImportError
saying so.
"""

from __future__ import annotations

import importlib.util
import sys
import types


class _Absent(types.ModuleType):
    """torch is not installed: any use says so."""

    def __getattr__(self, name: str):
        raise ImportError(f"torch is not installed (needed for torch.{name}): install qa-bench "
                          "with its dependencies to train; reading results needs none")


def lazy_torch() -> types.ModuleType:
    """The ``torch`` module, loaded on first attribute access (or the absent stand-in)."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):  # a finder that refuses it (or a broken install)
        spec = None
    if spec is None or spec.loader is None:
        return _Absent("torch")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["torch"] = module
    loader.exec_module(module)
    return module
