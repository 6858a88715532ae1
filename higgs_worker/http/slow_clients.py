"""Deadlines for slow clients and a cap on connections (issue 26, finding 6).

uvicorn has no deadline for a request's head (only the idle keep-alive timeout, which the first
byte of a new head cancels) and none for its body, and its ``limit_concurrency`` answers 503 to
every request past the limit, ``/ping`` included. So:

- ``guarded_protocol``: uvicorn's own HTTP protocol (``AutoHTTPProtocol``: httptools, or h11),
  subclassed: a connection must send a whole request head within HTTP_HEADER_TIMEOUT_SECONDS of
  opening (or of its previous response) or it is closed; beyond HTTP_MAX_CONNECTIONS open
  connections, a new one closes the oldest connection still waiting for its head (a slow
  client's), or, when every connection is serving a request, is itself closed. A flood of
  half-sent heads therefore neither fills the server nor keeps a ``/ping`` out.
- ``BodyDeadline``: ASGI middleware; a request body must arrive whole within
  HTTP_BODY_TIMEOUT_SECONDS of its head, or the request gets 408 (``body_timeout``) and the
  connection is closed.
"""

from __future__ import annotations

import asyncio
import time

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .errors import ApiError


def guarded_protocol(
    header_timeout: float, max_connections: int, base: type[asyncio.Protocol] = AutoHTTPProtocol
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``base``: httptools' when installed, else h11's) with a head
    deadline and a connection cap, for ``uvicorn.Config(http=...)``."""

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer = None
            self._wait_for_head()
            if len(self.connections) > max_connections:
                waiting = [c for c in self.connections if getattr(c, "_awaiting_head", lambda: False)()]
                oldest = min((c for c in waiting if c is not self), key=lambda c: c._head_since, default=None)
                (oldest or self).transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._wait_for_head()

        def connection_lost(self, exc) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _wait_for_head(self) -> None:
            """From now, a new request head (a new request cycle) must come within ``header_timeout``."""
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_cycle, self._head_since = self.cycle, time.monotonic()
            self._head_timer = self.loop.call_later(header_timeout, self._head_deadline)

        def _awaiting_head(self) -> bool:
            return self.cycle is self._head_cycle and not self.transport.is_closing()

        def _head_deadline(self) -> None:
            self._head_timer = None
            if self._awaiting_head():
                self.transport.close()

    return GuardedProtocol


class BodyDeadline:
    """Pure ASGI middleware: the body must be whole within ``seconds`` of the head, else 408."""

    def __init__(self, app, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        whole = False

        async def timed_receive() -> dict:
            nonlocal whole
            if whole:  # the body is in: waiting for a disconnect has no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise ApiError(
                    408,
                    f"the request body did not arrive within {self.seconds:g} s (HTTP_BODY_TIMEOUT_SECONDS)",
                    "body_timeout",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                whole = True
            return message

        await self.app(scope, timed_receive, send)  # the 408 says Connection: close (errors.error_response)
