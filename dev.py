#!/usr/bin/env python3
"""Bootstrap and run qa-bench with nothing but python3 and pip.

    python3 dev.py bench [qa-bench run options]   # the embedded-default benchmark, ends in a report
    python3 dev.py test  [pytest options]         # the unit tests, end-to-end runs left out
    python3 dev.py test -m e2e                    # the end-to-end runs (CI runs both)
    python3 dev.py lint                           # ruff

The first call creates ./.venv and installs the project; later calls reinstall only when
pyproject.toml or constraints/torch.txt change. torch is pinned by constraints/torch.txt and
installed to match the machine: on a machine without an NVIDIA GPU the CPU build from PyTorch's
CPU wheel index (about 1.6 GB installed) when that index answers within a few seconds, else the
default index's build (on Linux x86_64 that is the CUDA build, about 5.4 GB, which runs on the
CPU too). One line says which build was installed and why.

``dev.py test`` is the developer's loop (a few minutes on 2 cores): tests marked ``e2e`` (real
training, qa-bench and pytest subprocesses) are left out unless a ``-m`` or a test path says
otherwise; ``.ci/run`` runs them as a second step.

``python dev.py pip-install [pip options] PACKAGES`` is the same install step for tox's
``install_command``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("QA_BENCH_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".qa-bench-install"
CONSTRAINTS = ROOT / "constraints" / "torch.txt"
TORCH_CPU_INDEX = os.environ.get("QA_BENCH_TORCH_CPU_INDEX", "https://download.pytorch.org/whl/cpu")
PROBE_TIMEOUT_S = 5.0


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is loaded (``/proc/driver/nvidia``) or ``nvidia-smi`` is on the PATH."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def index_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether ``url`` answers an HTTP request within ``timeout`` seconds, and if not, why."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True, ""
    except urllib.error.HTTPError as exc:  # it answered: the index is there
        return exc.code < 500, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason) or type(exc).__name__


def torch_plan(gpu: bool | None = None, index: str = TORCH_CPU_INDEX,
               timeout: float = PROBE_TIMEOUT_S) -> tuple[list[str] | None, str]:
    """How to install torch on this machine: pip index options for a torch-first install
    (None: let the project install take the default index's build) and why, in words."""
    if has_nvidia_gpu() if gpu is None else gpu:
        return None, "an NVIDIA GPU is present: the default index's CUDA build"
    ok, why = index_reachable(index.rstrip("/") + "/torch/", timeout)
    if ok:
        return ["--index-url", index], f"no NVIDIA GPU: the CPU build from {index}"
    return None, (f"no NVIDIA GPU, but {index} did not answer ({why}): the default index's build "
                  "(on Linux x86_64 the CUDA build, ~5 GB, which runs on the CPU)")


def pip_install(python: str, args: list[str], quiet: bool = True) -> None:
    """``pip install`` with the torch pin; torch itself first, from the index that fits."""
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check",
           *(["-q"] if quiet else [])]
    have_torch = subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0
    why = None
    if not have_torch:
        index, why = torch_plan()
        if index is not None:
            subprocess.run([*pip, *index, "-c", str(CONSTRAINTS), "torch"], check=True)
    subprocess.run([*pip, "-c", str(CONSTRAINTS), *args], check=True)
    if why is not None:
        build = subprocess.run(
            [python, "-c", "import torch; print(torch.__version__, "
                           "'(CUDA ' + torch.version.cuda + ' build)' if torch.version.cuda "
                           "else '(CPU build)')"], capture_output=True, text=True).stdout.strip()
        print(f"dev.py: installed torch {build} — {why}", flush=True)


def _install_hash() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_env() -> None:
    """Create the virtual environment and install the project into it when needed."""
    if not PY.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _install_hash()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("dev.py: installing qa-bench and its dependencies (first run: a few minutes)",
          flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "--upgrade", "pip"], check=True)
    pip_install(str(PY), ["-e", f"{ROOT}[dev]"])
    STAMP.write_text(wanted)


def pytest_args(args: list[str], root: Path = ROOT) -> list[str]:
    """pytest's arguments for ``dev.py test ARGS``: all of ``tests/`` but the ``e2e`` runs, unless
    ARGS name tests (a path) or their own ``-m`` (pytest keeps the last ``-m``)."""
    names_tests = any(not arg.startswith("-") and (root / arg.split("::", 1)[0]).exists()
                      for arg in args)
    return [*args] if names_tests else ["tests", "-m", "not e2e", *args]


def main(argv: list[str]) -> int:
    if argv and argv[0] == "pip-install":  # tox's install_command: the current interpreter
        try:
            pip_install(sys.executable, argv[1:], quiet=False)
        except subprocess.CalledProcessError as exc:
            return exc.returncode or 1
        return 0
    if not argv or argv[0] not in ("bench", "test", "lint"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        ensure_env()
    except subprocess.CalledProcessError as exc:
        print(f"dev.py: installation failed (exit {exc.returncode})", file=sys.stderr)
        return 2
    env = dict(os.environ)
    # Tests and the default job never need the hub: fail fast instead of retrying for a minute.
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    if command == "bench":
        return subprocess.run([str(BIN / "qa-bench"), "run", *rest], cwd=ROOT, env=env).returncode
    if command == "lint":
        return subprocess.run([str(BIN / "ruff"), "check", "."], cwd=ROOT, env=env).returncode
    code = subprocess.run([str(PY), "-m", "pytest", *pytest_args(rest)], cwd=ROOT,
                          env=env).returncode
    if code == 5:  # pytest's "no tests collected" must never pass silently
        print("dev.py: pytest collected no tests", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
