"""handler.py run once the way RunPod's SDK simulates a job locally (``--test_input``), and the
result line it prints read back. Used by the tests of the queue door and of whatever a whole
worker process must do (startup, voice design, the compile fallback)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import ROOT


def run_test_input(env: dict, job_input: dict, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "handler.py", "--test_input", json.dumps({"input": job_input})],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def job_result(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if "Job result: " in line)
    return ast.literal_eval(line.split("Job result: ", 1)[1])
