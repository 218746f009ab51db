#!/usr/bin/env bash
# Make sure a headless Chromium is here for the dashboard's browser test
# (tests/reporting/test_publish_browser.py): print its path, installing Debian's `chromium`
# package first when it is missing and we are root with apt-get (as on CI's machine).
# Exit 0 with the path on stdout; 1 with one line on stderr when none can be had.
# QA_BENCH_CHROMIUM names another browser binary (then nothing is installed).
set -euo pipefail
if [ -n "${QA_BENCH_CHROMIUM:-}" ]; then
  command -v "$QA_BENCH_CHROMIUM" && exit 0
  echo "tools/chromium.sh: QA_BENCH_CHROMIUM=$QA_BENCH_CHROMIUM is not an executable" >&2
  exit 1
fi
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null; then command -v "$name"; exit 0; fi
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "tools/chromium.sh: no chromium; install it (Debian/Ubuntu: sudo apt-get install -y chromium) or set QA_BENCH_CHROMIUM" >&2
  exit 1
fi
# Another apt client may hold the dpkg lock for a while: wait for it rather than fail.
for attempt in 1 2 3 4 5; do
  if apt-get update -qq >&2 \
     && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 chromium >&2; then
    command -v chromium && exit 0
  fi
  echo "tools/chromium.sh: apt-get failed (try $attempt of 5), retrying in 20 s" >&2
  sleep 20
done
echo "tools/chromium.sh: could not install chromium with apt-get" >&2
exit 1
