#!/usr/bin/env bash
# Create .venv with the locked runtime and test tools (requirements-dev.lock, from
# requirements-runtime.txt and requirements-dev.txt), and the audiobook client (./client, editable). Idempotent: a second
# run only checks the pins.
# torch/torchaudio from PyPI are CUDA builds (about 7 GB installed); they run on the CPU too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup-dev: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
# requirements-dev.lock: every distribution of requirements-runtime.txt and requirements-dev.txt
# pinned with its PyPI hashes (scripts/lock.sh writes it; CPython 3.11 on x86_64 Linux). The lock
# is the whole tree, so --no-deps (pip's secure-install form; pip < 24 also fails on a dependency's
# extras, such as fastapi-cli's uvicorn[standard], under --require-hashes without it); pip check
# then proves nothing is missing.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r requirements-dev.lock
.venv/bin/python -m pip check --disable-pip-version-check >/dev/null
# the audiobook client (client/): editable, so tests run this checkout's code and `higgs-tts` exists;
# its dependencies are pinned in requirements-dev.txt (the same pins as client/pyproject.toml).
# Installed once: a .venv shared with another checkout (the smoke test's copy links this one in)
# keeps pointing at the checkout that installed it; `pip install -e ./client` there to move it.
if ! .venv/bin/python -c "import higgs_tts" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./client
fi
echo "setup-dev: .venv ready ($(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
