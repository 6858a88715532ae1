"""``python handler.py`` as a process of its own, as RunPod starts it: its output collected line by
line (each stamped with time.monotonic()), SIGKILL to its process group to stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``python handler.py`` with its output collected, each line stamped with time.monotonic()."""

    def __init__(self, env: dict):
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "handler.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: the SDK forks a heartbeat process
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_line(self, text: str, timeout: float) -> float:
        """The time the first line containing ``text`` was printed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((t for t, line in self.lines if text in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"worker printed no {text!r} within {timeout:.0f}s:\n{self.output()[-4000:]}")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and its heartbeat process; nothing to save
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    kill = close  # as when the machine dies
