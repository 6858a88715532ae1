"""handler.py driven the way RunPod's SDK runs it: ``--test_input`` and ``--rp_serve_api``."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
import soundfile as sf

from tests.conftest import BUCKET, FAKE_AWS
from tests.support.api_server import rp_serve_api
from tests.support.handler_runs import job_result, run_test_input

pytestmark = pytest.mark.slow


def test_test_input_smoke_returns_the_contract_output(subprocess_env, moto_server, s3_client):
    # S3 delivery keeps the printed result under the SDK's 4096-character log line
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}
    proc = run_test_input(env, {"text": "Hello there.", "seed": 5, "output_format": "flac", "output_name": "smoke"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = job_result(proc.stdout)["output"]
    assert output["format"] == "flac" and output["seed"] == 5 and output["duration_s"] > 0
    assert output["model"]["repo"] == "bosonai/higgs-audio-v2-generation-3B-base"
    assert output["s3_uri"] == f"s3://{BUCKET}/higgs-audio/smoke.flac"
    data = s3_client.get_object(Bucket=BUCKET, Key="higgs-audio/smoke.flac")["Body"].read()
    audio, rate = sf.read(io.BytesIO(data))
    assert len(audio) / rate == pytest.approx(output["duration_s"], abs=1e-3)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "DEBUG" not in proc.stdout  # RUNPOD_LOG_LEVEL defaults to INFO: no whole outputs at DEBUG


def test_test_input_bad_input_fails_with_invalid_input(subprocess_env):
    proc = run_test_input(subprocess_env, {"text": "", "voice": "../etc/passwd"})
    assert proc.returncode == 1
    assert "invalid_input: " in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture
def api_server(subprocess_env, moto_server):
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}
    with rp_serve_api(env) as (url, _proc):
        yield url


def test_rp_serve_api_runsync_returns_the_output_dict(api_server, s3_client):
    response = requests.post(f"{api_server}/runsync", json={"input": {"text": "Hello there.", "seed": 2}}, timeout=240)
    body = response.json()
    assert body["status"] == "COMPLETED", body
    output = body["output"]
    assert isinstance(output, dict)  # plain by default: no list to unwrap
    key = output["s3_uri"].removeprefix(f"s3://{BUCKET}/")
    data = s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 24000
    assert len(audio) / rate == pytest.approx(output["duration_s"], abs=1e-3)
    assert requests.get(output["audio_url"], timeout=10).content == data


def test_rp_serve_api_run_then_status_and_failures(api_server):
    job = requests.post(f"{api_server}/run", json={"input": {"text": "Hi.", "seed": 1}}, timeout=30).json()
    assert job["status"] == "IN_PROGRESS"
    status = requests.post(f"{api_server}/status/{job['id']}", timeout=240).json()  # the SDK serves POST
    assert status["status"] == "COMPLETED" and status["output"]["s3_uri"].startswith("s3://")
    bad = requests.post(f"{api_server}/runsync", json={"input": {"text": "Hi.", "temperature": 9}}, timeout=60).json()
    assert bad["status"] == "FAILED" and bad["error"].startswith("invalid_input: temperature"), bad
    assert "output" not in bad


def test_stream_on_an_endpoint_that_does_not_stream_is_refused(api_server):
    body = requests.post(f"{api_server}/runsync", json={"input": {"text": "Hi.", "stream": True}}, timeout=60).json()
    assert body["status"] == "FAILED", body
    assert body["error"].startswith("invalid_input: ")
    assert "STREAM_JOBS" in body["error"] and "WORKER_MODE=http" in body["error"]
    job = requests.post(f"{api_server}/run", json={"input": {"text": "Hi.", "stream": "true"}}, timeout=30).json()
    streamed = requests.post(f"{api_server}/stream/{job['id']}", timeout=60).json()
    assert streamed["status"] == "FAILED"  # the SDK's own answer: the handler is not a generator


@pytest.fixture
def streaming_api_server(subprocess_env):
    with rp_serve_api({**subprocess_env, "STREAM_JOBS": "true"}) as (url, _proc):
        yield url


def decode_items(chunks: list[dict]) -> np.ndarray:
    pieces = []
    for chunk in chunks:
        audio, rate = sf.read(io.BytesIO(base64.b64decode(chunk["audio_base64"])), dtype="float32")
        assert rate == 24000
        pieces.append(audio)
    return np.concatenate(pieces)


def test_rp_serve_api_stream_yields_opus_chunks_then_the_result(streaming_api_server):
    job_input = {
        "text": "Hello there, this is a streaming test.",
        "seed": 3,
        "stream": True,
        "delivery": "base64",
        "output_format": "wav",
        "max_new_tokens": 120,
    }
    job = requests.post(f"{streaming_api_server}/run", json={"input": job_input}, timeout=30).json()
    body = requests.post(f"{streaming_api_server}/stream/{job['id']}", timeout=240).json()
    assert body["status"] == "COMPLETED", body
    items = [entry["output"] for entry in body["stream"]]
    chunks, result = items[:-1], items[-1]
    assert len(chunks) > 1
    assert [c["chunk"] for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk["format"] == "opus" and chunk["sample_rate"] == 24000
        assert len(chunk["audio_base64"]) < 100_000
    joined = decode_items(chunks)  # every item is a complete Ogg Opus file
    final, rate = sf.read(io.BytesIO(base64.b64decode(result["audio_base64"])), dtype="float32")
    assert rate == 24000 and len(joined) == len(final)
    # Opus is lossy: the joined items carry the same signal, not the same samples
    assert np.corrcoef(joined, final)[0, 1] > 0.5
    # a plain job on a streaming endpoint: the documented list, the result its only item
    plain = requests.post(
        f"{streaming_api_server}/runsync",
        json={"input": {"text": "Hi.", "seed": 1, "max_new_tokens": 20, "delivery": "base64"}},
        timeout=120,
    ).json()
    assert isinstance(plain["output"], list) and len(plain["output"]) == 1 and plain["output"][0]["duration_s"] > 0


def test_preload_loads_and_warms_up_before_the_first_job(subprocess_env, moto_server, s3_client):
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server, "PRELOAD_MODELS": "true"}
    proc = run_test_input(env, {"text": "Hello there.", "seed": 1, "max_new_tokens": 20, "output_name": "preloaded"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    timings = job_result(proc.stdout)["output"]["timings"]
    assert timings["download_s"] == 0 and timings["load_s"] == 0  # paid at worker start, not by the job
    assert proc.stdout.index("loaded model") < proc.stdout.index("Started.")
