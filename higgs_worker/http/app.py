"""HTTP mode (``WORKER_MODE=http``): OpenAI-compatible speech for RunPod load-balancing endpoints.

``create_app`` is the app factory: one ``Service`` (the worker and its state) on
``app.state``, the error handlers, the optional API key, and the routers (``routers/``):
health (``GET /ping``, ``GET /v1/state``), speech (``POST /v1/audio/speech``,
``GET /v1/models``), voices (``GET|POST /v1/audio/voices``, ``DELETE /v1/audio/voices/{name}``),
voice design (``POST /v1/audio/voices/design``) and jobs (``POST /v1/synthesize``); with
PLAYGROUND on, the playground page at ``/`` (docs/playground.md). Routes: docs/http-mode.md.

The door translates HTTP into the same validated job input a queue job has and runs it
with ``Worker.run`` in a thread (``http_job``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from fastapi import FastAPI

from ..jobs import Worker
from .auth import BearerAuth, VoiceAdminGate, is_voice_admin
from .errors import install_error_handlers
from .routers import health, jobs, playground, speech, voice_design, voices
from .service import Service
from .slow_clients import BodyDeadline, guarded_protocol

log = logging.getLogger(__name__)


def create_app(worker: Worker, load: Callable[[], None] | None = None, start_loading: bool = True) -> FastAPI:
    service = Service(worker, load)
    app = FastAPI(title="Higgs Audio v2 worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    install_error_handlers(app)
    settings = worker.settings
    admin_key = settings.voice_admin_key.get_secret_value() if settings.voice_admin_key else None
    if settings.api_key:
        skip = is_voice_admin if admin_key else (lambda scope: False)
        app.add_middleware(
            BearerAuth, key=settings.api_key.get_secret_value(), skip=skip, playground=settings.playground
        )
    if settings.voice_admin == "off" or admin_key:
        app.add_middleware(VoiceAdminGate, enabled=settings.voice_admin != "off", key=admin_key)
    app.add_middleware(BodyDeadline, seconds=settings.http_body_timeout_seconds)
    for router in (health.router, speech.router, voices.router, voice_design.router, jobs.router):
        app.include_router(router)
    if worker.settings.playground:
        app.include_router(playground.router)
    if start_loading:
        service.start_loading()
    return app


def health_app(service: Service) -> FastAPI:
    """Only ``/ping``, for PORT_HEALTH when it differs from PORT."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.add_api_route("/ping", health.ping)
    return app


def serve(worker: Worker, load: Callable[[], None] | None = None) -> None:
    """Serve on PORT (and /ping also on PORT_HEALTH when it differs) while the model loads; blocks.

    The servers run in a thread and the model loads on the main thread: loaded from another
    thread, the tiny model generated about 15 times slower on the CPU here (measured, cause
    not found), so the load stays where the queue mode's PRELOAD_MODELS does it."""
    import signal

    import uvicorn

    settings = worker.settings
    if settings.api_key is None:
        log.warning(
            "HTTP mode without API_KEY: anyone who reaches port %d can synthesize, read /v1/state and %s; "
            "set API_KEY unless RunPod's gateway (or your own) stands in front (docs/security.md)",
            settings.port,
            "upload and delete voices" if settings.voice_admin == "on" else "list voices",
        )
    app = create_app(worker, load, start_loading=False)
    service: Service = app.state.service
    # Slow clients (docs/security.md): a head deadline and a connection cap per listener.
    guarded = guarded_protocol(settings.http_header_timeout_seconds, settings.http_max_connections)
    options = {"host": "0.0.0.0", "log_config": None, "access_log": False, "http": guarded}
    servers = [uvicorn.Server(uvicorn.Config(app, port=settings.port, **options))]
    health_port = settings.port_health
    if health_port and health_port != settings.port:
        servers.append(uvicorn.Server(uvicorn.Config(health_app(service), port=health_port, **options)))
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
    service.load_now()
    while thread.is_alive():
        thread.join(timeout=1.0)
