#!/usr/bin/env bash
# Enable the Poplar SDK for the steps after this one: source its enable script and append every
# variable it set or changed (PATH, LD_LIBRARY_PATH, POPLAR_SDK_ENABLED, ...) to $GITHUB_ENV.
#   tools/ci/enable-sdk.sh /opt/poplar_sdk-ubuntu_20_04-3.3.0+1403-208993bbb7/enable
# The path comes from the workflow input poplar_sdk_enable or the repository variable
# POPLAR_SDK_ENABLE. QA_BENCH_CPU_STANDIN (set only by tools/ci/run_workflow.py, the CPU
# rehearsal) skips it: there is no SDK on a CPU machine.
set -euo pipefail
if [ -n "${QA_BENCH_CPU_STANDIN:-}" ]; then
    echo "enable-sdk.sh: CPU stand-in (QA_BENCH_CPU_STANDIN): no Poplar SDK enabled"
    exit 0
fi
enable="${1:-}"
if [ -z "$enable" ]; then
    echo "::error::no Poplar SDK enable script: set the workflow input poplar_sdk_enable or the repository variable POPLAR_SDK_ENABLE (the SDK's 'enable' file, e.g. /opt/poplar_sdk-ubuntu_20_04-3.3.0+1403-208993bbb7/enable)"
    exit 2
fi
if [ ! -f "$enable" ]; then
    echo "::error::$enable: no such file (the Poplar SDK's enable script on this runner)"
    exit 2
fi
python3 - "$enable" "${GITHUB_ENV:?not under GitHub Actions: GITHUB_ENV is unset}" <<'PY'
import os, subprocess, sys, uuid
enable, github_env = sys.argv[1:3]
out = subprocess.run(["bash", "-c", 'source "$1" >&2 && env -0', "_", enable],
                     stdout=subprocess.PIPE, check=True).stdout.decode()
after = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
skip = {"_", "SHLVL", "PWD", "OLDPWD"}
changed = {k: v for k, v in after.items()
           if os.environ.get(k) != v and k not in skip and not k.startswith("BASH_FUNC_")}
if not after.get("POPLAR_SDK_ENABLED"):
    sys.exit(f"::error::{enable} did not set POPLAR_SDK_ENABLED: not a Poplar SDK enable script")
with open(github_env, "a", encoding="utf-8") as fh:
    for key, value in sorted(changed.items()):
        delimiter = f"EOF_{uuid.uuid4().hex}"
        fh.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
print(f"enable-sdk.sh: Poplar SDK at {after['POPLAR_SDK_ENABLED']}; kept "
      f"{', '.join(sorted(changed))} for the next steps")
PY
