#!/usr/bin/env bash
# The test command: install what the tests need, lint, run the shipping checks and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-dev.sh
.venv/bin/ruff check .
if [ -x .ci/shipping-checks.sh ]; then
    PATH="$PWD/.venv/bin:$PATH" bash .ci/shipping-checks.sh
fi
exec .venv/bin/python -m pytest "$@"
