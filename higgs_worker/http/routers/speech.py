"""OpenAI's speech API: ``POST /v1/audio/speech`` (audio streamed while it is generated) and
``GET /v1/models``. The translation of the body is ``http.openai_speech``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from ...contract.errors import STORAGE, JobFailure
from ...model.spec import SPEC
from .. import openai_speech as speech
from ..errors import failure_error
from ..http_job import HttpJob
from ..service import Service, service_of

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/v1/models")
async def models(service: Service = Depends(service_of)) -> dict:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "bosonai"}
            for name in speech.model_ids(service.settings)
        ],
    }


@router.post("/v1/audio/speech")
async def create_speech(request: Request, service: Service = Depends(service_of)) -> Response:
    with service.line.place() as place:  # 429 here, before the body is read, when the line is full
        body = await service.json_body(request)
        job_input, options = speech.to_job_input(body, service.settings)
        prepared = await service.prepare(job_input)  # bad input: 400 (unknown voice: 404) at once, whatever the load
        chars = len(job_input["text"])
        del body, job_input
        service.require_ready()
        job = HttpJob(service, prepared, want_audio=True, place=place)
        started = time.perf_counter()
        first = await job.first_event(request)
    if first is None:
        return Response(status_code=499)
    kind, value = first
    if kind == "done" and _failed(value):
        raise failure_error(value)  # failed before any audio: an honest status
    headers = {"X-Request-Id": job.id, "Cache-Control": "no-store"}
    return StreamingResponse(
        _speech_body(job, options, first, chars, started),
        media_type=options.content_type,
        headers=headers,
    )


def _failed(outcome) -> bool:
    """Whether the job failed for this route: a ``storage`` failure is only the job's own
    whole-file copy (not used here: the route streams the pieces) passing the inline limit."""
    return isinstance(outcome, JobFailure) and outcome.code != STORAGE


async def _speech_body(job: HttpJob, options: speech.SpeechOptions, first: tuple[str, Any], chars: int, started: float):
    """The response body: encoded audio (or SSE events) as the pieces arrive. Encoding runs in
    a worker thread (PyAV releases the GIL while FFmpeg encodes), not on the event loop, so
    the requests of one worker encode on as many cores as it has."""
    encoder = speech.AudioEncoder(options.response_format)
    sse = options.stream_format == "sse"
    samples, sent_first = 0, False
    event = first
    try:
        while True:
            kind, value = event
            if kind == "audio":
                samples += len(value)
                chunk = await asyncio.to_thread(encoder.feed, value)
            else:
                if _failed(value):
                    error = failure_error(value)
                    log.info("request %s failed after streaming started: %s", job.id, error.code)
                    if sse:
                        yield speech.sse_error(error)
                        return
                    raise RuntimeError("generation failed mid-stream")  # the client sees a cut-off body
                chunk = await asyncio.to_thread(encoder.finish)
            if chunk:
                if not sent_first:
                    sent_first = True
                    log.info("request %s: first audio bytes after %.3fs", job.id, time.perf_counter() - started)
                yield speech.sse_delta(chunk) if sse else chunk
            if kind == "done":
                frames = round(samples * SPEC.frames_per_second / SPEC.sample_rate)
                if sse:
                    yield speech.sse_done(chars, frames)
                log.info("request %s done: %.2fs of audio", job.id, samples / SPEC.sample_rate)
                return
            event = await job.events.get()
    finally:
        if event[0] != "done":  # the client went away (this generator was cancelled or closed)
            job.cancel("the client disconnected")
