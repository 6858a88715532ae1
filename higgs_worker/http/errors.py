"""The HTTP door's errors: OpenAI's error shape, the job's error codes as HTTP statuses,
and the app's exception handlers (installed by the app factory, or by a test that mounts
one router alone)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..contract.errors import NOT_FOUND, TOO_LARGE, TOO_LONG, JobFailure, WorkerError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "code", "param"}}``."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    @property
    def type(self) -> str:
        if self.status == 401:
            return "authentication_error"
        return "invalid_request_error" if self.status < 500 else "server_error"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}


QUEUE_FULL_RETRY_AFTER = 5  # seconds (429 queue_full): the line moves by whole jobs

# The job's error codes as HTTP statuses (a kind can say otherwise: ``failure_error``).
_STATUS = {
    "invalid_input": 400,
    "reference_audio": 400,
    "model_unavailable": 503,
    "out_of_memory": 503,
    "generation_failed": 500,
    "storage": 502,
}


def failure_error(failure: JobFailure) -> ApiError:
    """A job's failure as an ApiError with an honest status, chosen from its code and kind
    (never its message): an unknown voice 404, a size limit 413, text over the limit 400."""
    if failure.kind == NOT_FOUND:
        return ApiError(404, failure.message, f"{failure.parameter}_not_found", failure.parameter)
    if failure.kind == TOO_LONG:  # OpenAI's name for the text is `input`
        return ApiError(400, failure.message, "input_too_long", "input")
    status = 413 if failure.kind == TOO_LARGE else _STATUS.get(failure.code, 500)
    return ApiError(status, failure.message, failure.code)


def worker_error(exc: WorkerError) -> ApiError:
    return failure_error(exc.failure())


def error_response(error: ApiError) -> JSONResponse:
    retry_after = {"model_loading": "10", "queue_full": str(QUEUE_FULL_RETRY_AFTER)}.get(error.code or "")
    headers = {"Retry-After": retry_after} if retry_after else {}
    if error.code in ("request_too_large", "body_timeout"):  # the rest of the body is not read: close
        headers["Connection"] = "close"
    return JSONResponse(error.body(), status_code=error.status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as OpenAI's error shape; never a traceback."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(ApiError(exc.status_code, str(exc.detail), code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error_response(ApiError(400, f"{where}: {first.get('msg', 'invalid request')}", "invalid_request"))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed unexpectedly: %s", type(exc).__name__)
        return error_response(ApiError(500, f"internal error ({type(exc).__name__}); try again", "internal_error"))
