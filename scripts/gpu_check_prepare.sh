#!/usr/bin/env bash
# Run here (where pip reaches PyPI and .venv exists): puts into .gpu_check/ (git-ignored) what the GPU
# machine lacks: wheels of TRL, datasets and their missing pure-Python needs for its Python 3.12, and
# the tiny test model. Then: the device tool's run with carry [".gpu_check"] and command
# "bash scripts/gpu_check.sh" (under 64 MiB in all; the check takes a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu_check && mkdir -p .gpu_check/whl
for pkg in trl==1.16.0 datasets==5.2.0 dill==0.4.0 multiprocess==0.70.18 gguf==0.19.0; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu_check/whl "$pkg"
done
.venv/bin/python -c "from actrl.models.loading import build_tiny_model; build_tiny_model('.gpu_check/tiny', heads=2, kv_heads=1)"
du -sh .gpu_check
