#!/usr/bin/env bash
# The shard job's environment: its own venv with the SDK's poptorch wheel, the optimum-graphcore
# release that matches the SDK with that release's pins (constraints/sdk/<major.minor>.txt, the
# same files `tox -e ipu` reads), and qa-bench without its own dependency ranges (--no-deps:
# optimum-graphcore pins transformers below pyproject's range). Ends by asking the IPU backend
# whether it can run: poptorch importable and an IPU attached, or the reason and exit 1.
#   tools/ci/install-ipu.sh VENV            (after tools/ci/enable-sdk.sh)
# QA_BENCH_CPU_STANDIN (tools/ci/run_workflow.py only): VENV gets python and qa-bench wrappers
# that run this checkout's qa on $QA_BENCH_STANDIN_VENV's packages (qa-bench's CPU dependencies).
set -euo pipefail
venv="${1:?usage: install-ipu.sh VENV}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -n "${QA_BENCH_CPU_STANDIN:-}" ]; then
    # $venv/bin/python and qa-bench: the stand-in venv's interpreter and packages, with this
    # checkout's qa first on the path (the code the job checked out, not the stand-in's own).
    src="${QA_BENCH_STANDIN_VENV:?QA_BENCH_CPU_STANDIN needs QA_BENCH_STANDIN_VENV: a venv with qa-bench and its CPU dependencies}"
    mkdir -p "$venv/bin"
    printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec "%s" "$@"\n' \
        "$root" "$src/bin/python" >"$venv/bin/python"
    printf '#!/bin/sh\nexec "%s" -m qa.frontends.cli "$@"\n' "$venv/bin/python" >"$venv/bin/qa-bench"
    chmod +x "$venv/bin/python" "$venv/bin/qa-bench"
    where="$("$venv/bin/python" -c 'import qa, os; print(os.path.dirname(os.path.dirname(qa.__file__)))')"
    [ "$where" = "$root" ] || { echo "install-ipu.sh: the stand-in imports qa from $where, not $root" >&2; exit 1; }
    echo "install-ipu.sh: CPU stand-in: $venv runs $root's qa on $src's packages (no poptorch, no optimum-graphcore)"
    exit 0
fi
sdk="${POPLAR_SDK_ENABLED:?the Poplar SDK is not enabled: run tools/ci/enable-sdk.sh first}"
shopt -s nullglob
wheels=("$sdk"/../poptorch-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
    echo "::error::expected one poptorch wheel beside $sdk, found ${#wheels[@]}"
    exit 2
fi
version="$(basename "${wheels[0]}" | sed -E 's/^poptorch-([0-9]+\.[0-9]+)\..*/\1/')"
pins="$root/constraints/sdk/$version.txt"
if [ ! -f "$pins" ]; then
    echo "::error::no pins for Poplar SDK $version in constraints/sdk/ (have: $(cd "$root/constraints/sdk" && echo *.txt)); add the optimum-graphcore release of that SDK and its pins (docs/ipu.md)"
    exit 2
fi
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
# poptorch pins the SDK's torch; PyTorch's CPU index keeps pip from taking the CUDA build.
"${pip[@]}" --extra-index-url https://download.pytorch.org/whl/cpu "${wheels[0]}"
"${pip[@]}" -r "$pins"
"${pip[@]}" --no-deps -e "$root"
echo "install-ipu.sh: Poplar SDK $version, $(basename "${wheels[0]}"), pins $pins"
"$venv/bin/python" -c "from qa.backends.ipu import IPUBackend
ok, why = IPUBackend.available()
print('IPU backend:', 'available' if ok else why)
raise SystemExit(0 if ok else 1)"
