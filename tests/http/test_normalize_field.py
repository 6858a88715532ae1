"""The job field ``normalize`` through both HTTP doors: ``/v1/synthesize`` takes the job input
as is (the router mounted alone, FastAPI's TestClient, the tiny model on the CPU), and
``/v1/audio/speech`` takes it as an extra body field."""

from __future__ import annotations

import pytest

from higgs_worker.contract.config import Settings
from higgs_worker.http.errors import ApiError
from higgs_worker.http.openai_speech import EXTRA_FIELDS, to_job_input
from higgs_worker.http.routers import jobs
from tests.http.test_routers import mounted


def test_synthesize_reads_the_spoken_form_unless_normalize_is_false(make_worker):
    client, service = mounted(jobs.router, make_worker())
    service.load_now()
    job = {"text": "It is 5 km.", "seed": 5, "max_new_tokens": 20, "delivery": "base64"}
    on = client.post("/v1/synthesize", json={"input": job})
    off = client.post("/v1/synthesize", json={"input": {**job, "normalize": False}})
    assert on.status_code == 200 and off.status_code == 200, (on.text, off.text)
    assert [(s["text"], s["spoken"]) for s in on.json()["segments"]] == [("It is 5 km.", "It is five kilometers.")]
    assert [(s["text"], s["spoken"]) for s in off.json()["segments"]] == [("It is 5 km.", "It is 5 km.")]


def test_synthesize_refuses_a_normalize_that_is_not_a_boolean(make_worker):
    client, _ = mounted(jobs.router, make_worker())
    answer = client.post("/v1/synthesize", json={"input": {"text": "Hi.", "normalize": "sometimes"}})
    assert answer.status_code == 400 and "normalize" in answer.text


def test_speech_takes_normalize_as_an_extra_field():
    settings = Settings.from_env({})
    assert "normalize" in EXTRA_FIELDS
    job, _ = to_job_input({"model": "tts-1", "input": "5 km", "normalize": False}, settings)
    assert job["normalize"] is False
    job, _ = to_job_input({"model": "tts-1", "input": "5 km"}, settings)
    assert "normalize" not in job  # the job's default: on
    with pytest.raises(ApiError) as refused:
        to_job_input({"model": "tts-1", "input": "5 km", "normalize": "sometimes"}, settings)
    assert refused.value.status == 400 and "normalize" in str(refused.value.message)
