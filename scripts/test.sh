#!/usr/bin/env bash
# The test command: install what the tests need, lint and format check, the shipping checks, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-dev.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ -x .ci/shipping-checks.sh ]; then
    PATH="$PWD/.venv/bin:$PATH" bash .ci/shipping-checks.sh
fi
# two pytest processes (pytest-xdist), a test file each at a time so that a module's fixtures
# (worker processes, servers) start once; PYTEST_WORKERS=0 runs in this process
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
