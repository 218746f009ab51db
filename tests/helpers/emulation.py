"""Load the poptorch emulation (tests/emulation) under another name, for its unit tests.

Loaded as ``emulated_poptorch`` so that the test session never gains an importable ``poptorch``
(the IPU backend must stay unavailable in the unit suite).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

EMULATION = Path(__file__).resolve().parents[1] / "emulation" / "poptorch"
NAME = "emulated_poptorch"


def load() -> ModuleType:
    """Import the emulation as ``emulated_poptorch``."""
    spec = importlib.util.spec_from_file_location(
        NAME, EMULATION / "__init__.py", submodule_search_locations=[str(EMULATION)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    spec.loader.exec_module(module)
    return module


def loaded() -> Iterator[ModuleType]:
    """A fixture body: the emulation, unloaded after."""
    module = load()
    yield module
    for name in [n for n in sys.modules if n.split(".")[0] == NAME]:
        del sys.modules[name]
