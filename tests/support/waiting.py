"""Waiting on a fake's condition variable until something it records comes true."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(cond: threading.Condition, predicate: Callable[[], T], timeout: float, failure: Callable[[], str]) -> T:
    """``predicate()``'s first truthy value, re-checked whenever ``cond`` is notified (and every
    0.5 s); ``TimeoutError(failure())`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with cond:
        while not (value := predicate()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(failure())
            cond.wait(min(left, 0.5))
        return value
