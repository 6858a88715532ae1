"""One HTTP request's job, run with ``Worker.run`` in a thread.

``HttpJob.events`` gets ("audio", piece) while it runs (when the route wants audio), then
("done", output). Jobs wait their turn for a slot (never refused); a client that goes away
sets the job's stop flag, so generation stops at its next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from contextlib import suppress
from typing import Any

import numpy as np
from fastapi import Request

from .service import Service

log = logging.getLogger(__name__)


class HttpJob:
    def __init__(self, service: Service, job_input: dict, want_audio: bool):
        self.service, self.job_input, self.want_audio = service, job_input, want_audio
        self.id = f"http-{uuid.uuid4().hex[:12]}"
        self.events: asyncio.Queue = asyncio.Queue()
        self.stop = threading.Event()

    async def start(self) -> None:
        """Wait for a slot (as long as it takes), then run in a thread that frees the slot when done."""
        service = self.service
        if service.slots is None:  # jobs share decode steps (scheduler); more requests wait, never refused
            service.slots = asyncio.Semaphore(service.worker.concurrency)
        service.active[self.id] = "queued"
        try:
            await service.slots.acquire()
        except BaseException:
            service.active.pop(self.id, None)
            raise
        service.active[self.id] = "running"
        loop = asyncio.get_running_loop()

        def put(event: tuple) -> None:
            with suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(self.events.put_nowait, event)

        def release() -> None:
            service.active.pop(self.id, None)
            service.slots.release()

        def on_audio(piece: np.ndarray) -> None:
            put(("audio", piece))

        def work() -> None:
            output = {"error": "generation_failed: the job ended unexpectedly; the worker is still serving"}
            try:
                output = service.worker.run(
                    {"id": self.id, "input": self.job_input},
                    self.stop.is_set,
                    None,
                    None,
                    on_audio if self.want_audio else None,
                )
            finally:  # whatever happens, the slot is freed and the waiting side gets its result
                put(("done", output))
                with suppress(RuntimeError):
                    loop.call_soon_threadsafe(release)

        threading.Thread(target=work, name=f"job-{self.id}", daemon=True).start()

    def cancel(self, why: str) -> None:
        if not self.stop.is_set():
            self.stop.set()
            log.info("request %s: %s; stopping its generation", self.id, why)

    async def first_event(self, request: Request) -> tuple[str, Any] | None:
        """Start the job and wait for its first event; None when the client left first."""

        async def first() -> tuple[str, Any]:
            await self.start()
            return await self.events.get()

        getter = asyncio.ensure_future(first())
        watcher = asyncio.ensure_future(disconnected(request))
        try:
            done, _ = await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if getter in done:
            return getter.result()
        getter.cancel()
        self.cancel("the client disconnected while waiting")
        return None


async def disconnected(request: Request) -> None:
    """Returns when the client has gone (the request body is already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
