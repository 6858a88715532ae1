"""The voice library over HTTP: ``GET|POST /v1/audio/voices``, ``DELETE /v1/audio/voices/{name}``
(storage: ``http.voice_admin``)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..errors import ApiError
from ..openai_speech import AUTO_VOICE
from ..service import JSON_BODY_LIMIT_EXTRA, Service, service_of
from ..voice_admin import VoiceAdminError, delete_voice, save_voice

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/v1/audio/voices")
async def voices(service: Service = Depends(service_of)) -> dict:
    """``auto``, the preset voices and the library's voices, each with its description and
    ``source`` (``preset`` or ``library``; a library voice wins over a preset of its name)."""
    entries = await asyncio.to_thread(service.worker.voice_entries)
    auto = {"id": AUTO_VOICE, "object": "voice", "name": AUTO_VOICE, "description": "the model picks a voice"}
    data = [{**auto, "source": "preset"}] + [entry.model_dump() for entry in entries]
    return {"object": "list", "data": data}


@router.post("/v1/audio/voices", status_code=201)
async def add_voice(request: Request, service: Service = Depends(service_of)) -> JSONResponse:
    settings = service.settings
    limit = settings.max_reference_bytes + JSON_BODY_LIMIT_EXTRA
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the upload is larger than {limit} bytes (MAX_REFERENCE_BYTES)", "request_too_large")
    try:
        form = await counted(request, limit).form(max_files=1, max_fields=4, max_part_size=settings.max_reference_bytes)
    except ApiError:
        raise
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
        raise ApiError(exc.status, exc.message, exc.code, _param(exc)) from None
    log.info("voice %s saved", voice["name"])
    return JSONResponse(voice, status_code=201)


def counted(request: Request, limit: int) -> Request:
    """``request`` whose body is counted as it arrives and cut (413) past ``limit`` bytes, with or
    without a Content-Length: Starlette's ``max_part_size`` does not hold a file part, which it
    spools to a temporary file (closed when the parse fails), so the count is what bounds it."""
    size = 0

    async def receive() -> dict:
        nonlocal size
        message = await request.receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise ApiError(
                    413, f"the upload is larger than {limit} bytes (MAX_REFERENCE_BYTES)", "request_too_large"
                )
        return message

    return Request(request.scope, receive)


@router.delete("/v1/audio/voices/{name}")
async def remove_voice(name: str, service: Service = Depends(service_of)) -> dict:
    try:
        removed = delete_voice(service.settings.voices_dir, name)
    except VoiceAdminError as exc:
        raise ApiError(exc.status, exc.message, exc.code, _param(exc)) from None
    if not removed:
        raise ApiError(404, f"no voice named {name[:128]!r} in VOICES_DIR", "voice_not_found", "name")
    log.info("voice %s deleted", name)
    return {"id": name, "object": "voice.deleted", "deleted": True}


def _param(exc: VoiceAdminError) -> str | None:
    """The request field an error is about (none when the server cannot store the voice)."""
    return None if exc.status >= 500 else "file" if exc.status == 413 else "name"
