#!/usr/bin/env bash
# bootstrap.sh - container entry point of the Higgs Audio v2 RunPod worker (the image's ENTRYPOINT).
# Runs higgs_worker/bootstrap.py (standard library only) with BOOTSTRAP_PYTHON [python3]: it
# installs the locked runtime (requirements-runtime.lock) once per volume and exec's
# `python -u handler.py "$@"` from it. Its docstring lists the settings.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
python=${BOOTSTRAP_PYTHON:-python3}
if ! command -v -- "$python" >/dev/null 2>&1; then
    echo "[bootstrap] ERROR: Python interpreter '${python}' not found; set BOOTSTRAP_PYTHON to a Python 3.11 interpreter"
    echo "[bootstrap] ERROR: the worker cannot start; see the message above."
    exit 1
fi
# -c with this folder first on sys.path: a script run by path would put higgs_worker/ itself on
# sys.path, where its http/ and io/ packages would hide the standard library's.
exec "$python" -u -c 'import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path
from higgs_worker.bootstrap import main; sys.exit(main(sys.argv[2:], Path(sys.argv[1])))' "$here" "$@"
