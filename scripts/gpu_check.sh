#!/usr/bin/env bash
# On the GPU machine: install the carried wheels into /tmp/site (no network there), then run the check.
# Prints step times, tokens/s and a final PASS/FAIL line (scripts/gpu_check.py).
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu_check/whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
timeout 480 python3 scripts/gpu_check.py "$@"
