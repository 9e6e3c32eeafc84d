#!/usr/bin/env bash
# Create .venv and install nicodec with every extra (evaluation, training, service, ONNX) and the test tools.
# torch is pinned to the CPU build 2.13.0 first, so pip never resolves a (multi-GB) CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | { grep -v "^WARNING: Location" || true; }
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,all]" 2>&1 | { grep -v "^WARNING: Location" || true; }
.venv/bin/python -c "import nicodec, torch; print('nicodec', nicodec.__version__, 'torch', torch.__version__)"
