"""The voice routes a playground calls: ``GET /v1/audio/voices`` (presets and library, with
descriptions and source) and ``POST /v1/audio/voices/design``, on the routers mounted alone
(TestClient, in process), and two HTTP-mode worker processes sharing one volume, whose first
uses of ``alloy`` design it once and then clone the same stored clip."""

from __future__ import annotations

import concurrent.futures
import json
import re

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient

from higgs_worker.http.errors import install_error_handlers
from higgs_worker.http.routers import speech, voice_design, voices
from higgs_worker.http.service import Service
from higgs_worker.io.presets import presets
from tests.support.http_server import http_worker

SHORT = {"max_new_tokens": 12, "seed": 5}


@pytest.fixture
def client(make_worker) -> TestClient:
    app = FastAPI()
    app.state.service = service = Service(make_worker())
    service.ready.set()
    install_error_handlers(app)
    for router in (voices.router, voice_design.router, speech.router):
        app.include_router(router)
    return TestClient(app)


def test_the_list_keeps_its_shape_and_adds_description_and_source(client):
    body = client.get("/v1/audio/voices").json()
    assert body["object"] == "list"
    assert all(set(entry) == {"id", "object", "name", "description", "source"} for entry in body["data"])
    by_id = {entry["id"]: entry for entry in body["data"]}
    assert body["data"][0]["id"] == "auto"
    assert by_id["alloy"] == {
        "id": "alloy",
        "object": "voice",
        "name": "alloy",
        "description": presets()["alloy"].description,
        "source": "preset",
    }
    assert by_id["belinda"]["source"] == "library" and by_id["belinda"]["description"] is None
    assert set(presets()) <= set(by_id)


def test_design_answers_201_with_the_entry_and_the_list_shows_it(client, voices_dir):
    description = "A bright young man, quick and cheerful, Irish accent."
    created = client.post("/v1/audio/voices/design", json={"name": "liam", "description": description, "seed": 5})
    assert created.status_code == 201, created.text
    entry = {"id": "liam", "object": "voice", "name": "liam", "description": description, "source": "library"}
    assert created.json() == entry
    assert entry in client.get("/v1/audio/voices").json()["data"]
    assert (voices_dir / "liam.voice").is_file()
    spoken = client.post(
        "/v1/audio/speech",
        json={"model": "higgs-audio-v2", "input": "Hi.", "voice": "liam", "response_format": "wav", **SHORT},
    )
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        ({"name": "x"}, "description"),
        ({"name": "a/b", "description": "d"}, "plain name"),
        ({"name": "auto", "description": "d"}, "reserved"),
        ({"name": "x", "description": "d", "seed": "many"}, "seed"),
        ({"name": "x", "description": "d", "extra": 1}, "extra"),
        (["x"], "json object"),
    ],
)
def test_design_refuses_bad_bodies_with_400(client, body, wanted):
    answer = client.post("/v1/audio/voices/design", json=body)
    assert answer.status_code == 400, answer.text
    assert wanted in answer.json()["error"]["message"].lower()


def test_an_unknown_voice_is_a_404_listing_the_names(client):
    answer = client.post("/v1/audio/speech", json={"model": "higgs-audio-v2", "input": "Hi.", "voice": "nobody"})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "voice_not_found" and "alloy" in error["message"] and "belinda" in error["message"]


@pytest.mark.slow
def test_two_workers_sharing_a_volume_design_alloy_once_and_use_the_same_clip(subprocess_env, voices_dir, tmp_path):
    with (
        http_worker(subprocess_env, tmp_path / "one.log") as one,
        http_worker(subprocess_env, tmp_path / "two.log") as two,
    ):

        def synthesize(url: str) -> dict:
            body = {"input": {"text": "Hello there.", "voice": "alloy", "delivery": "base64", **SHORT}}
            return requests.post(f"{url}/v1/synthesize", data=json.dumps(body), timeout=600).json()

        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # two first uses on each worker at once
            outputs = list(pool.map(synthesize, [one.url, two.url, one.url, two.url]))
        assert all("error" not in output for output in outputs), outputs
        stored = (voices_dir / "alloy.voice").stat()
        later = [synthesize(one.url), synthesize(two.url)]
        assert all("error" not in output for output in later)
        logs = one.log() + two.log()
    designs = re.findall(r"voice alloy designed", logs)
    assert len(designs) == 1, logs[-3000:]
    warned = [o for o in outputs + later if any("designed from its preset" in w for w in o.get("warnings") or [])]
    assert len(warned) == 1
    after = (voices_dir / "alloy.voice").stat()
    assert (after.st_ino, after.st_mtime_ns) == (stored.st_ino, stored.st_mtime_ns)  # the same stored clip
    # both workers produce the same audio for the same seed: they cloned the same clip
    assert later[0]["audio_base64"] == later[1]["audio_base64"]
