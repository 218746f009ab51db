"""The extension point: a backend from outside the package, through the entry point alone.

``tests/outside_backend/qa_bench_toy`` is installed for the session as a real distribution (a
``qa_bench_toy-0.1.dist-info`` with its ``qa_bench.backends`` entry point, found by
``importlib.metadata``); no line of ``qa/`` names it. Its entry is then sharded with the toy's
own cost, runs, is described with the toy's own hardware line, gated against the baseline its
first run wrote, and reported with the toy's version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.contract import ALL_CALLS, _bind

from qa import backends
from qa.backends.base import Backend
from qa.config import sections
from qa.config.schema import RunConfig, apply_overrides
from qa.errors import QABenchError

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ROOT / "tests" / "outside_backend"
PROFILE = """
description = "the outside backend's entries"
backend = "toy"
models = ["tiny-bert"]
pods = ["toy1", "toy2"]
datasets = ["synthetic"]
seeds = [42]
"""
TINY = ["data.synthetic_train_contexts=40", "data.synthetic_validation_contexts=8",
        "data.max_length=128", "data.doc_stride=64", "train.max_steps=4", "target.every=0",
        "train.compile_eval=false", "train.eval_timing_rounds=1", "model.vocab_size=800"]


def _dist_info(site: Path, name: str, entry: str, options: str = "") -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    section = f"[qa_bench.backend_options]\n{options}\n" if options else ""
    (info / "entry_points.txt").write_text(f"[qa_bench.backends]\n{entry}\n{section}")
    (info / "top_level.txt").write_text(f"{name}\n")


@pytest.fixture(scope="session")
def toy_site(tmp_path_factory: pytest.TempPathFactory):
    """The toy installed: its dist-info and its package on sys.path (and on PYTHONPATH for the
    ``qa-bench`` processes); the path list as a PYTHONPATH value."""
    site = tmp_path_factory.mktemp("toy-site")
    _dist_info(site, "qa_bench_toy", "toy = qa_bench_toy:ToyBackend",
               "toy = qa_bench_toy.options:ToyOptions")
    paths = [str(site), str(OUTSIDE)]
    with pytest.MonkeyPatch.context() as patch:
        for path in reversed(paths):
            patch.syspath_prepend(path)
        yield os.pathsep.join([str(ROOT), *paths])


@pytest.fixture
def registry(toy_site: str, monkeypatch: pytest.MonkeyPatch):
    """The registry as a fresh process sees it: entry points not read yet."""
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_entry_points_loaded", False)
    monkeypatch.setattr(sections, "_classes", None)  # the config sections likewise
    return backends


def _qa_bench(toy_site: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": toy_site, "QA_BENCH_CACHE": str(cwd / "cache"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "qa.frontends.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_entry_point_registers_the_toy(registry) -> None:
    assert "toy" in registry.names()
    toy = registry.get("toy")
    assert toy.__module__ == "qa_bench_toy" and issubclass(toy, Backend)
    with pytest.raises(QABenchError, match="unknown backend 'tyo' .*did you mean 'toy'"):
        registry.get("tyo")


def test_the_toy_binds_every_call_the_callers_make(registry) -> None:
    toy = registry.get("toy")
    for where, method, n_args, keywords in ALL_CALLS:
        try:
            _bind(toy, method, n_args, keywords)
        except TypeError as exc:
            pytest.fail(f"{where}: ToyBackend.{method} does not bind: {exc}")


def test_the_toys_own_section_is_parsed_and_validated(registry) -> None:
    config = apply_overrides(RunConfig(), ["toy.price_scale=1.5"])
    assert config.section("toy").price_scale == 1.5
    assert type(config.section("toy")).__module__ == "qa_bench_toy.options"
    with pytest.raises(QABenchError, match=r"toy.price_scale = 0: must be a finite number > 0"):
        apply_overrides(RunConfig(), ["toy.price_scale=0"])


def test_a_name_registered_twice_is_an_error(registry, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _dist_info(tmp_path, "qa_bench_other", "toy = qa_bench_other:OtherToy")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(QABenchError, match="'toy' is registered twice"):
        registry.names()
    with pytest.raises(QABenchError, match="registered twice"):  # every time, never half-loaded
        registry.get("torch")


def test_the_generic_description_never_says_none(registry) -> None:
    fingerprint = {"kind": "toy", "pod": "toy1", "cores": 2, "threads": None}
    assert Backend.describe(fingerprint) == "toy: cores 2, pod toy1"
    assert registry.get("toy").describe(fingerprint) == "Toy accelerator rack toy1 (CPU stand-in)"


def test_no_line_of_qa_names_the_toy() -> None:
    for path in (ROOT / "qa").rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".json"):
            text = path.read_text(encoding="utf-8")
            assert "qa_bench_toy" not in text and "toy1" not in text, path


def test_the_outside_backend_is_sharded_run_described_gated_and_reported(
        toy_site: str, tmp_path: Path) -> None:
    profile = tmp_path / "toy.toml"
    profile.write_text(PROFILE)
    listing = _qa_bench(toy_site, tmp_path, "run", "--profile", str(profile), "--list",
                        "--shard", "1/2")
    assert listing.returncode == 0, listing.stderr[-2000:]
    # The toy's own price (toy2 twice toy1) decides the shards, not the CPU estimate.
    assert "shard 1/2: 1 entries, estimated 2.0 h\n  toy/toy2/tiny-bert__synthetic  ~2.0 h" \
        in listing.stdout
    # Its own settings section, from its own entry point, reaches its cost estimate.
    scaled = _qa_bench(toy_site, tmp_path, "run", "--profile", str(profile), "--list",
                       "--shard", "1/2", "--set", "toy.price_scale=2")
    assert "toy/toy2/tiny-bert__synthetic  ~4.0 h" in scaled.stdout, scaled.stderr[-2000:]
    listed = _qa_bench(toy_site, tmp_path, "config")
    assert "toy.price_scale" in listed.stdout, listed.stderr[-2000:]

    sets = [arg for item in TINY for arg in ("--set", item)]
    run = ["run", "--profile", str(profile), "--pods", "toy1", "--baselines",
           str(tmp_path / "baselines"), "--no-progress", *sets]
    first = _qa_bench(toy_site, tmp_path, *run, "--out", str(tmp_path / "run1"),
                      "--update-baselines")
    # Nothing to judge yet (exit 5), but the fit run became the baseline.
    assert first.returncode == 5, first.stdout + first.stderr[-2000:]
    assert "toy/toy1/tiny-bert__synthetic: ok" in first.stdout
    assert (tmp_path / "baselines" / "toy" / "toy1" / "tiny-bert__synthetic.json").is_file()

    second = _qa_bench(toy_site, tmp_path, *run, "--out", str(tmp_path / "run2"))
    assert second.returncode == 0, second.stdout + second.stderr[-2000:]
    assert "all held (exit 0)" in second.stdout
    report = (tmp_path / "run2" / "report.md").read_text()
    assert "| toy/toy1/tiny-bert__synthetic | exact_match" in report
    assert "✅ pass" in report
    assert "| hardware fingerprint | Toy accelerator rack toy1 (CPU stand-in) |" in \
        " ".join(report.split())
    assert "qa_bench_toy" in report and "None" not in report
