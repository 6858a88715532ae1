"""The HTTP door's admission (issue 26): ``Worker.jobs_at_once`` requests run at once, at most
``HTTP_QUEUE_LIMIT`` more wait in arrival order, and the next gets 429 with ``Retry-After``
before its body is even read.

A request takes a ``Place`` first thing (nothing read, nothing decoded); the place is
given back when the request ends: refused (400, 503), left while waiting, or its job done.
Only an admitted job decodes or fetches audio (``Worker.run``'s inputs phase), so the line
holds bodies, never decoded clips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from ..admission import queue_limit_for
from ..jobs import Worker
from .errors import QUEUE_FULL_RETRY_AFTER, ApiError


class Place:
    """One request's place (waiting or running); ``release`` once, from the serving loop."""

    def __init__(self, line: RequestLine):
        self.line, self.held = line, True
        self.handed_over = False  # its job started: the job gives the place back when it ends

    def release(self) -> None:
        if self.held:
            self.held = False
            self.line.places -= 1


class RequestLine:
    def __init__(self, worker: Worker):
        self.worker = worker
        self.places = 0  # requests that hold a place: waiting or running
        self.running: asyncio.Semaphore | None = None  # made on the serving loop, at first use

    def limits(self) -> tuple[int, int]:
        """(run at once, may wait): both follow the worker's slots (lower once the engine planned fewer)."""
        at_once = self.worker.jobs_at_once
        return at_once, queue_limit_for(self.worker.settings.http_queue_limit, at_once)

    def take(self) -> Place:
        """A place, or 429 (``queue_full``) when every running and waiting place is taken."""
        at_once, waiting = self.limits()
        if self.places >= at_once + waiting:
            raise ApiError(
                429,
                f"the worker is busy: {at_once} requests running and {waiting} waiting (HTTP_QUEUE_LIMIT); "
                f"try again in {QUEUE_FULL_RETRY_AFTER} s",
                "queue_full",
            )
        self.places += 1
        return Place(self)

    @contextmanager
    def place(self) -> Iterator[Place]:
        """A place for one request, given back on leaving unless its job started (and keeps it)."""
        place = self.take()
        try:
            yield place
        finally:
            if not place.handed_over:
                place.release()

    async def admit(self) -> None:
        """Wait (in arrival order) until one of the ``jobs_at_once`` runs ends."""
        if self.running is None:
            self.running = asyncio.Semaphore(self.limits()[0])
        await self.running.acquire()

    def done(self) -> None:
        assert self.running is not None
        self.running.release()
