#!/usr/bin/env bash
# GPU check for continuous batching (issue 8): one script, under 8 minutes on an H200.
# Full-size architecture with random weights (no download). Prints figures; exits non-zero
# if a gpu test fails. Run from the repository root: bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv || true

echo "== gpu tests (compiled static path and batched path vs generate(), bf16)"
timeout 300 "$PY" -m pytest tests/test_gpu_batching.py -q -rs -p no:cacheprovider

echo "== batch-1 engine vs reference generate() (RTF no worse than before)"
timeout 150 "$PY" -m higgs_worker.bench --full-size-random --frames 300 | head -n 8

echo "== concurrency 1,8,16,32 vs the same jobs one after another"
timeout 240 "$PY" -m higgs_worker.bench --full-size-random --frames 250 --concurrency 1,8,16,32 | head -n 20
