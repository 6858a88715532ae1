"""A local HTTP listener for the client's tests: records every request (method, path, headers),
then answers, closes the connection without an answer, or never answers, as a test chooses.
(Real sockets on 127.0.0.1; what a server a user named could do with what the client sends.)"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Listener:
    def __init__(self, answer=None):
        """``answer(method, path, body) -> (status, payload)``; ``"drop"``: close without an
        answer; ``("hang", seconds)``: say nothing for that long."""
        self.requests: list[dict] = []
        self.answer = answer or (lambda method, path, body: (401, {"error": "no"}))
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listener.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                outcome = listener.answer(self.command, self.path, body)
                if outcome == "drop":
                    self.close_connection = True
                    return
                if isinstance(outcome, tuple) and outcome[0] == "hang":
                    time.sleep(outcome[1])
                    self.close_connection = True
                    return
                status, payload = outcome
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Listener:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorizations(self) -> list[str]:
        return [r["headers"].get("Authorization", "") for r in self.requests]
