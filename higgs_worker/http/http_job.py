"""One HTTP request's job, checked already (``Service.prepare``), run with ``Worker.run`` in a thread.

Admission (``request_line``): ``Worker.jobs_at_once`` jobs run at once (the generation slots
plus IO_JOBS, ``higgs_worker.admission``); up to HTTP_QUEUE_LIMIT more wait, in arrival order,
each holding a ``Place`` taken before its body was read; beyond, 429. Inside,
a job holds a generation slot only while it generates. ``HttpJob.events`` gets ("audio",
piece) while it runs (when the route wants audio), then ("done", outcome): the job's
``JobOutput`` or ``JobFailure`` (``Worker.run``). A client that
goes away sets the job's stop flag: a waiting job leaves the queue, a generating one stops
at its next step.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import numpy as np
from fastapi import Request

from ..job_thread import JobThread
from ..jobs import PreparedJob
from .request_line import Place
from .service import Service

log = logging.getLogger(__name__)


class HttpJob:
    def __init__(self, service: Service, prepared: PreparedJob, want_audio: bool, place: Place):
        self.service, self.prepared, self.want_audio, self.place = service, prepared, want_audio, place
        self.id = f"http-{uuid.uuid4().hex[:12]}"
        self.thread = JobThread()
        self.events, self.stop = self.thread.events, self.thread.stop

    async def start(self) -> None:
        """Wait to be admitted (its place is in the line already), then run in a thread that
        leaves when done; the job gives its place back then."""
        service = self.service
        service.active[self.id] = "queued"
        try:
            await service.line.admit()
        except BaseException:
            service.active.pop(self.id, None)
            raise
        self.place.handed_over = True
        thread = self.thread

        def release() -> None:
            service.active.pop(self.id, None)
            service.line.done()
            self.place.release()

        def on_audio(piece: np.ndarray) -> None:
            thread.put(("audio", piece))

        def on_phase(phase: str) -> None:
            thread.call_soon(service.active.__setitem__, self.id, phase)

        thread.start(  # whatever happens, the waiting side gets ("done", outcome), then the slot is freed
            f"job-{self.id}",
            lambda: service.worker.run(
                {"id": self.id},
                should_stop=self.stop.is_set,
                on_audio=on_audio if self.want_audio else None,
                on_phase=on_phase,
                prepared=self.prepared,
            ),
            last=lambda outcome: ("done", outcome),
            after=release,
        )

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
