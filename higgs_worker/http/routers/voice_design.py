"""``POST /v1/audio/voices/design``: a voice designed from a description, kept in the library.

JSON body ``{"name": str, "description": str, "seed": int (optional)}`` (``DesignVoice``);
201 with the voice's entry, as ``GET /v1/audio/voices`` lists it. The worker generates one
fixed sentence from the description and publishes the clip as ``NAME.voice``
(``higgs_worker.voice_design``); jobs then clone it by name."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ...contract.errors import WorkerError
from ...contract.voice_actions import parse_action
from ..errors import ApiError, worker_error
from ..service import Service, service_of

log = logging.getLogger(__name__)

router = APIRouter()


@router.post("/v1/audio/voices/design", status_code=201)
async def design_voice(request: Request, service: Service = Depends(service_of)) -> JSONResponse:
    body = await service.json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, 'send a JSON object: {"name": ..., "description": ..., "seed": ...}', "invalid_body")
    try:
        action = parse_action({"action": "design_voice", **body})
    except WorkerError as exc:
        raise ApiError(400, exc.message, "invalid_request") from None
    service.require_ready()
    try:
        entry = await asyncio.to_thread(service.worker.design_voice, action)
    except WorkerError as exc:
        raise worker_error(exc) from None
    log.info("voice %s designed", entry.name)
    return JSONResponse(entry.model_dump(), status_code=201)
