"""``POST /v1/synthesize``: a queue job's input over HTTP, answered with the same output dict."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ...contract.errors import JobFailure
from ..errors import ApiError, failure_error
from ..http_job import HttpJob
from ..service import Service, service_of

router = APIRouter()


@router.post("/v1/synthesize")
async def synthesize(request: Request, service: Service = Depends(service_of)) -> JSONResponse:
    with service.line.place() as place:  # 429 here, before the body is read, when the line is full
        body = await service.json_body(request)
        if not isinstance(body, dict) or set(body) != {"input"}:
            raise ApiError(400, "send {\"input\": {...}}: the queue job's input (README's job input)", "invalid_body")
        if isinstance(body["input"], dict) and body["input"].get("stream"):
            raise ApiError(
                400,
                "stream is for queue endpoints with STREAM_JOBS=true; over HTTP, stream with POST /v1/audio/speech",
                "invalid_value",
                "stream",
            )
        prepared = await service.prepare(body["input"])  # bad input: 400 at once, whatever the load
        del body
        service.require_ready()
        job = HttpJob(service, prepared, want_audio=False, place=place)
        event = await job.first_event(request)
    if event is None:
        return JSONResponse({}, status_code=499)  # nobody reads it
    outcome = event[1]
    if isinstance(outcome, JobFailure):
        raise failure_error(outcome)
    return JSONResponse(outcome.as_output())
