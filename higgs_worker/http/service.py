"""What the routers share: the worker, whether its model is ready, and the requests in flight.

The app factory puts one ``Service`` on ``app.state.service``; a route gets it with
``Depends(service_of)``, so a test can mount a router alone on an app of its own."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import Request

from ..contract.errors import WorkerError
from ..jobs import PreparedJob, Worker
from .errors import ApiError, worker_error
from .request_line import RequestLine

log = logging.getLogger(__name__)

JSON_BODY_LIMIT_EXTRA = 1_000_000  # on top of the text and reference-audio limits


class Service:
    """The worker, its loading state, the admission of jobs and the requests in flight."""

    def __init__(self, worker: Worker, load: Callable[[], None] | None = None):
        self.worker, self.settings = worker, worker.settings
        self.load = load
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.line = RequestLine(worker)  # admission: places running and waiting, 429 beyond
        # request id -> "queued" (checked, waiting for admission), then the job's phase: "inputs",
        # "waiting" (for a generation slot), "generating", "delivering"; for /v1/state
        self.active: dict[str, str] = {}

    def load_now(self) -> None:
        """Load the model here and now; /ping says 200 after it (or 503 if it failed)."""
        try:
            if self.load is not None:
                self.load()
            self.ready.set()
            log.info("model ready: /ping answers 200")
        except Exception as exc:  # noqa: BLE001 - reported by /ping and every request
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model load failed: %s", exc)

    def start_loading(self) -> None:
        threading.Thread(target=self.load_now, name="model-load", daemon=True).start()

    def require_ready(self) -> None:
        if self.load_error:
            raise ApiError(503, f"the model could not be loaded: {self.load_error}", "model_unavailable")
        if not self.ready.is_set():
            raise ApiError(503, "the model is loading; try again shortly", "model_loading")

    async def prepare(self, job_input: Any) -> PreparedJob:
        """The job checked (``Worker.prepare``: schema, limits, names, base64, audio headers, URL
        addresses, voices; nothing decoded or downloaded) before it waits for admission; bad input
        is an ApiError (400/404) at once."""
        try:
            return await asyncio.to_thread(self.worker.prepare, job_input)
        except WorkerError as exc:
            raise worker_error(exc) from None

    def body_limit(self) -> int:
        return self.settings.max_text_chars * 4 + self.settings.max_reference_bytes * 2 + JSON_BODY_LIMIT_EXTRA

    async def json_body(self, request: Request) -> Any:
        """The request's JSON body, refused (413) past ``body_limit`` before it is all read."""
        limit = self.body_limit()
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes", "request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the request body is larger than {limit} bytes", "request_too_large")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks) or b"null")
        except ValueError:
            raise ApiError(400, "the request body is not valid JSON", "invalid_json") from None
        except RecursionError:  # "[" x 200,000: the parser's depth guard (issue 26, finding 11)
            raise ApiError(400, "the request body's JSON is nested too deeply", "invalid_json") from None


def service_of(request: Request) -> Service:
    """FastAPI dependency: the app's Service."""
    return request.app.state.service
