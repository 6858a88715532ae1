"""Issue 26, finding 1: HTTP admission is bounded, nothing is decoded before admission, and a
job's own reference audio over its totals is answered with 400 (the totals themselves, in both
doors: tests/worker/test_voice_inputs.py).

The HTTP test runs ``WORKER_MODE=http python handler.py`` (tiny model, CPU) with one generation
slot, one job beside it and one waiting place (MAX_CONCURRENCY=1, IO_JOBS=1, HTTP_QUEUE_LIMIT=1).
The memory figures are benchmarks/hostile_load.py's (``burst``)."""

from __future__ import annotations

import base64
import io
import json
import socket
import time

import numpy as np
import pytest
import requests
import soundfile as sf

from tests.conftest import voice_library, worker_process_env
from tests.support.http_server import http_worker

LONG = {"text": "word " * 400, "seed": 3, "chunk_method": "word", "chunk_max_words": 1, "delivery": "base64"}


def flac_b64(seconds: float) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * 24000), dtype=np.float32), 24000, format="FLAC")
    return base64.b64encode(buffer.getvalue()).decode()


def open_request(url: str, body: dict) -> socket.socket:
    """A request sent on a raw socket and left open: nothing waits for its answer."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30)
    head = "POST /v1/synthesize HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def requests_in_state(url: str) -> dict[str, str]:
    return requests.get(f"{url}/v1/state", timeout=10).json()["requests"]


def wait_state(server, predicate, timeout: float = 180) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not predicate(now := requests_in_state(server.url)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{now}\n{server.log()[-3000:]}")
        time.sleep(0.1)
    return now


@pytest.mark.slow
def test_past_the_queue_bound_requests_get_429_with_retry_after(tiny_models, tmp_path):
    env = worker_process_env(tiny_models, voice_library(tmp_path), tmp_path)
    env.update({"MAX_CONCURRENCY": "1", "IO_JOBS": "1", "HTTP_QUEUE_LIMIT": "1"})
    with http_worker(env, tmp_path / "worker.log") as server:
        held = [open_request(server.url, {"input": LONG}) for _ in range(3)]  # 2 running + 1 waiting
        try:
            wait_state(server, lambda s: sorted(s.values()) == ["generating", "queued", "waiting"])
            refused = requests.post(f"{server.url}/v1/synthesize", json={"input": {"text": "Hi."}}, timeout=30)
            speech = requests.post(
                f"{server.url}/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "auto"}, timeout=30
            )
            still = requests_in_state(server.url)
        finally:
            for sock in held:
                sock.close()
        for answer in (refused, speech):
            assert answer.status_code == 429, answer.text
            assert answer.json()["error"]["code"] == "queue_full"
            assert int(answer.headers["Retry-After"]) > 0
        assert len(still) == 3  # the refused requests never joined the line
        # places are given back when clients leave: a plain request is served again
        wait_state(server, lambda s: not s)
        short = {"text": "Hi.", "seed": 1, "max_new_tokens": 10, "delivery": "base64"}
        answer = requests.post(f"{server.url}/v1/synthesize", json={"input": short}, timeout=300)
        assert answer.status_code == 200, answer.text


def test_prepare_reads_headers_and_decodes_nothing(make_worker):
    """What a request holds while it waits for admission: bytes, never decoded clips."""
    worker = make_worker()
    prepared = worker.prepare(
        {
            "text": "[SPEAKER0] Hi. [SPEAKER1] Hello.",
            "speakers": {
                "SPEAKER0": {"reference_audio": {"base64": flac_b64(2.0), "transcript": "Hi."}},
                "SPEAKER1": {"voice": "belinda"},
            },
        }
    )
    items = prepared.voices.items()
    assert len(items) == 2
    assert all(item.waveform is None and item.data is not None for item in items)
    worker.fetch(prepared)  # once admitted
    assert all(item.waveform is not None and item.data is None for item in items)


def test_http_answers_the_totals_with_400(make_worker):
    from fastapi.testclient import TestClient

    from higgs_worker.http.app import create_app

    worker = make_worker({"MAX_JOB_REFERENCE_SECONDS": "3"})
    app = create_app(worker, start_loading=False)
    app.state.service.ready.set()
    speakers = {f"SPEAKER{i}": {"reference_audio": {"base64": flac_b64(2.0)}} for i in range(2)}
    answer = TestClient(app).post(
        "/v1/synthesize", json={"input": {"text": "[SPEAKER0] a [SPEAKER1] b", "speakers": speakers}}
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_input", answer.text
    assert app.state.service.line.places == 0  # the refused request gave its place back
