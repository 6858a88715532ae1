"""Issue 26, findings 2 and 11, and voice administration: uploads are cut at their limit while
they arrive, deeply nested JSON is a 400, and voice admin can be turned off or given its own key.

The chunked upload goes to ``WORKER_MODE=http python handler.py`` (tiny model, CPU) with
MAX_REFERENCE_BYTES=1MB (upload limit 2 MB) and its own TMPDIR; the rest runs the app in process
(FastAPI's TestClient) on a real Worker. benchmarks/hostile_load.py ``upload`` prints the
temporary file's peak for a 300 MB part."""

from __future__ import annotations

import os
import socket
import threading

import pytest
import requests
from fastapi.testclient import TestClient

from higgs_worker.http.app import create_app
from tests.conftest import voice_library, wav_bytes, worker_process_env
from tests.support.http_server import http_worker

UPLOAD_MB = 200


def largest_open_temp_file(pid: int, folder: str) -> int:
    largest = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(folder):
                largest = max(largest, os.stat(f"/proc/{pid}/fd/{fd}").st_size)
        except OSError:
            continue
    return largest


@pytest.mark.slow
def test_a_chunked_upload_is_cut_at_its_limit_while_it_arrives(tiny_models, tmp_path):
    env = worker_process_env(tiny_models, voice_library(tmp_path), tmp_path)
    (tmp_path / "tmp").mkdir()
    env.update({"MAX_REFERENCE_BYTES": "1MB", "TMPDIR": str(tmp_path / "tmp")})
    with http_worker(env, tmp_path / "worker.log") as server:
        sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=60)
        boundary = "xyzboundary"
        head = (
            "POST /v1/audio/voices HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        ).encode()
        part = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        ).encode()
        sent, peak = {"bytes": 0, "done": False}, [0]

        def send() -> None:
            block = b"\0" * (1 << 20)
            try:
                sock.sendall(head + b"%x\r\n%s\r\n" % (len(part), part))
                for _ in range(UPLOAD_MB):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                    sent["bytes"] += len(block)
                    peak[0] = max(peak[0], largest_open_temp_file(server.proc.pid, str(tmp_path / "tmp")))
                sock.sendall(b"0\r\n\r\n")
                sent["done"] = True
            except OSError:  # the server answered and closed: the rest is never sent
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        while not answer.endswith(b"}}"):  # the head, then the JSON error
            data = sock.recv(4096)
            if not data:
                break
            answer += data
        sender.join(timeout=120)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b"request_too_large" in answer or b"MAX_REFERENCE_BYTES" in answer
        assert not sent["done"], f"the server read all {UPLOAD_MB} MB before answering"
        assert sent["bytes"] < 64 << 20, sent  # cut near the 2 MB limit (plus socket buffers)
        assert peak[0] <= 3 * 10**6, f"a {peak[0]} byte temporary file for a 2 MB limit"
        assert requests.get(f"{server.url}/ping", timeout=30).status_code == 200


@pytest.fixture
def app_for(make_worker):
    def factory(env: dict | None = None) -> TestClient:
        app = create_app(make_worker(env), start_loading=False)
        app.state.service.ready.set()
        return TestClient(app)

    return factory


@pytest.mark.parametrize("path", ["/v1/synthesize", "/v1/audio/speech"])
def test_deeply_nested_json_is_a_400_with_a_code(app_for, path):
    answer = app_for().post(path, content=b"[" * 200_000, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_json"
    assert "nested too deeply" in answer.json()["error"]["message"]


def upload(client: TestClient, name: str, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    files = {"file": ("v.wav", wav_bytes(1.0), "audio/wav")}
    return client.post("/v1/audio/voices", data={"name": name}, files=files, headers=headers)


def test_voice_admin_off_refuses_upload_and_delete_but_lists(app_for):
    client = app_for({"VOICE_ADMIN": "off"})
    refused = upload(client, "newvoice")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "voice_admin_disabled"
    gone = client.delete("/v1/audio/voices/belinda")
    assert gone.status_code == 403 and gone.json()["error"]["code"] == "voice_admin_disabled"
    assert "belinda" in [v["id"] for v in client.get("/v1/audio/voices").json()["data"]]


def test_voice_admin_key_is_needed_for_admin_and_api_key_is_not_enough(app_for):
    client = app_for({"API_KEY": "synth-key", "VOICE_ADMIN_KEY": "admin-key"})
    assert upload(client, "newvoice", "synth-key").status_code == 401  # the synthesizing key cannot replace voices
    assert upload(client, "newvoice").status_code == 401
    assert upload(client, "newvoice", "admin-key").status_code == 201
    assert client.delete("/v1/audio/voices/newvoice", headers={"Authorization": "Bearer synth-key"}).status_code == 401
    listed = client.get("/v1/audio/voices", headers={"Authorization": "Bearer synth-key"})
    assert "newvoice" in [v["id"] for v in listed.json()["data"]]  # listing stays under API_KEY
    assert client.get("/v1/audio/voices", headers={"Authorization": "Bearer admin-key"}).status_code == 401
    # behind a gateway that takes Authorization for its own key (RunPod's), the admin key has its header
    both = {"Authorization": "Bearer synth-key", "X-Voice-Admin-Key": "admin-key"}
    assert client.delete("/v1/audio/voices/newvoice", headers=both).status_code == 200


@pytest.mark.slow
def test_http_mode_without_api_key_warns_at_start(subprocess_env, tmp_path):
    """The start's log, from the real process: a warning that the door is open (and none with a key)."""
    logs = {}
    for name, extra in (("open", {}), ("keyed", {"API_KEY": "k"})):
        env = {**subprocess_env, **extra}
        with http_worker(env, tmp_path / f"{name}.log") as server:
            logs[name] = server.log()
    line = next(line for line in logs["open"].splitlines() if "HTTP mode without API_KEY" in line)
    assert " WARNING " in line and "upload and delete voices" in line
    assert "HTTP mode without API_KEY" not in logs["keyed"]
