#!/usr/bin/env bash
# A light qa-bench install for the jobs that only plan and merge: qa-bench without torch,
# transformers or datasets (constraints/merge.txt holds what `qa-bench plan` and `qa-bench merge`
# import; tests/reporting/test_merge_light.py checks that merge imports no training library).
#   tools/ci/install-light.sh VENV
set -euo pipefail
venv="${1:?usage: install-light.sh VENV}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/constraints/merge.txt"
# --no-deps: pyproject's torch, transformers and datasets stay out (pip may list them as unmet)
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$root"
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "install-light.sh: torch is importable in $venv: not a light install" >&2
    exit 1
fi
echo "install-light.sh: qa-bench in $venv without torch, transformers or datasets"
