"""Emulation is decided from evidence, not from an attribute a stub sets: only the Poplar SDK's
poptorch wheel (the installed distribution lists the imported file) with the Poplar runtime
present counts as real hardware."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from qa.backends.ipu import backend as ipu_backend
from qa.backends.ipu.backend import emulation_evidence, poplar_runtime


def load(folder: Path):
    """Import ``folder/poptorch/__init__.py`` as a module, as ``import poptorch`` would."""
    spec = importlib.util.spec_from_file_location("poptorch", folder / "poptorch" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stub(folder: Path, body: str = "") -> Path:
    (folder / "poptorch").mkdir(parents=True)
    (folder / "poptorch" / "__init__.py").write_text(
        "__version__ = '3.3.0'\ndef ipuHardwareIsAvailable(n=1):\n    return True\n" + body)
    return folder


def wheel(folder: Path) -> Path:
    """An installed poptorch 3.3.0 distribution whose RECORD lists the package's file."""
    stub(folder)
    info = folder / "poptorch-3.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: poptorch\nVersion: 3.3.0\n")
    (info / "RECORD").write_text("poptorch/__init__.py,,\npoptorch-3.3.0.dist-info/METADATA,,\n")
    return folder


@pytest.fixture
def no_runtime(monkeypatch):
    monkeypatch.delenv("POPLAR_SDK_ENABLED", raising=False)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)


def test_a_stub_without_the_attribute_is_still_emulated(tmp_path, monkeypatch,
                                                        no_runtime) -> None:
    folder = stub(tmp_path)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("POPLAR_SDK_ENABLED", "1")  # even with the runtime claimed
    module = load(folder)
    assert not hasattr(module, "EMULATED")
    assert "no poptorch wheel is installed" in emulation_evidence(module)
    monkeypatch.setitem(sys.modules, "poptorch", module)
    assert ipu_backend.emulated() is True


def test_a_module_beside_an_installed_wheel_is_emulated(tmp_path, monkeypatch,
                                                        no_runtime) -> None:
    monkeypatch.syspath_prepend(str(wheel(tmp_path / "site")))
    monkeypatch.setenv("POPLAR_SDK_ENABLED", "1")
    elsewhere = load(stub(tmp_path / "elsewhere"))
    assert "not from the installed poptorch 3.3.0 wheel" in emulation_evidence(elsewhere)


def test_the_wheel_with_the_poplar_runtime_is_real(tmp_path, monkeypatch, no_runtime) -> None:
    site = wheel(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    module = load(site)
    assert "no Poplar runtime" in emulation_evidence(module)
    assert not poplar_runtime()
    lib = tmp_path / "poplar" / "lib"
    lib.mkdir(parents=True)
    (lib / "libpoplar.so").write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{lib}")
    assert poplar_runtime()
    assert emulation_evidence(module) is None
    monkeypatch.setitem(sys.modules, "poptorch", module)
    assert ipu_backend.emulated() is False


def test_the_declared_emulation_is_emulated_whatever_else(tmp_path, monkeypatch) -> None:
    site = wheel(tmp_path / "site")
    (site / "poptorch" / "__init__.py").write_text("EMULATED = True\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("POPLAR_SDK_ENABLED", "1")
    assert "EMULATED" in emulation_evidence(load(site))


def test_no_poptorch_is_not_emulated(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "poptorch", None)  # import poptorch -> ImportError
    assert ipu_backend.emulated() is False
