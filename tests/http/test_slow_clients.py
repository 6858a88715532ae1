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


def _bases():
    from uvicorn.protocols.http.h11_impl import H11Protocol

    bases = [pytest.param(H11Protocol, id="h11")]  # what the image uses when httptools is absent
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        bases.append(pytest.param(HttpToolsProtocol, id="httptools"))
    except ImportError:
        pass
    return bases


@pytest.mark.parametrize("base", _bases())
def test_the_guard_holds_on_either_of_uvicorns_parsers(base):
    """In process: a real uvicorn server on 127.0.0.1 with the guarded protocol over ``base``
    (head deadline 1 s, cap 8) and a bare ASGI app; a full request, an unfinished head, a flood."""
    import asyncio
    import threading

    import uvicorn

    from higgs_worker.http.slow_clients import guarded_protocol
    from tests.support.api_server import _free_port

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    number = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=number, log_config=None, http=guarded_protocol(1.0, 8, base))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = f"http://127.0.0.1:{number}/ping"
        with requests.Session() as session:  # keep-alive: a second request on the same connection
            assert session.get(url, timeout=10).text == "ok" and session.get(url, timeout=10).text == "ok"
        flood = []
        for _ in range(24):  # three times the cap
            sock = socket.create_connection(("127.0.0.1", number), timeout=10)
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            flood.append(sock)
        assert requests.get(url, timeout=10).text == "ok"  # a new connection is served beside the flood
        deadline = time.monotonic() + 30
        assert all(closed_by_server(s, within=max(0.1, deadline - time.monotonic())) for s in flood)
        for sock in flood:
            sock.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
