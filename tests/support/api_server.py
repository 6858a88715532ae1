"""``python handler.py --rp_serve_api``: the runpod SDK's local API server, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def rp_serve_api(
    env: dict, output=subprocess.DEVNULL, ready_timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the worker's local API on a free port; yield (base URL, process) once it answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "handler.py", "--rp_serve_api", "--rp_api_port", str(port), "--rp_api_host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                requests.get(f"{url}/docs", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the API server did not start (exit code {proc.poll()})") from None
                time.sleep(0.3)
        yield url, proc
    finally:
        stop(proc)
