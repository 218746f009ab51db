"""dev.py: which torch build a machine gets, and the fallback when the CPU index cannot be
reached (as on our CI machines); which tests ``dev.py test`` runs."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dev():
    spec = importlib.util.spec_from_file_location("qa_bench_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = _dev()


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[str]:
    """A local 'wheel index' with a torch/ page, served over HTTP on a free port."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<a href='torch-2.13.0+cpu.whl'>torch</a>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_an_nvidia_gpu_takes_the_default_index() -> None:
    index, why = dev.torch_plan(gpu=True)
    assert index is None and "NVIDIA GPU is present" in why


def test_a_reachable_cpu_index_is_used_without_a_gpu(local_index: str) -> None:
    index, why = dev.torch_plan(gpu=False, index=local_index)
    assert index == ["--index-url", local_index]
    assert "CPU build" in why


def test_an_unreachable_cpu_index_falls_back_and_says_why() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    index, why = dev.torch_plan(gpu=False, index=f"http://127.0.0.1:{port}/whl/cpu")
    assert index is None
    assert "did not answer" in why and "default index" in why and "CUDA" in why


def test_a_silent_cpu_index_is_given_up_after_the_timeout() -> None:
    with socket.socket() as server:  # accepts the connection, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        began = time.perf_counter()
        index, why = dev.torch_plan(gpu=False, index=f"http://127.0.0.1:{server.getsockname()[1]}/",
                                    timeout=0.5)
        assert time.perf_counter() - began < 5
    assert index is None and "did not answer" in why


def test_the_pin_is_one_release() -> None:
    lines = [line for line in (ROOT / "constraints" / "torch.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("torch==")


def test_the_developer_loop_leaves_out_the_end_to_end_runs_unless_asked() -> None:
    assert dev.pytest_args([]) == ["tests", "-m", "not e2e"]
    assert dev.pytest_args(["-x", "-k", "verdict"]) == ["tests", "-m", "not e2e", "-x", "-k",
                                                        "verdict"]
    # pytest keeps the last -m: the end-to-end runs alone (CI's second step)
    assert dev.pytest_args(["-m", "e2e"])[-2:] == ["-m", "e2e"]
    # a path names its own tests, e2e ones included
    assert dev.pytest_args(["tests/run/test_pipeline.py::test_same_seed_same_scores"]) == [
        "tests/run/test_pipeline.py::test_same_seed_same_scores"]
    assert dev.pytest_args(["tests", "-q"]) == ["tests", "-q"]
