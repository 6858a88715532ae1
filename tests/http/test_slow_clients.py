"""Issue 26, finding 6: slow clients do not hold the HTTP server.

``WORKER_MODE=http python handler.py`` (tiny model, CPU) with short deadlines
(HTTP_HEADER_TIMEOUT_SECONDS=2, HTTP_BODY_TIMEOUT_SECONDS=3) and a small connection cap
(HTTP_MAX_CONNECTIONS=40). Order, not time: the flood's sockets are closed by the server and
``/ping`` answers while they are open; the waits below are generous upper bounds for a loaded
machine, never the measured figure (benchmarks/hostile_load.py ``slow`` prints the latencies)."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.conftest import voice_library, worker_process_env
from tests.support.http_server import http_worker

pytestmark = pytest.mark.slow

FLOOD = 120  # sockets with a request head that never ends (three times the cap)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("slow-clients")
    env = worker_process_env(tiny_models, voice_library(root), root)
    env.update({"HTTP_HEADER_TIMEOUT_SECONDS": "2", "HTTP_BODY_TIMEOUT_SECONDS": "3", "HTTP_MAX_CONNECTIONS": "40"})
    with http_worker(env, root / "worker.log") as worker:
        yield worker


def port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True once the server closes ``sock`` (or answers on it), False if it is still open after ``within`` s."""
    sock.settimeout(within)
    try:
        sock.recv(4096)  # b"" (closed) or an answer: either way the server let go
        return True
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def test_a_flood_of_unfinished_heads_is_closed_and_ping_answers_meanwhile(server):
    flood = []
    try:
        for _ in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: ")  # the head never ends
            flood.append(sock)
        pings = [requests.get(f"{server.url}/ping", timeout=20) for _ in range(5)]  # while they are open
        assert [p.status_code for p in pings] == [200] * 5
        deadline = time.monotonic() + 60
        still_open = [s for s in flood if not closed_by_server(s, within=max(0.1, deadline - time.monotonic()))]
        assert still_open == [], f"{len(still_open)} of {FLOOD} unfinished heads still held by the server"
    finally:
        for sock in flood:
            sock.close()
    assert requests.get(f"{server.url}/ping", timeout=20).status_code == 200


def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_deadline(server):
    sock = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
    try:
        cut = False
        for byte in b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 60:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            if closed_by_server(sock, within=1.0):
                cut = True
                break
        assert cut, "a head dripping a byte a second for 100 s was never cut"
    finally:
        sock.close()


def test_a_dripping_body_gets_408_and_the_connection_closes(server):
    sock = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
    try:
        head = b"POST /v1/synthesize HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: 100\r\n\r\n"
        sock.sendall(head + b'{"input": ')
        answer = b""
        started = time.monotonic()
        sock.settimeout(1.0)
        while time.monotonic() - started < 60 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b" ")
                answer += sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body_timeout" in answer + sock.recv(4096)
        assert closed_by_server(sock, within=30)
    finally:
        sock.close()
