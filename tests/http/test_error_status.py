"""A job's failure reaches HTTP with a status chosen from its code and kind, never its
message: rewording a message (or a message that happens to quote another's words) does not
change the status. The jobs router (``/v1/synthesize``) is mounted alone; the worker's
``prepare`` is replaced to raise each failure (a stand-in: no real input makes a message
say something else)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from higgs_worker.contract.errors import (
    AUDIO_TOO_LONG,
    INVALID_INPUT,
    NOT_FOUND,
    REFERENCE_AUDIO,
    STORAGE,
    TOO_LARGE,
    TOO_LONG,
    WorkerError,
)
from higgs_worker.http.errors import install_error_handlers
from higgs_worker.http.routers import jobs
from higgs_worker.http.service import Service

# (the failure, worded so the old message tests would have misread it) -> (status, code, param)
CASES = [
    (WorkerError(INVALID_INPUT, "no voice called 'x'", kind=NOT_FOUND, parameter="voice"), 404, "voice_not_found"),
    (WorkerError(INVALID_INPUT, "the text is too long (text has no limit here)", kind=TOO_LONG), 400, "input_too_long"),
    (WorkerError(REFERENCE_AUDIO, "reference clip over MAX_REFERENCE_BYTES", kind=TOO_LARGE), 413, REFERENCE_AUDIO),
    (WorkerError(STORAGE, "result over INLINE_MAX_BYTES", kind=TOO_LARGE), 413, STORAGE),
    (WorkerError(REFERENCE_AUDIO, "clip too long (the limit is 2 s)", kind=AUDIO_TOO_LONG), 400, REFERENCE_AUDIO),
    (WorkerError(INVALID_INPUT, "unknown voice? no: seed is larger than the limit"), 400, INVALID_INPUT),
    (WorkerError(REFERENCE_AUDIO, "text has a clip larger than nothing: undecodable"), 400, REFERENCE_AUDIO),
]


@pytest.mark.parametrize(("error", "status", "code"), CASES, ids=[c[0].message[:24] for c in CASES])
def test_status_follows_the_code_and_kind_not_the_words(make_worker, monkeypatch, error, status, code):
    worker = make_worker()

    def refuse(_job_input):
        raise error

    monkeypatch.setattr(worker, "prepare", refuse)
    app = FastAPI()
    app.state.service = Service(worker)
    install_error_handlers(app)
    app.include_router(jobs.router)
    answer = TestClient(app).post("/v1/synthesize", json={"input": {"text": "Hi."}})
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert body["code"] == code and body["message"] == error.message
