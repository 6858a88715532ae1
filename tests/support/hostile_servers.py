"""Misbehaving HTTP servers on loopback addresses, for the hostile-input tests.

``HostileServer(behaviour, host="127.0.0.1")`` listens on a real TCP socket and answers
every connection with ``behaviour(conn)``, where ``conn`` is a :class:`Connection` (the
request already read; helpers to send a status line, headers and body bytes). The server
records each request line and counts the body bytes it managed to hand to the kernel.

Behaviours (each a small function below):

- ``serve(body)``: a normal ``200`` with ``Content-Length``;
- ``redirect(location, status)``: a ``30x`` with ``Location``;
- ``stall()``: reads the request and never answers;
- ``trickle_body(...)``: ``200`` headers, then a few bytes at a time, slowly
  (with a ``Content-Length``, chunked, or close-delimited);
- ``trickle_headers()``: a status line and then one header line at a time, slowly;
- ``endless_body(...)``: a body that never ends, as fast as the client reads it;
- ``gzip_bomb(size)``: a small gzip body that inflates to ``size`` bytes;
- ``route({path: behaviour})``: a behaviour chosen by the request path (404 otherwise).

Every slow behaviour gives up after ``give_up_after`` seconds (and on ``stop()``), so a
client that never cuts it off still lets the test finish. Only the standard library.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Connection:
    sock: socket.socket
    request: bytes
    server: HostileServer

    def send(self, data: bytes, body: bool = False) -> None:
        self.sock.sendall(data)
        if body:
            self.server.add_sent(len(data))

    def head(self, status: str = "200 OK", headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def wait(self, seconds: float) -> bool:
        """Sleep; True when the server is stopping."""
        return self.server.stopping.wait(seconds)

    @property
    def path(self) -> str:
        parts = self.request.split(b"\r\n", 1)[0].split(b" ")
        return parts[1].decode("latin-1") if len(parts) > 2 else "/"


Behaviour = Callable[[Connection], None]


class HostileServer:
    def __init__(self, behaviour: Behaviour, host: str = "127.0.0.1", port: int = 0, sndbuf: int | None = None):
        self.behaviour = behaviour
        self.stopping = threading.Event()
        self.requests: list[str] = []
        self.sent = 0
        self.peer_closed = threading.Event()  # a send failed: the client hung up
        self._lock = threading.Lock()
        self._sndbuf = sndbuf
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.host, self.port = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_sent(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        with sock:
            if self._sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf)
            sock.settimeout(10)
            request = b""
            try:
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    data = sock.recv(4096)
                    if not data:
                        return
                    request += data
            except OSError:
                return
            with self._lock:
                self.requests.append(request.split(b"\r\n", 1)[0].decode("latin-1"))
            try:
                self.behaviour(Connection(sock, request, self))
            except OSError:
                self.peer_closed.set()


# -- behaviours ---------------------------------------------------------------------------


def serve(body: bytes, content_type: str = "audio/wav") -> Behaviour:
    def behaviour(conn: Connection) -> None:
        conn.head("200 OK", {"Content-Type": content_type, "Content-Length": str(len(body)), "Connection": "close"})
        conn.send(body, body=True)

    return behaviour


def redirect(location: str, status: int = 302) -> Behaviour:
    reasons = {
        301: "Moved Permanently",
        302: "Found",
        303: "See Other",
        307: "Temporary Redirect",
        308: "Permanent Redirect",
    }

    def behaviour(conn: Connection) -> None:
        conn.head(f"{status} {reasons[status]}", {"Location": location, "Content-Length": "0"})

    return behaviour


def stall(give_up_after: float = 30.0) -> Behaviour:
    def behaviour(conn: Connection) -> None:
        conn.wait(give_up_after)

    return behaviour


def trickle_body(
    framing: str = "length", piece: bytes = b"RIFF", interval: float = 0.25, give_up_after: float = 12.0
) -> Behaviour:
    """``framing``: "length" (Content-Length: 1 MB), "chunked", or "close" (no length)."""
    headers = {
        "length": {"Content-Length": "1000000"},
        "chunked": {"Transfer-Encoding": "chunked"},
        "close": {"Connection": "close"},
    }[framing]

    def behaviour(conn: Connection) -> None:
        conn.head("200 OK", {"Content-Type": "audio/wav", **headers})
        end = time.monotonic() + give_up_after
        while time.monotonic() < end:
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece
            conn.send(data, body=True)
            if conn.wait(interval):
                return

    return behaviour


def trickle_headers(interval: float = 0.4, give_up_after: float = 12.0) -> Behaviour:
    def behaviour(conn: Connection) -> None:
        conn.send(b"HTTP/1.1 200 OK\r\n")
        end, n = time.monotonic() + give_up_after, 0
        while time.monotonic() < end:
            conn.send(b"X-Slow-%d: yes\r\n" % n)
            n += 1
            if conn.wait(interval):
                return

    return behaviour


def endless_body(framing: str = "chunked", block: int = 16384, give_up_after: float = 20.0) -> Behaviour:
    """An endless body: "chunked", "close" (no length) or "declared" (Content-Length: 10 GB)."""
    headers = {
        "chunked": {"Transfer-Encoding": "chunked"},
        "close": {"Connection": "close"},
        "declared": {"Content-Length": str(10 * 10**9)},
    }[framing]
    payload = b"\0" * block

    def behaviour(conn: Connection) -> None:
        conn.head("200 OK", {"Content-Type": "audio/wav", **headers})
        end = time.monotonic() + give_up_after
        while time.monotonic() < end and not conn.server.stopping.is_set():
            if framing == "chunked":
                conn.send(b"%x\r\n" % block)
                conn.send(payload, body=True)
                conn.send(b"\r\n")
            else:
                conn.send(payload, body=True)

    return behaviour


def gzip_bomb(size: int) -> Behaviour:
    body = gzip.compress(b"\0" * size, compresslevel=9)

    def behaviour(conn: Connection) -> None:
        conn.head(
            "200 OK",
            {
                "Content-Type": "audio/wav",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(body)),
                "Connection": "close",
            },
        )
        conn.send(body, body=True)

    return behaviour


def route(routes: dict[str, Behaviour]) -> Behaviour:
    def behaviour(conn: Connection) -> None:
        chosen = routes.get(conn.path)
        if chosen is None:
            conn.head("404 Not Found", {"Content-Length": "0"})
        else:
            chosen(conn)

    return behaviour
