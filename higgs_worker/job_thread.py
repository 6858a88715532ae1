"""The one bridge from a job's thread to asyncio, used by both doors (``handler.py``'s queue
handlers and ``http.http_job``).

A job runs in a daemon thread of its own (generation blocks); what it hands out (stream
items, audio pieces, phases) reaches the event loop's ``events`` queue, and whatever happens
in the thread (an outcome, or an exception no one caught) the waiting side gets exactly one
last event. ``stop`` is the job's stop flag: the door sets it when its caller goes away.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from .contract.errors import GENERATION_FAILED, JobFailure

# The outcome when the job's thread ended without one (an exception escaped ``Worker.run``).
ENDED_UNEXPECTEDLY = JobFailure(GENERATION_FAILED, "the job ended unexpectedly; the worker is still serving")


class JobThread:
    """Made on the event loop's thread (it takes the running loop); ``put`` and ``call_soon``
    are safe from any thread, and do nothing once the loop has closed (nobody waits then)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue = asyncio.Queue()
        self.stop = threading.Event()

    def put(self, event: Any) -> None:
        self.call_soon(self.events.put_nowait, event)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        with suppress(RuntimeError):  # the event loop has closed
            self.loop.call_soon_threadsafe(fn, *args)

    def start(
        self,
        name: str,
        work: Callable[[], Any],
        last: Callable[[Any], Any],
        after: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work`` in a thread; its outcome (``ENDED_UNEXPECTEDLY`` when it raised)
        goes to ``events`` as ``last(outcome)``, then ``after`` runs on the loop."""

        def body() -> None:
            outcome: Any = ENDED_UNEXPECTEDLY
            try:
                outcome = work()
            finally:  # whatever happens, the waiting side gets its last event
                self.put(last(outcome))
                if after is not None:
                    self.call_soon(after)

        threading.Thread(target=body, name=name, daemon=True).start()
