"""``WORKER_MODE=http python handler.py``: the worker's HTTP mode, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.api_server import ROOT, _free_port
from tests.support.processes import stop


@dataclass
class HttpWorker:
    url: str
    proc: subprocess.Popen
    log_path: Path
    ping_codes: list[int] = field(default_factory=list)  # /ping answers from start until ready

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {text!r} in the worker log:\n{self.log()[-3000:]}")
            time.sleep(0.2)


@contextmanager
def http_worker(
    env: dict, log_path: Path, ready_timeout: float = 180, root: Path = ROOT, until: int = 200
) -> Iterator[HttpWorker]:
    """Start the HTTP mode (``root``'s handler.py) on a free port; yield once /ping answers
    ``until`` (200: ready; 204: serving while the model loads), its earlier answers kept."""
    port = _free_port()
    log_file = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-u", "handler.py"],
        cwd=root,
        env={**env, "WORKER_MODE": "http", "PORT": str(port)},
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    worker = HttpWorker(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                code = requests.get(f"{worker.url}/ping", timeout=2).status_code
                worker.ping_codes.append(code)
                if code in (until, 200):
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP worker is not ready (exit {proc.poll()}):\n{worker.log()[-3000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        stop(proc)
        log_file.close()
