"""The HTTP door under faults, end to end: ``WORKER_MODE=http python handler.py`` (tiny model,
CPU) with one generation slot and one job beside it (MAX_CONCURRENCY=1, IO_JOBS=1), S3
through a proxy that can hang (moto behind tests/support/s3_proxy.py), reference URLs on a
stalling server (tests/support/hostile_servers.py).

Order, not time: bad input gets its 400 while every place is taken; a plain request is
answered while a stalled download or a hanging upload is still in flight. The seconds are
benchmarks/concurrency_faults.py's."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest
import requests

from tests.conftest import BUCKET, FAKE_AWS, voice_library, worker_process_env
from tests.support.hostile_servers import HostileServer, stall
from tests.support.http_server import http_worker
from tests.support.s3_proxy import S3Proxy

pytestmark = pytest.mark.slow

SHORT = {"seed": 1, "max_new_tokens": 20}
NOT_AUDIO = base64.b64encode(b"valid base64, but not audio " * 40).decode()
# Long whatever the random weights do: 400 chunks of one word (a chunk may end early, a job cannot).
LONG = {
    "model": "higgs-audio-v2",
    "input": "word " * 400,
    "voice": "auto",
    "response_format": "pcm",
    "seed": 3,
    "chunk_method": "word",
    "chunk_max_words": 1,
}


@pytest.fixture(scope="module")
def proxy(moto_server):
    with S3Proxy(moto_server) as server:
        yield server


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory, proxy):
    root = tmp_path_factory.mktemp("http-faults")
    voices = voice_library(root)
    env = worker_process_env(tiny_models, voices, root)
    env.update(
        {
            **FAKE_AWS,
            "MAX_CONCURRENCY": "1",
            "IO_JOBS": "1",
            "ALLOW_PRIVATE_URLS": "true",  # the stalling server is on 127.0.0.1
            "REFERENCE_URL_TIMEOUT_SECONDS": "120",
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": proxy.url,
            "S3_TIMEOUT_SECONDS": "120",
            "S3_ATTEMPTS": "1",
        }
    )
    with http_worker(env, root / "worker.log") as worker:
        yield worker


def state(server) -> dict[str, str]:
    return requests.get(f"{server.url}/v1/state", timeout=10).json()["requests"]


def wait_state(server, predicate, what: str, timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not predicate(now := state(server)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s: {now}\n{server.log()[-3000:]}")
        time.sleep(0.1)
    return now


def in_background(fn) -> tuple[threading.Thread, dict]:
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(response=fn()), daemon=True)
    thread.start()
    return thread, box


def open_request(server, path: str, body: dict) -> socket.socket:
    """A request sent on a raw socket and left open: its answer is never read, nothing waits for it."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=30)
    head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\n\r\n"
    sock.sendall(head.encode() + data)
    return sock


def speak_short(server) -> requests.Response:
    body = {"model": "higgs-audio-v2", "input": "Hello there.", "voice": "belinda", "response_format": "pcm", **SHORT}
    return requests.post(f"{server.url}/v1/audio/speech", json=body, timeout=300)


def test_bad_input_gets_its_400_at_once_while_every_place_is_taken(server):
    """One request generates, one waits for the generation slot: the door is full (2 = 1 + IO_JOBS).
    Before, bad input waited for a place (22-40 s); now it is checked before it waits."""
    long_requests = [open_request(server, "/v1/audio/speech", LONG) for _ in range(2)]
    try:
        wait_state(server, lambda s: sorted(s.values()) == ["generating", "waiting"], "a full door")
        bad_base64 = {"text": "x", "reference_audio": {"base64": "@@@not base64"}}
        refused = {
            "unknown field": requests.post(
                f"{server.url}/v1/synthesize", json={"input": {"text": "x", "nope": 1}}, timeout=30
            ),
            "bad base64": requests.post(f"{server.url}/v1/synthesize", json={"input": bad_base64}, timeout=30),
            "bad base64 (speech)": requests.post(
                f"{server.url}/v1/audio/speech",
                json={"model": "tts-1", "input": "x", "reference_audio": {"base64": "@@@"}},
                timeout=30,
            ),
            "base64 that is not audio": requests.post(
                f"{server.url}/v1/synthesize",
                json={"input": {"text": "x", "reference_audio": {"base64": NOT_AUDIO}}},
                timeout=30,
            ),
            "URL with user information": requests.post(
                f"{server.url}/v1/synthesize",
                json={"input": {"text": "x", "reference_audio": {"url": "http://user:pw@127.0.0.1/x.wav"}}},
                timeout=30,
            ),
            "unknown voice": requests.post(
                f"{server.url}/v1/audio/speech", json={"model": "tts-1", "input": "x", "voice": "nobody"}, timeout=30
            ),
        }
        still = state(server)
    finally:
        for sock in long_requests:
            sock.close()  # the clients go away: the generating job stops, the waiting one leaves
    for what, response in refused.items():
        assert response.status_code in (400, 404), (what, response.text)
        assert set(response.json()) == {"error"}, (what, response.text)
    assert refused["unknown field"].json()["error"]["message"].startswith("unknown field(s) 'nope'")
    assert refused["unknown voice"].json()["error"]["code"] == "voice_not_found"
    assert sorted(still.values()) == ["generating", "waiting"]  # answered while the door was still full
    wait_state(server, lambda s: not s, "the long requests gone")


def test_a_stalled_reference_url_leaves_the_slot_to_plain_requests(server):
    with HostileServer(stall(give_up_after=120)) as stalling:
        reference = {"url": f"{stalling.url}/clip.wav", "transcript": "Hi."}
        thread, box = in_background(
            lambda: requests.post(
                f"{server.url}/v1/synthesize", json={"input": {"text": "Hi.", **SHORT, "reference_audio": reference}}
            )
        )
        wait_state(server, lambda s: list(s.values()) == ["inputs"] and stalling.requests, "the download in flight")
        plain = speak_short(server)
        assert plain.status_code == 200 and len(plain.content) > 0, plain.text
        assert list(state(server).values()) == ["inputs"]  # the stalled job is still downloading
    thread.join(timeout=120)  # the stalling server went away: a clean error
    assert box["response"].status_code == 400 and box["response"].json()["error"]["code"] == "reference_audio"


def test_a_hanging_s3_upload_leaves_the_slot_to_plain_requests(server, proxy, s3_client):
    proxy.stall_seconds = 120.0
    try:
        thread, box = in_background(
            lambda: requests.post(
                f"{server.url}/v1/synthesize",
                json={"input": {"text": "Hi.", **SHORT, "delivery": "s3", "output_name": "hung"}},
                timeout=300,
            )
        )
        wait_state(server, lambda s: list(s.values()) == ["delivering"], "the upload in flight")
        plain = speak_short(server)
        assert plain.status_code == 200 and len(plain.content) > 0, plain.text
        inline = requests.post(
            f"{server.url}/v1/synthesize", json={"input": {"text": "Hi.", **SHORT, "delivery": "base64"}}, timeout=300
        )
        assert inline.status_code == 200 and base64.b64decode(inline.json()["audio_base64"])
        assert list(state(server).values()) == ["delivering"]  # the S3 job is still uploading
    finally:
        proxy.unstall()  # S3 comes back
    thread.join(timeout=120)
    output = json.loads(box["response"].text)
    assert output["s3_uri"] == f"s3://{BUCKET}/higgs-audio/hung.wav", output
    s3_client.head_object(Bucket=BUCKET, Key="higgs-audio/hung.wav")
