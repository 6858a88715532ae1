"""HTTP mode end to end: ``WORKER_MODE=http python handler.py`` (tiny model, CPU) as a
subprocess, driven by the official ``openai`` package and by plain HTTP.

One worker serves the module (a start costs imports and a model load). It runs with
API_KEY set and with fake AWS keys and HF token in its environment: the last test searches
its whole log and every answer collected for them."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile

import numpy as np
import openai
import pytest
import requests
import soundfile as sf

from tests.conftest import BUCKET, voice_library, wav_bytes, worker_process_env
from tests.support.http_server import http_worker

pytestmark = pytest.mark.slow

API_KEY = "fake-api-key-zz-http-0123456789"
SECRET_KEY = "fake-secret-key-zz-http-not-a-real-one"
HF_TOKEN = "fake-hub-token-zz-http-987654321"
SHORT = {"seed": 1, "max_new_tokens": 60}
ANSWERS: list[str] = []  # every response body seen, searched for secrets at the end


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory, moto_server):
    root = tmp_path_factory.mktemp("http")
    voices = voice_library(root)
    env = worker_process_env(tiny_models, voices, root)
    env.update(
        {
            "HF_TOKEN": HF_TOKEN,
            "API_KEY": API_KEY,
            "AWS_ACCESS_KEY_ID": "FAKE-ACCESS-KEY-ID-1",
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": moto_server,
            "MAX_TEXT_CHARS": "2000",
            "MAX_REFERENCE_BYTES": "2MB",
            "HTTP_QUEUE_LIMIT": "8",  # eight requests at once all wait (3 run); the bound: test_admission_bound
        }
    )
    with http_worker(env, root / "worker.log") as worker:
        worker.voices = voices
        yield worker


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=300)


def post(server, path: str, body, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {API_KEY}", **kwargs.pop("headers", {})}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    response = requests.post(f"{server.url}{path}", data=data, headers=headers, timeout=300, **kwargs)
    if not kwargs.get("stream"):
        ANSWERS.append(response.text if "json" in response.headers.get("content-type", "") else "")
    return response


def speak(client, fmt: str, text: str = "Hello there.", **extra) -> bytes:
    response = client.audio.speech.create(
        model="higgs-audio-v2", voice="auto", input=text, response_format=fmt, extra_body={**SHORT, **extra}
    )
    return response.content


def test_ping_answers_204_while_loading_then_200(server):
    codes = server.ping_codes
    assert codes[-1] == 200 and 204 in codes, codes
    assert set(codes) == {204, 200} and codes.index(200) == len(codes) - 1  # 204 ... 204, 200
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200  # no key needed for /ping


def test_every_response_format_decodes(client):
    wav, rate = sf.read(io.BytesIO(speak(client, "wav")), dtype="int16")
    assert rate == 24000 and len(wav) > 24000  # 60 frames: 2.4 s
    pcm = np.frombuffer(speak(client, "pcm"), dtype="<i2")  # OpenAI's pcm: 24 kHz 16-bit LE mono
    assert np.array_equal(pcm, wav)  # the same seed, the same audio
    flac, rate = sf.read(io.BytesIO(speak(client, "flac")), dtype="int16")
    assert rate == 24000 and np.array_equal(flac, wav)
    opus, rate = sf.read(io.BytesIO(speak(client, "opus")), dtype="float32")
    assert rate == 24000 and len(opus) == len(wav)
    mp3, rate = sf.read(io.BytesIO(speak(client, "mp3")), dtype="float32")  # the default format
    assert rate == 24000 and len(wav) <= len(mp3) <= len(wav) + 2 * 1152  # the encoder's delay and padding


def test_streamed_body_starts_before_generation_ends(server, client):
    """Event order, not timing: when the client holds its first bytes, the server still lists the
    request as running, and most of the audio is still to come."""
    text = "This sentence is long enough to take a while on the tiny model."
    extra = {"seed": 2, "max_new_tokens": 500}
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="belinda", input=text, response_format="pcm", extra_body=extra
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = response.iter_bytes()
        first = next(chunks)
        state = requests.get(f"{server.url}/v1/state", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        rest = b"".join(chunks)
    assert first and state.json()["requests"].get(request_id) == "generating"
    total = len(first) + len(rest)
    assert len(first) < total / 4, (len(first), total)
    server.wait_log(f"job {request_id} done")


def test_sse_events_join_to_the_same_audio(server, client):
    body = {
        "model": "higgs-audio-v2",
        "input": "Hello there.",
        "voice": "auto",
        "response_format": "pcm",
        "stream_format": "sse",
        **SHORT,
    }
    response = post(server, "/v1/audio/speech", body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: ") :]) for line in response.text.splitlines() if line.startswith("data: ")]
    deltas, done = events[:-1], events[-1]
    assert len(deltas) >= 2 and all(e["type"] == "speech.audio.delta" and set(e) == {"type", "audio"} for e in deltas)
    assert done["type"] == "speech.audio.done" and done["usage"]["output_tokens"] > 0
    joined = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert joined == speak(client, "pcm")
    # mp3 over SSE: the deltas joined are one decodable stream
    mp3_events = post(server, "/v1/audio/speech", {**body, "response_format": "mp3"}).text.splitlines()
    mp3 = b"".join(
        base64.b64decode(json.loads(line[6:])["audio"])
        for line in mp3_events
        if line.startswith("data: ") and "speech.audio.delta" in line
    )
    assert len(sf.read(io.BytesIO(mp3))[0]) >= len(joined) // 2


def test_eight_concurrent_requests_all_complete(client):
    results: dict[int, bytes | Exception] = {}

    def one(i: int) -> None:
        try:
            results[i] = speak(client, "wav", f"Request number {i}.", seed=i, max_new_tokens=30)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert sorted(results) == list(range(8))
    for data in results.values():
        assert isinstance(data, bytes), data
        audio, rate = sf.read(io.BytesIO(data))
        assert rate == 24000 and len(audio) > 0


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    assert "Traceback" not in response.text
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        ({"model": "higgs-audio-v2", "input": "Hi", "colour": "blue"}, 400, "unknown_parameter"),
        ({"model": "higgs-audio-v2", "input": "Hi", "voice": "nobody"}, 404, "voice_not_found"),
        ({"model": "gpt-9-tts", "input": "Hi"}, 404, "model_not_found"),
        ({"model": "higgs-audio-v2", "input": "word " * 500}, 400, "input_too_long"),
        ({"model": "higgs-audio-v2", "input": "Hi", "response_format": "aac"}, 400, "unsupported_value"),
        ({"model": "higgs-audio-v2", "input": "Hi", "speed": 1.5}, 400, "unsupported_value"),
        ({"model": "higgs-audio-v2", "input": "Hi", "temperature": 9}, 400, "invalid_input"),
        ({"model": "higgs-audio-v2", "input": "Hi", "voice": "../etc/passwd"}, 400, "invalid_input"),
        (
            {"model": "higgs-audio-v2", "input": "Hi", "reference_audio": {"url": "http://169.254.169.254/x"}},
            400,
            "reference_audio",
        ),
    ],
)
def test_bad_requests_get_openai_errors_with_honest_statuses(server, body, status, code):
    response = post(server, "/v1/audio/speech", body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code, error
    if code == "unknown_parameter":
        assert "colour" in error["message"]


def test_oversized_body_missing_key_and_unknown_paths(server, client):
    huge = {"model": "higgs-audio-v2", "input": "Hi", "reference_audio": {"base64": "A" * 6_000_000}}
    assert error_of(post(server, "/v1/audio/speech", huge))["code"] == "request_too_large"
    no_key = requests.post(f"{server.url}/v1/audio/speech", json={"model": "tts-1", "input": "Hi"}, timeout=30)
    assert no_key.status_code == 401 and error_of(no_key)["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    assert (
        requests.get(f"{server.url}/v2/nothing", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).status_code
        == 404
    )
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="higgs-audio-v2", voice="nobody", input="Hi")
    assert [m.id for m in client.models.list()][0] == "higgs-audio-v2"


def test_client_disconnect_stops_generation(server):
    body = {
        "model": "higgs-audio-v2",
        "input": "A long one.",
        "voice": "auto",
        "response_format": "pcm",
        "seed": 3,
        "max_new_tokens": 3000,
    }
    response = post(server, "/v1/audio/speech", body, stream=True)
    request_id = response.headers["x-request-id"]
    assert next(response.iter_content(chunk_size=None))  # streaming has begun
    response.close()  # the client goes away
    server.wait_log(f"job {request_id} was stopped", timeout=60)  # higgs_worker.jobs: Cancelled
    assert f"request {request_id}: the client disconnected" in server.log()
    assert f"job {request_id} done" not in server.log()
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/v1/state", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).json()[
        "requests"
    ]:
        assert time.monotonic() < deadline, "the stopped job still holds its slot"
        time.sleep(0.2)


def test_voice_library_admin(server, client):
    auth = {"Authorization": f"Bearer {API_KEY}"}
    url = f"{server.url}/v1/audio/voices"
    files = {"file": ("me.flac", wav_bytes(2.0, fmt="FLAC"), "audio/flac")}
    created = requests.post(
        url, data={"name": "newvoice", "transcript": "Hello."}, files=files, headers=auth, timeout=60
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "newvoice" and created.json()["duration_s"] == pytest.approx(2.0, abs=0.01)
    with zipfile.ZipFile(server.voices / "newvoice.voice") as stored:  # clip and transcript: one file, one version
        assert stored.read("transcript.txt") == b"Hello."
        assert sf.info(io.BytesIO(stored.read("audio.wav"))).samplerate == 24000
    assert not [p for p in server.voices.iterdir() if p.name.startswith(".")]  # no temporary file left
    names = [v["id"] for v in requests.get(url, headers=auth, timeout=10).json()["data"]]
    assert names[0] == "auto" and {"belinda", "newvoice"} <= set(names)
    audio, rate = sf.read(
        io.BytesIO(
            client.audio.speech.create(
                model="higgs-audio-v2", voice="newvoice", input="Hi.", response_format="wav", extra_body=SHORT
            ).content
        )
    )
    assert rate == 24000 and len(audio) > 0
    assert requests.delete(f"{url}/newvoice", headers=auth, timeout=10).json()["deleted"] is True
    assert not (server.voices / "newvoice.voice").exists()
    assert error_of(requests.delete(f"{url}/newvoice", headers=auth, timeout=10))["code"] == "voice_not_found"
    for name, data, status in [
        ("a..b", wav_bytes(1.0), 400),  # not a plain name
        ("auto", wav_bytes(1.0), 400),  # reserved
        ("noise", b"this is not audio" * 10, 400),
        ("tiny", wav_bytes(0.1), 400),  # shorter than reference audio may be
        ("big", b"\0" * 2_500_000, 413),  # MAX_REFERENCE_BYTES is 2 MB here
    ]:
        answer = requests.post(url, data={"name": name}, files={"file": ("x.wav", data)}, headers=auth, timeout=60)
        assert answer.status_code == status, (name, answer.text)
        error_of(answer)
    assert requests.delete(f"{url}/..%2F..%2Fetc%2Fpasswd", headers=auth, timeout=10).status_code in (400, 404)
    assert sorted(p.name for p in server.voices.iterdir()) == ["belinda.txt", "belinda.wav"]


def test_synthesize_is_the_queue_contract(server, s3_client):
    stored = post(server, "/v1/synthesize", {"input": {"text": "Hello there.", **SHORT, "output_name": "http"}})
    assert stored.status_code == 200, stored.text
    output = stored.json()
    assert output["s3_uri"] == f"s3://{BUCKET}/higgs-audio/http.wav" and output["seed"] == 1
    inline = post(server, "/v1/synthesize", {"input": {"text": "Hi.", **SHORT, "delivery": "base64"}}).json()
    audio, rate = sf.read(io.BytesIO(base64.b64decode(inline["audio_base64"])))
    assert rate == inline["sample_rate"] and len(audio) / rate == pytest.approx(inline["duration_s"], abs=1e-3)
    refused = post(server, "/v1/synthesize", {"input": {"text": "Hi.", "stream": True}})
    assert refused.status_code == 400 and "/v1/audio/speech" in error_of(refused)["message"]
    bad = post(server, "/v1/synthesize", {"input": {"text": "Hi.", "temperature": 9}})
    assert bad.status_code == 400 and error_of(bad)["message"].startswith("temperature")


def test_word_timestamps_through_synthesize_and_refused_by_speech(server):
    """/v1/synthesize takes the job input, so word_timestamps just works there; the OpenAI
    door's body is the audio itself, so it refuses the field and names /v1/synthesize."""
    job = {"text": "Hello there, how are you?", **SHORT, "delivery": "base64", "word_timestamps": True}
    answer = post(server, "/v1/synthesize", {"input": job})
    assert answer.status_code == 200, answer.text
    (segment,) = answer.json()["segments"]
    assert [w["word"] for w in segment["words"]] == ["Hello", "there,", "how", "are", "you?"]
    assert answer.json()["timings"]["align_s"] > 0
    speech = {"model": "higgs-audio-v2", "input": "Hi", "word_timestamps": True}
    refused = post(server, "/v1/audio/speech", speech, headers={"Content-Type": "application/json"})
    assert refused.status_code == 400 and "/v1/synthesize" in error_of(refused)["message"]


def test_no_secret_in_logs_or_answers(server):
    """Last in the module: everything the worker printed and answered so far."""
    logs = server.log()
    assert "model ready" in logs and "done" in logs  # the log was really captured
    everything = logs + "\n".join(ANSWERS)
    for secret in (SECRET_KEY, HF_TOKEN, API_KEY):
        assert secret not in everything
    assert "X-Amz-Signature" not in logs
    assert "Traceback" not in "\n".join(ANSWERS)


def test_health_port_answers_ping_too_and_no_key_means_open(subprocess_env, tmp_path):
    from tests.support.api_server import _free_port

    health_port = _free_port()
    with http_worker({**subprocess_env, "PORT_HEALTH": str(health_port)}, tmp_path / "worker.log") as worker:
        assert requests.get(f"http://127.0.0.1:{health_port}/ping", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{health_port}/v1/models", timeout=10).status_code == 404  # only /ping
        models = requests.get(f"{worker.url}/v1/models", timeout=10)  # no API_KEY set: no key needed
        assert models.status_code == 200 and models.json()["data"][0]["id"] == "higgs-audio-v2"
        assert f"health on port {health_port}" in worker.log()
