"""Keeping under RunPod's request limits, and backing off when it says 429.

RunPod's serverless operations (docs.runpod.io/serverless/references/operations):
``/run`` 1000 requests per 10 s (200 concurrent), ``/status`` and ``/stream`` 2000 per 10 s
(400 concurrent), ``/cancel`` 100 per 10 s (20 concurrent); a ``/run`` is also refused with
429 when the queue holds more than 50 jobs and more than 500 x the endpoint's max workers.
The pacer spaces each kind of request at half its documented rate, and after a 429 holds
every kind until ``Retry-After`` (or 1, 2, 4 ... 30 s, with jitter) has passed.
"""

from __future__ import annotations

import random
import threading
import time

# requests per second: half of RunPod's documented per-endpoint limits
DEFAULT_RATES = {"run": 50.0, "status": 100.0, "cancel": 5.0, "health": 5.0}
MAX_PAUSE_S = 30.0


class RequestPacer:
    def __init__(self, rates: dict[str, float] | None = None):
        self.rates = dict(DEFAULT_RATES if rates is None else rates)
        self._lock = threading.Lock()
        self._next = dict.fromkeys(self.rates, 0.0)
        self._paused_until = 0.0
        self._strikes = 0
        self.throttled_count = 0  # 429s seen (for the summary and the tests)

    def acquire(self, kind: str) -> None:
        """Wait until a request of ``kind`` may go out."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(kind, 0.0), self._paused_until)
            self._next[kind] = start + 1.0 / self.rates.get(kind, 10.0)
        if start > now:
            time.sleep(start - now)

    def throttled(self, retry_after: float | None) -> float:
        """A 429: hold every request for a while; returns the pause in seconds."""
        with self._lock:
            self._strikes += 1
            self.throttled_count += 1
            if retry_after is not None and retry_after >= 0:
                pause = min(MAX_PAUSE_S, retry_after)
            else:
                pause = min(MAX_PAUSE_S, 2.0 ** (self._strikes - 1)) * random.uniform(0.8, 1.2)
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
            return pause

    def succeeded(self) -> None:
        with self._lock:
            self._strikes = 0


def retry_after_seconds(headers) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is ignored)."""
    value = (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
