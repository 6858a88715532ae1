#!/usr/bin/env bash
# The test command (README; .ci/run runs exactly this): install what the tests need (the Debian
# packages of scripts/test-system-packages.txt, then .venv from requirements-dev.lock), lint and
# format check, the shipping checks, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
# the programs the tests run from those packages: espeak-ng (speech for the word-alignment tests),
# chromium and chromedriver (Debian's chromium-driver; the playground's browser tests). One missing
# after the install (another distribution names or ships them differently) stops here, by name.
for program in espeak-ng chromium chromedriver; do
    if ! command -v "$program" >/dev/null 2>&1; then
        echo "test.sh: '$program' is not on PATH after installing scripts/test-system-packages.txt" >&2
        exit 1
    fi
done
bash scripts/setup-dev.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ -x .ci/shipping-checks.sh ]; then
    PATH="$PWD/.venv/bin:$PATH" bash .ci/shipping-checks.sh
fi
# three pytest processes (pytest-xdist), a test file each at a time so that a module's fixtures
# (worker processes, servers) start once; three on 2 cores because many tests wait on worker
# processes and timers (measured: 483 s with 3, 531 s with 2); PYTEST_WORKERS=0: one process.
# Each test has its own limit (pyproject.toml, pytest-timeout); the whole run has this one
# (PYTEST_TIME_LIMIT seconds, 1800 unless set), so a hang outside any test (a child process
# that never exits, a stuck interpreter shutdown) ends the command with a message rather than
# holding CI until its own limit. --durations: the slowest tests, printed at the end.
limit="${PYTEST_TIME_LIMIT:-1800}"
status=0
timeout --kill-after=30 "$limit" .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-3}" --dist loadfile \
    --durations=15 "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "test.sh: pytest did not finish within ${limit} s (PYTEST_TIME_LIMIT); stopped" >&2
fi
exit "$status"
