"""HTTP mode (``WORKER_MODE=http``): OpenAI-compatible speech for RunPod load-balancing endpoints.

Routes (docs/http-mode.md): ``GET /ping``, ``POST /v1/audio/speech``, ``GET /v1/models``,
``GET|POST /v1/audio/voices``, ``DELETE /v1/audio/voices/{name}``, ``POST /v1/synthesize``.

This module is a door: it translates HTTP into the same validated job input a queue job
has and runs it with ``Worker.run`` in a thread (``on_audio`` gives the pieces while they
are generated). Jobs wait their turn for a slot (never refused); a client that goes away
sets the job's stop flag, so generation stops at its next step.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..jobs import Worker
from . import openai_speech as speech
from .openai_speech import ApiError
from .voice_admin import VoiceAdminError, delete_voice, save_voice

log = logging.getLogger(__name__)

JSON_BODY_LIMIT_EXTRA = 1_000_000  # on top of the text and reference-audio limits


class Service:
    """What the routes share: the worker, its loading state, and the job slots."""

    def __init__(self, worker: Worker, load: Callable[[], None] | None):
        self.worker, self.settings = worker, worker.settings
        self.load = load
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.slots: asyncio.Semaphore | None = None
        self.active: dict[str, str] = {}  # request id -> state ("queued", "running"), for /v1/state

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

    def body_limit(self) -> int:
        return self.settings.max_text_chars * 4 + self.settings.max_reference_bytes * 2 + JSON_BODY_LIMIT_EXTRA


class Job:
    """One job in a thread: ``events`` gets ("audio", piece) while it runs, then ("done", output)."""

    def __init__(self, service: Service, job_input: dict, want_audio: bool):
        self.service, self.job_input, self.want_audio = service, job_input, want_audio
        self.id = f"http-{uuid.uuid4().hex[:12]}"
        self.events: asyncio.Queue = asyncio.Queue()
        self.stop = threading.Event()
        self.frames = 0

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


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the request body is already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _first_event(job: Job, request: Request) -> tuple[str, Any] | None:
    """Start ``job`` and wait for its first event; None when the client left first."""

    async def first() -> tuple[str, Any]:
        await job.start()
        return await job.events.get()

    getter = asyncio.ensure_future(first())
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if getter in done:
        return getter.result()
    getter.cancel()
    job.cancel("the client disconnected while waiting")
    return None


def _error_response(error: ApiError) -> JSONResponse:
    headers = {"Retry-After": "10"} if error.code == "model_loading" else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _json_body(request: Request, limit: int) -> Any:
    import json

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


class BearerAuth:
    """Pure ASGI middleware: every path but /ping needs ``Authorization: Bearer <API_KEY>``
    (compared in constant time). RunPod's gateway checks its own key before this."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") != "/ping":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                error = ApiError(401, "a valid 'Authorization: Bearer <API_KEY>' header is required", "invalid_api_key")
                await _error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(worker: Worker, load: Callable[[], None] | None = None, start_loading: bool = True) -> FastAPI:
    service = Service(worker, load)
    settings = worker.settings
    app = FastAPI(title="Higgs Audio v2 worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    if start_loading:
        service.start_loading()

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(ApiError(exc.status_code, str(exc.detail), code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return _error_response(ApiError(400, f"{where}: {first.get('msg', 'invalid request')}", "invalid_request"))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed unexpectedly: %s", type(exc).__name__)
        return _error_response(ApiError(500, f"internal error ({type(exc).__name__}); try again", "internal_error"))

    if settings.api_key:
        app.add_middleware(BearerAuth, key=settings.api_key.get_secret_value())

    @app.get("/ping")
    async def ping() -> Response:
        if service.load_error:
            return JSONResponse({"status": "unhealthy", "error": "the model could not be loaded"}, status_code=503)
        if not service.ready.is_set():
            return Response(status_code=204)  # RunPod's load balancer: initializing
        return JSONResponse({"status": "healthy"})

    @app.get("/v1/models")
    async def models() -> dict:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "bosonai"}
                for name in speech.model_ids(settings)
            ],
        }

    @app.get("/v1/audio/voices")
    async def voices() -> dict:
        names = worker.voices.names()
        data = [
            {
                "id": speech.AUTO_VOICE,
                "object": "voice",
                "name": speech.AUTO_VOICE,
                "description": "the model picks a voice",
            }
        ]
        data += [{"id": name, "object": "voice", "name": name} for name in names]
        return {"object": "list", "data": data}

    @app.post("/v1/audio/voices", status_code=201)
    async def add_voice(request: Request) -> JSONResponse:
        limit = settings.max_reference_bytes + JSON_BODY_LIMIT_EXTRA
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the upload is larger than {limit} bytes (MAX_REFERENCE_BYTES)", "request_too_large")
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=settings.max_reference_bytes)
        except Exception as exc:  # a body that is not multipart/form-data
            raise ApiError(
                400, f"send multipart/form-data with name, file and transcript ({type(exc).__name__})", "invalid_form"
            ) from None
        name, upload, transcript = form.get("name"), form.get("file"), form.get("transcript")
        if not isinstance(name, str) or upload is None or isinstance(upload, str):
            raise ApiError(
                400,
                "multipart fields 'name' (text) and 'file' (an audio file) are required",
                "missing_required_parameter",
            )
        data = await upload.read(settings.max_reference_bytes + 1)
        try:
            voice = await asyncio.to_thread(
                save_voice,
                settings.voices_dir,
                name,
                data,
                transcript if isinstance(transcript, str) else None,
                settings.max_reference_bytes,
                settings.max_reference_seconds,
            )
        except VoiceAdminError as exc:
            raise ApiError(exc.status, exc.message, exc.code, "file" if exc.status == 413 else "name") from None
        log.info("voice %s saved", voice["name"])
        return JSONResponse(voice, status_code=201)

    @app.delete("/v1/audio/voices/{name}")
    async def remove_voice(name: str) -> dict:
        try:
            removed = delete_voice(settings.voices_dir, name)
        except VoiceAdminError as exc:
            raise ApiError(exc.status, exc.message, exc.code, "name") from None
        if not removed:
            raise ApiError(404, f"no voice named {name[:128]!r} in VOICES_DIR", "voice_not_found", "name")
        log.info("voice %s deleted", name)
        return {"id": name, "object": "voice.deleted", "deleted": True}

    @app.get("/v1/state")
    async def state() -> dict:
        """Requests being served now (``queued`` or ``running``), for operators and tests; how
        often the compiled decode step fell back to the plain step (and why), if it did."""
        engine = worker.engine
        state: dict = {"ready": service.ready.is_set(), "requests": dict(service.active)}
        state["compile_fallbacks"] = engine.compile_fallbacks if engine is not None else 0
        if engine is not None and engine.compile_note:
            state["compile_note"] = engine.compile_note
        return state

    @app.post("/v1/synthesize")
    async def synthesize(request: Request) -> JSONResponse:
        body = await _json_body(request, service.body_limit())
        if not isinstance(body, dict) or set(body) != {"input"}:
            raise ApiError(400, "send {\"input\": {...}}: the queue job's input (README's job input)", "invalid_body")
        if isinstance(body["input"], dict) and body["input"].get("stream"):
            raise ApiError(
                400,
                "stream is for queue endpoints with STREAM_JOBS=true; over HTTP, stream with POST /v1/audio/speech",
                "invalid_value",
                "stream",
            )
        service.require_ready()
        job = Job(service, body["input"], want_audio=False)
        event = await _first_event(job, request)
        if event is None:
            return JSONResponse({}, status_code=499)  # nobody reads it
        output = event[1]
        if "error" in output:
            raise speech.job_error(output["error"])
        return JSONResponse(output)

    @app.post("/v1/audio/speech")
    async def create_speech(request: Request) -> Response:
        body = await _json_body(request, service.body_limit())
        job_input, options = speech.to_job_input(body, settings)
        if "voice" in job_input:
            worker_voice_check(worker, job_input["voice"])
        service.require_ready()
        job = Job(service, job_input, want_audio=True)
        started = time.perf_counter()
        first = await _first_event(job, request)
        if first is None:
            return Response(status_code=499)
        kind, value = first
        if kind == "done" and "error" in value and not value["error"].startswith("storage:"):
            raise speech.job_error(value["error"])  # failed before any audio: an honest status
        headers = {"X-Request-Id": job.id, "Cache-Control": "no-store"}
        return StreamingResponse(
            _speech_body(job, options, first, len(job_input["text"]), started),
            media_type=options.content_type,
            headers=headers,
        )

    return app


def worker_voice_check(worker: Worker, name: str) -> None:
    from ..contract.errors import WorkerError

    try:
        worker.voices.find(name)
    except WorkerError as exc:
        raise speech.job_error(str(exc)) from None


async def _speech_body(job: Job, options: speech.SpeechOptions, first: tuple[str, Any], chars: int, started: float):
    """The response body: encoded audio (or SSE events) as the pieces arrive."""
    encoder = speech.AudioEncoder(options.response_format)
    sse = options.stream_format == "sse"
    samples, sent_first = 0, False
    event = first
    try:
        while True:
            kind, value = event
            if kind == "audio":
                samples += len(value)
                chunk = encoder.feed(value)
            else:
                if "error" in value and not value["error"].startswith("storage:"):
                    # storage: only the job's own whole-file copy (not used here) passed the inline limit
                    error = speech.job_error(value["error"])
                    log.info("request %s failed after streaming started: %s", job.id, error.code)
                    if sse:
                        yield speech.sse_error(error)
                        return
                    raise RuntimeError("generation failed mid-stream")  # the client sees a cut-off body
                chunk = encoder.finish()
            if chunk:
                if not sent_first:
                    sent_first = True
                    log.info("request %s: first audio bytes after %.3fs", job.id, time.perf_counter() - started)
                yield speech.sse_delta(chunk) if sse else chunk
            if kind == "done":
                frames = round(samples / (speech.MODEL_SAMPLE_RATE / 25))
                if sse:
                    yield speech.sse_done(chars, frames)
                log.info("request %s done: %.2fs of audio", job.id, samples / speech.MODEL_SAMPLE_RATE)
                return
            event = await job.events.get()
    finally:
        if event[0] != "done":  # the client went away (this generator was cancelled or closed)
            job.cancel("the client disconnected")


def serve(worker: Worker, load: Callable[[], None] | None = None) -> None:
    """Serve on PORT (and /ping also on PORT_HEALTH when it differs) while the model loads; blocks.

    The servers run in a thread and the model loads on the main thread: loaded from another
    thread, the tiny model generated about 15 times slower on the CPU here (measured, cause
    not found), so the load stays where the queue mode's PRELOAD_MODELS does it."""
    import signal

    import uvicorn

    settings = worker.settings
    app = create_app(worker, load, start_loading=False)
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="0.0.0.0", port=settings.port, log_config=None, access_log=False))
    ]
    health_port = settings.port_health
    if health_port and health_port != settings.port:
        health = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        health.add_api_route("/ping", next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/ping"))
        servers.append(
            uvicorn.Server(uvicorn.Config(health, host="0.0.0.0", port=health_port, log_config=None, access_log=False))
        )
    log.info(
        "HTTP mode: listening on port %d%s",
        settings.port,
        f", health on port {health_port}" if len(servers) > 1 else "",
    )

    async def run_servers() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    def stop(_signum, _frame) -> None:
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    thread = threading.Thread(target=lambda: asyncio.run(run_servers()), name="http", daemon=True)
    thread.start()
    app.state.service.load_now()
    while thread.is_alive():
        thread.join(timeout=1.0)
