"""A container registry on 127.0.0.1 that answers what deploy-runpod.sh asks before it deploys:
does this image tag (or digest) exist? Written from the OCI distribution spec and the Docker
registry token flow as ghcr.io serves them (ghcr.io cannot be reached from the tests):

- ``HEAD /v2/<name>/manifests/<reference>`` without a token answers 401 with
  ``WWW-Authenticate: Bearer realm="<base>/token",service="<host>",scope="repository:<name>:pull"``;
- ``GET /token?scope=repository:<name>:pull&service=...`` gives ``{"token": ...}``: anonymous
  for a public repository, only with HTTP Basic credentials for a private one (else 403, as
  ghcr.io denies an anonymous pull of a private package);
- with the token, the manifest is 200 when the reference exists and the ``Accept`` header
  names its media type (ghcr.io stores multi-arch images as OCI indexes and answers 404 to a
  client that does not accept them), else 404 ``MANIFEST_UNKNOWN``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class FakeRegistry:
    def __init__(
        self,
        images: dict[str, set[str]],
        private: dict[str, tuple[str, str]] | None = None,
        media_type: str = OCI_INDEX,
    ):
        """``images``: repository name -> the tags and digests it holds; ``private``: repository
        name -> (username, password) that may pull it."""
        self.images = images
        self.private = private or {}
        self.media_type = media_type
        self.requests: list[dict] = []
        self._tokens: dict[str, str] = {}  # token -> the scope it grants
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeRegistry:
        threading.Thread(target=self._server.serve_forever, name="fake-registry", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"].split("?")[0]) for r in self.requests]


def _make_handler(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: dict | None = None, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
            self._send(status, {"errors": [{"code": code, "message": message}]}, headers)

        def _handle(self) -> None:
            with fake._lock:
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "accept": self.headers.get("Accept", ""),
                    }
                )
            url = urlsplit(self.path)
            if url.path == "/token" and self.command == "GET":
                return self._token(parse_qs(url.query))
            m = re.fullmatch(r"/v2/(?P<name>[a-z0-9._/-]+)/manifests/(?P<ref>[\w.:-]+)", url.path)
            if not m or self.command not in ("HEAD", "GET"):
                return self._error(404, "NOT_FOUND", f"no route {self.command} {url.path}")
            return self._manifest(m["name"], m["ref"])

        def _token(self, query: dict) -> None:
            scope = (query.get("scope") or [""])[0]
            m = re.fullmatch(r"repository:(?P<name>[a-z0-9._/-]+):pull", scope)
            if not m:
                return self._error(400, "DENIED", f"bad scope {scope!r}")
            name = m["name"]
            if name in fake.private:
                user, password = fake.private[name]
                expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._error(403, "DENIED", "requested access to the resource is denied")
            token = secrets.token_hex(16)
            with fake._lock:
                fake._tokens[token] = scope
            return self._send(200, {"token": token})

        def _manifest(self, name: str, ref: str) -> None:
            host = self.headers.get("Host", "127.0.0.1")
            challenge = f'Bearer realm="http://{host}/token",service="{host}",scope="repository:{name}:pull"'
            auth = self.headers.get("Authorization", "")
            granted = fake._tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
            if granted != f"repository:{name}:pull":
                return self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
            accepted = {part.split(";")[0].strip() for part in self.headers.get("Accept", "").split(",")}
            if ref not in fake.images.get(name, set()):
                return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            if fake.media_type not in accepted:
                return self._error(
                    404, "MANIFEST_UNKNOWN", f"{fake.media_type} found, but the Accept header does not support it"
                )
            digest = ref if ref.startswith("sha256:") else "sha256:" + "cd" * 32
            return self._send(200, {}, {"Content-Type": fake.media_type, "Docker-Content-Digest": digest})

        do_GET = do_HEAD = do_POST = _handle  # noqa: N815 - http.server API

    return Handler
