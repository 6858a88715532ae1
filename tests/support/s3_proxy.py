"""A fault-injecting HTTP proxy in front of moto's S3 server, on 127.0.0.1.

boto3 talks to the proxy as if it were S3 (S3_ENDPOINT_URL); requests are relayed to
moto unchanged unless a fault is set: ``fail_puts`` answers the next PUTs with a 503
S3 error, ``deny`` answers everything 403 InvalidAccessKeyId (refused credentials),
``stall_seconds`` holds every request that long before answering (a slow store), or until
``unstall()`` lets the held requests and every later one through (a store that hung, then
came back).
A real S3 outage cannot be produced here; this stands in for it, the data path is moto.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from urllib.parse import urlsplit

ERROR_XML = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"


class S3Proxy:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.fail_puts = 0
        self.deny = False
        self.stall_seconds = 0.0
        self.unstalled = threading.Event()
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status = proxy._fault(self.command)
                if proxy.stall_seconds:
                    proxy.unstalled.wait(proxy.stall_seconds)
                if status:
                    proxy._record(self.command, self.path, status)
                    code = "InvalidAccessKeyId" if status == 403 else "ServiceUnavailable"
                    payload = ERROR_XML.format(code=code, message="injected by the test proxy").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                else:
                    conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                    proxy._record(self.command, self.path, status)
                    self.send_response(status)
                    for key, value in response.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    conn.close()

            def _serve(self):
                try:
                    self._relay()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a test of timeouts): nothing to answer

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def unstall(self) -> None:
        self.stall_seconds = 0.0
        self.unstalled.set()

    def _record(self, method: str, path: str, status: int) -> None:
        with self.lock:  # recorded before the answer is sent: a client never sees an unrecorded answer
            self.requests.append((method, path, status))

    def _fault(self, method: str) -> int | None:
        with self.lock:
            if self.deny:
                return 403
            if method == "PUT" and self.fail_puts > 0:
                self.fail_puts -= 1
                return 503
        return None

    def __enter__(self) -> S3Proxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
