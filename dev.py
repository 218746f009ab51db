#!/usr/bin/env python3
"""Bootstrap and run qa-bench with nothing but python3 and pip.

    python3 dev.py bench [qa-bench run options]   # the embedded-default benchmark, ends in a report
    python3 dev.py test  [pytest options]         # the unit tests (what CI runs)
    python3 dev.py lint                           # ruff

The first call creates ./.venv and installs the project with the CPU build of torch pinned by
constraints/cpu.txt; later calls reinstall only when pyproject.toml or the constraints change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("QA_BENCH_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".qa-bench-install"


def _install_hash() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints/cpu.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_env() -> None:
    """Create the virtual environment and install the project into it when needed."""
    if not PY.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = _install_hash()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("dev.py: installing qa-bench and its dependencies (first run: about a minute)",
          flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-c", str(ROOT / "constraints" / "cpu.txt"), "-e", f"{ROOT}[dev]"],
                   check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
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
    code = subprocess.run([str(PY), "-m", "pytest", "tests", *rest], cwd=ROOT, env=env).returncode
    if code == 5:  # pytest's "no tests collected" must never pass silently
        print("dev.py: pytest collected no tests", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
