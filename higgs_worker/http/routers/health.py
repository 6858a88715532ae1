"""``GET /ping`` (RunPod's load balancer: 204 loading, 200 ready, 503 failed) and
``GET /v1/state`` (the requests being served now)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from ..service import Service, service_of

router = APIRouter()


@router.get("/ping")
async def ping(service: Service = Depends(service_of)) -> Response:
    if service.load_error:
        return JSONResponse({"status": "unhealthy", "error": "the model could not be loaded"}, status_code=503)
    if not service.ready.is_set():
        return Response(status_code=204)  # RunPod's load balancer: initializing
    return JSONResponse({"status": "healthy"})


@router.get("/v1/state")
async def state(service: Service = Depends(service_of)) -> dict:
    """Requests being served now and their phase (``queued``, ``inputs``, ``waiting``,
    ``generating``, ``delivering``), for operators and tests; how often the compiled decode step
    fell back to the plain step (and why), if it did; how many chunks the runaway guard ended
    (``runaway_stops``: kept silent after speaking, repeated one frame)."""
    engine = service.worker.engine
    state: dict = {"ready": service.ready.is_set(), "requests": dict(service.active)}
    state["runaway_stops"] = dict(service.worker.runaway_stops)
    state["compile_fallbacks"] = engine.compile_fallbacks if engine is not None else 0
    if engine is not None and engine.compile_note:
        state["compile_note"] = engine.compile_note
    return state
