"""Each router of the HTTP mode mounted alone on an app of its own (FastAPI's TestClient,
in process): the routers need only the shared ``Service`` on ``app.state``."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

from higgs_worker.http.errors import install_error_handlers
from higgs_worker.http.routers import health, voices
from higgs_worker.http.service import Service
from tests.conftest import wav_bytes


def mounted(router, worker) -> tuple[TestClient, Service]:
    app = FastAPI()
    app.state.service = service = Service(worker)
    install_error_handlers(app)
    app.include_router(router)
    return TestClient(app), service


def test_health_router_alone_says_loading_then_ready(make_worker):
    client, service = mounted(health.router, make_worker())
    assert client.get("/ping").status_code == 204
    service.ready.set()
    assert client.get("/ping").json() == {"status": "healthy"}
    state = client.get("/v1/state").json()
    assert state["ready"] is True and state["requests"] == {}
    assert client.post("/v1/synthesize", json={"input": {"text": "Hi."}}).status_code == 404  # not mounted


def test_voices_router_alone_adds_lists_and_deletes(make_worker, voices_dir):
    client, _ = mounted(voices.router, make_worker())
    created = client.post(
        "/v1/audio/voices",
        data={"name": "solo", "transcript": "Alone."},
        files={"file": ("solo.flac", wav_bytes(1.0, fmt="FLAC"), "audio/flac")},
    )
    assert created.status_code == 201, created.text
    listed = client.get("/v1/audio/voices").json()["data"]
    assert listed[0]["id"] == "auto"
    assert [v["id"] for v in listed if v["source"] == "library"] == ["belinda", "broom", "solo"]
    assert client.delete("/v1/audio/voices/solo").json()["deleted"] is True
    missing = client.delete("/v1/audio/voices/solo")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "voice_not_found"
    assert client.get("/v1/models").status_code == 404  # the speech router is not mounted


@pytest.mark.parametrize("name", ["auto", "a..b", "x" * 200])
def test_voices_router_refuses_bad_names(make_worker, name):
    client, _ = mounted(voices.router, make_worker())
    audio = io.BytesIO()
    sf.write(audio, [0.0] * 24000, 24000, format="WAV")
    answer = client.post("/v1/audio/voices", data={"name": name}, files={"file": ("x.wav", audio.getvalue())})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_voice_name"
