"""A local stand-in for the Hugging Face Hub, close enough for huggingface_hub's real download code.

Repositories are plain folders: ``ROOT/{org}/{name}/...`` (every file under it, except a ``.git``
folder, is a file of the repo). The server gives each repo a deterministic 40-hex commit sha: the
sha1 of the sorted file paths and the sha256 of their contents. Editing a repo on disk gives it a
new sha on the next request; the server only knows the current state, so an older sha is then
answered like any unknown revision.

It answers what huggingface_hub 2.4.0 asks for in ``snapshot_download``, ``hf_hub_download`` and
``HfApi.model_info`` / ``repo_info`` / ``list_repo_tree``:

- ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}``: repo info
  (``id``, ``sha``, ``siblings[].rfilename``; with ``?blobs=true`` also ``size``, ``blobId``, ``lfs``).
- ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=...``: the tree listing
  (``type``, ``oid``, ``size``, ``path``, ``lfs: {oid, size, pointerSize}``), paginated with a
  GitHub-style ``Link: <...>; rel="next"`` header like the Hub (``tree_page_size`` entries a page).
- ``HEAD`` / ``GET /{repo_id}/resolve/{revision}/{path}``: a regular (git) file is answered
  ``200`` with ``ETag`` (its git blob sha1), ``Content-Length``, ``X-Repo-Commit`` and
  ``Accept-Ranges``; a ``Range: bytes=N-`` request gets ``206`` with ``Content-Range``. An LFS file
  is answered ``302`` with ``Location`` on a separate "CDN" origin (``http://localhost:PORT/cdn-lfs/...``
  by default: the same socket, but a different origin than ``127.0.0.1``, so huggingface_hub drops
  the Authorization header for it exactly as it does for the real CDN), plus ``X-Linked-Etag``
  (the sha256), ``X-Linked-Size`` and ``X-Repo-Commit``. ``lfs_redirect=False`` serves LFS files
  directly from ``/resolve`` instead.
- Errors carry the Hub's ``X-Error-Code`` / ``X-Error-Message`` headers, which huggingface_hub turns
  into its typed errors: unknown repo -> 404 ``RepoNotFound``; unknown revision -> 404
  ``RevisionNotFound``; missing file -> 404 ``EntryNotFound``; missing token on a protected repo ->
  401 ``GatedRepo`` (``auth_mode="gated"``) or 401 ``RepoNotFound`` (``auth_mode="private"``); a
  wrong token -> 401 with the message "Invalid credentials in Authorization header" (no code).

Fault injection, thread-safe, set on the server object: ``require_token`` / ``set_auth``,
``fail_next``, ``drop_after_bytes``, ``delay_seconds`` / ``release_delays``, ``clear_faults``.
Every request is recorded as a :class:`RequestRecord` (method, path, Range header, status,
bytes sent, ...).

The server runs in a thread of the test process; worker subprocesses reach it too
(``hub.env(...)`` gives them HF_ENDPOINT)::

    with HubServer(root) as hub:
        snapshot_download("org/name", local_dir=..., endpoint=hub.url, token=False)
        assert hub.downloads("model.safetensors")

Only the standard library is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["HubServer", "RequestRecord", "client_env", "write_repo"]

# Files that a Hub repo's default .gitattributes tracks with LFS (plus anything of 10 MiB or more,
# which the Hub refuses to store in git).
DEFAULT_LFS_SUFFIXES: tuple[str, ...] = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib", ".mlmodel",
    ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt",
    ".pth", ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
    ".wav", ".mp3", ".flac", ".ogg",
)  # fmt: skip
DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024

_FAULT_KINDS = ("api", "head", "file_get", "resolve")
_READ_CHUNK = 64 * 1024


# --------------------------------------------------------------------------------------------
# Repositories on disk
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _File:
    path: str  # posix path inside the repo
    abspath: str
    size: int
    sha256: str
    git_sha1: str  # blob id of the content (regular file) or of the LFS pointer (LFS file)
    lfs: bool
    pointer_size: int | None


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    repo_id: str
    commit: str
    files: dict[str, _File]
    last_modified: str
    fingerprint: tuple

    def dirs(self) -> set[str]:
        out: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return out


def _git_blob_sha1(size: int, chunks: Iterable[bytes]) -> str:
    h = hashlib.sha1(b"blob %d\0" % size)
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def write_repo(root: str | os.PathLike, repo_id: str, files: Mapping[str, bytes | str]) -> Path:
    """Write a repo ``ROOT/{org}/{name}`` with the given files (path in repo -> content)."""
    repo_dir = Path(root, *repo_id.split("/"))
    for rel, content in files.items():
        target = repo_dir.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return repo_dir


# --------------------------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RequestRecord:
    """One request the server answered."""

    method: str
    path: str  # URL path, percent-decoded, without the query
    query: str
    range: str | None  # the Range header as sent
    host: str | None  # the Host header: 127.0.0.1:PORT for the hub, localhost:PORT for the CDN
    has_auth: bool  # whether an Authorization header was sent (its value is never recorded)
    kind: str  # "api", "resolve", "cdn" or "other"
    repo_id: str | None = None
    filename: str | None = None  # path of the file inside the repo, for resolve and cdn requests
    status: int = 0  # 0 while the request is still being answered
    content_length: int | None = None  # the Content-Length announced
    bytes_sent: int = 0  # body bytes actually written
    complete: bool = False  # the whole announced body was written
    fault: str | None = None  # "fail", "drop", "delay" or "auth" when an injected fault shaped the answer
    started: float = 0.0
    ended: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestRecord:
        return cls(**data)


def _filter_records(
    records: Iterable[RequestRecord],
    method: str | None = None,
    kind: str | None = None,
    filename: str | None = None,
    repo_id: str | None = None,
    path_contains: str | None = None,
    status: int | None = None,
) -> list[RequestRecord]:
    out = []
    for r in records:
        if method is not None and r.method != method.upper():
            continue
        if kind is not None and r.kind != kind:
            continue
        if filename is not None and r.filename != filename:
            continue
        if repo_id is not None and r.repo_id != repo_id:
            continue
        if path_contains is not None and path_contains not in r.path:
            continue
        if status is not None and r.status != status:
            continue
        out.append(r)
    return out


def _downloads(records: Iterable[RequestRecord], filename: str, repo_id: str | None = None) -> list[RequestRecord]:
    """GETs that started sending the body of ``filename`` (200 or 206), complete or not."""
    return [
        r
        for r in _filter_records(records, method="GET", filename=filename, repo_id=repo_id)
        if r.kind in ("resolve", "cdn") and r.status in (200, 206)
    ]


# --------------------------------------------------------------------------------------------
# Shared state: repos, faults, log
# --------------------------------------------------------------------------------------------


class _HubState:
    def __init__(
        self,
        root: str | os.PathLike,
        *,
        require_token: str | None,
        auth_mode: str,
        lfs_suffixes: Iterable[str],
        lfs_threshold: int,
        log_file: str | os.PathLike | None,
    ) -> None:
        self.root = Path(root).resolve()
        self.lfs_suffixes = tuple(s.lower() for s in lfs_suffixes)
        self.lfs_threshold = lfs_threshold
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self._snapshots: dict[str, _Snapshot] = {}
        self._log: list[RequestRecord] = []
        self._log_file = Path(log_file) if log_file else None
        self._request_counter = 0
        self._fail_rules: list[dict[str, Any]] = []
        self._drop_rules: list[dict[str, Any]] = []
        self._delay_rules: list[dict[str, Any]] = []
        self._require_token: str | None = None
        self._auth_mode = "gated"
        self._auth_repos: frozenset[str] | None = None
        self.set_auth(require_token, mode=auth_mode)

    # ---- repos -------------------------------------------------------------------------------

    def _is_lfs(self, path: str, size: int) -> bool:
        return size >= self.lfs_threshold or path.lower().endswith(self.lfs_suffixes)

    def snapshot(self, repo_id: str) -> _Snapshot | None:
        parts = repo_id.split("/")
        if len(parts) != 2 or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        repo_dir = self.root / parts[0] / parts[1]
        if not repo_dir.is_dir():
            return None
        listing = []
        for dirpath, dirnames, filenames in os.walk(repo_dir):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in filenames:
                abspath = os.path.join(dirpath, name)
                st = os.stat(abspath)
                rel = os.path.relpath(abspath, repo_dir).replace(os.sep, "/")
                listing.append((rel, abspath, st.st_size, st.st_mtime_ns))
        listing.sort()
        fingerprint = tuple((rel, size, mtime) for rel, _, size, mtime in listing)
        with self.lock:
            cached = self._snapshots.get(repo_id)
            if cached is not None and cached.fingerprint == fingerprint:
                return cached
            files: dict[str, _File] = {}
            commit = hashlib.sha1()
            for rel, abspath, size, _mtime in listing:
                sha256 = hashlib.sha256()
                git = hashlib.sha1(b"blob %d\0" % size)
                with open(abspath, "rb") as f:
                    while chunk := f.read(1 << 20):
                        sha256.update(chunk)
                        git.update(chunk)
                digest = sha256.hexdigest()
                if self._is_lfs(rel, size):
                    pointer = _lfs_pointer(digest, size)
                    files[rel] = _File(
                        rel, abspath, size, digest, _git_blob_sha1(len(pointer), [pointer]), True, len(pointer)
                    )
                else:
                    files[rel] = _File(rel, abspath, size, digest, git.hexdigest(), False, None)
                commit.update(f"{rel}\0{digest}\n".encode())
            newest = max((m for *_, m in listing), default=0)
            modified = datetime.fromtimestamp(newest / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            snap = _Snapshot(repo_id, commit.hexdigest(), files, modified, fingerprint)
            self._snapshots[repo_id] = snap
            return snap

    # ---- auth --------------------------------------------------------------------------------

    def set_auth(self, token: str | None, mode: str = "gated", repos: Iterable[str] | None = None) -> None:
        if mode not in ("gated", "private"):
            raise ValueError(f"auth mode must be 'gated' or 'private', not {mode!r}")
        with self.lock:
            self._require_token = token or None
            self._auth_mode = mode
            self._auth_repos = frozenset(repos) if repos is not None else None

    @property
    def require_token(self) -> str | None:
        with self.lock:
            return self._require_token

    def auth_for(self, repo_id: str) -> tuple[str | None, str]:
        with self.lock:
            if self._require_token is None:
                return None, self._auth_mode
            if self._auth_repos is not None and repo_id not in self._auth_repos:
                return None, self._auth_mode
            return self._require_token, self._auth_mode

    # ---- faults ------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        only: str | Iterable[str] | None = None,
        filename: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        kinds = _normalize_only(only)
        with self.lock:
            self._fail_rules.append(
                {
                    "remaining": int(n),
                    "status": int(status),
                    "only": kinds,
                    "filename": filename,
                    "retry_after": retry_after,
                }
            )

    def take_fail(self, kind: str, method: str, filename: str | None) -> dict[str, Any] | None:
        tags = {kind}
        if kind == "api":
            tags.add("api")
        if kind in ("resolve", "cdn"):
            tags.add("head" if method == "HEAD" else "file_get")
        with self.lock:
            for rule in self._fail_rules:
                if rule["remaining"] <= 0:
                    continue
                if rule["only"] is not None and not (rule["only"] & tags):
                    continue
                if rule["filename"] is not None and rule["filename"] != filename:
                    continue
                rule["remaining"] -= 1
                return dict(rule)
            self._fail_rules = [r for r in self._fail_rules if r["remaining"] > 0]
        return None

    def drop_after_bytes(
        self, filename: str, nbytes: int, times: int = 1, mode: str = "close", repo_id: str | None = None
    ) -> None:
        if mode not in ("close", "reset"):
            raise ValueError(f"drop mode must be 'close' or 'reset', not {mode!r}")
        with self.lock:
            self._drop_rules.append(
                {"filename": filename, "nbytes": int(nbytes), "remaining": int(times), "mode": mode, "repo_id": repo_id}
            )

    def take_drop(self, filename: str, repo_id: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self._drop_rules:
                if rule["remaining"] > 0 and rule["filename"] == filename and rule["repo_id"] in (None, repo_id):
                    rule["remaining"] -= 1
                    return dict(rule)
        return None

    def delay_seconds(
        self,
        filename: str,
        seconds: float,
        times: int | None = None,
        after_bytes: int = 0,
        repo_id: str | None = None,
        method: str = "GET",
    ) -> None:
        if method.upper() not in ("GET", "HEAD"):
            raise ValueError(f"delay method must be 'GET' or 'HEAD', not {method!r}")
        with self.lock:
            self._delay_rules.append(
                {
                    "method": method.upper(),
                    "filename": filename,
                    "seconds": float(seconds),
                    "remaining": times,
                    "after_bytes": int(after_bytes),
                    "repo_id": repo_id,
                    "event": threading.Event(),
                }
            )

    def take_delay(self, filename: str, repo_id: str, method: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self._delay_rules:
                if rule["event"].is_set() or rule["method"] != method:
                    continue
                if rule["filename"] != filename or rule["repo_id"] not in (None, repo_id):
                    continue
                if rule["remaining"] is not None:
                    if rule["remaining"] <= 0:
                        continue
                    rule["remaining"] -= 1
                return rule
        return None

    def release_delays(self, filename: str | None = None, method: str | None = None) -> None:
        """End the matching delays now: stalled responses go on at once and the rules are removed."""
        with self.lock:
            keep = []
            for rule in self._delay_rules:
                if filename in (None, rule["filename"]) and method in (None, rule["method"]):
                    rule["event"].set()
                else:
                    keep.append(rule)
            self._delay_rules = keep

    def clear_faults(self) -> None:
        self.release_delays()
        with self.lock:
            self._fail_rules.clear()
            self._drop_rules.clear()

    # ---- log ---------------------------------------------------------------------------------

    def next_request_id(self) -> str:
        with self.lock:
            self._request_counter += 1
            return f"local-hub-{self._request_counter}"

    def record_start(self, rec: RequestRecord) -> None:
        """Log a request as it begins (status 0 until answered), so tests can see stalled ones."""
        with self.lock:
            self._log.append(rec)

    def record_end(self, rec: RequestRecord) -> None:
        with self.lock:
            if self._log_file is not None:
                with open(self._log_file, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec.to_dict()) + "\n")

    def records(self) -> list[RequestRecord]:
        with self.lock:
            return [dataclasses.replace(r) for r in self._log]

    def clear_log(self) -> None:
        with self.lock:
            self._log.clear()


def _normalize_only(only: str | Iterable[str] | None) -> frozenset[str] | None:
    if only is None or only == "any":
        return None
    kinds = frozenset([only] if isinstance(only, str) else only)
    unknown = kinds - set(_FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown request kind(s) {sorted(unknown)}; use any of {_FAULT_KINDS} or None")
    return kinds


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


class _Abort(Exception):
    """Raised inside a handler to end the connection without a (complete) answer."""


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, state: _HubState, options: dict[str, Any]):
        self.state = state
        self.options = options
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-hub/1.0"
    server: _HTTPServer

    # ---- plumbing ----------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log is the record; keep test output quiet

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    @property
    def state(self) -> _HubState:
        return self.server.state

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        raw_segments = split.path.split("/")[1:]
        path = unquote(split.path)
        self.request_id = self.state.next_request_id()
        rec = RequestRecord(
            method=method,
            path=path,
            query=split.query,
            range=self.headers.get("Range"),
            host=self.headers.get("Host"),
            has_auth=self.headers.get("Authorization") is not None,
            kind="other",
            started=time.time(),
        )
        self.rec = rec
        self.state.record_start(rec)
        try:
            self._route(method, raw_segments, parse_qs(split.query))
        except _Abort:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        finally:
            rec.ended = time.time()
            rec.complete = rec.status > 0 and rec.content_length is not None and rec.bytes_sent >= rec.content_length
            if method == "HEAD" or rec.status in (301, 302, 304) or rec.status >= 400:
                rec.complete = rec.status > 0
            self.state.record_end(rec)

    # ---- answers -----------------------------------------------------------------------------

    def _send(self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("X-Request-Id", self.request_id)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.rec.status = status
        self.rec.content_length = len(body)
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            self.rec.bytes_sent = len(body)

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)

    def _error(
        self, status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        hdrs = {"X-Error-Message": message}
        if code is not None:
            hdrs["X-Error-Code"] = code
        hdrs.update(headers or {})
        self._send_json(status, {"error": message}, hdrs)

    # ---- routing -----------------------------------------------------------------------------

    def _route(self, method: str, seg: list[str], query: dict[str, list[str]]) -> None:
        rec = self.rec
        # /api/models/{org}/{name}[/revision/{rev} | /tree/{rev}[/{path}]]
        if len(seg) >= 4 and seg[0] == "api" and seg[1] == "models":
            rec.kind = "api"
            rec.repo_id = f"{unquote(seg[2])}/{unquote(seg[3])}"
            rest = seg[4:]
            if self._inject_failure("api", method, None):
                return
            if method != "GET":
                return self._error(405, "Method not allowed")
            if not rest:
                return self._repo_info(rec.repo_id, "main", query)
            if len(rest) == 2 and rest[0] == "revision":
                return self._repo_info(rec.repo_id, unquote(rest[1]), query)
            if len(rest) >= 2 and rest[0] == "tree":
                sub = "/".join(unquote(s) for s in rest[2:] if s)
                return self._tree(rec.repo_id, unquote(rest[1]), sub, query)
            return self._error(404, "Sorry, we can't find the page you are looking for.")
        # /{org}/{name}/resolve/{rev}/{path...}
        if len(seg) >= 5 and seg[2] == "resolve":
            rec.kind = "resolve"
            rec.repo_id = f"{unquote(seg[0])}/{unquote(seg[1])}"
            rec.filename = "/".join(unquote(s) for s in seg[4:])
            if self._inject_failure("resolve", method, rec.filename):
                return
            if method not in ("GET", "HEAD"):
                return self._error(405, "Method not allowed")
            return self._resolve(rec.repo_id, unquote(seg[3]), rec.filename)
        # /cdn-lfs/{org}/{name}/{sha256}?filename=...
        if len(seg) == 4 and seg[0] == "cdn-lfs":
            rec.kind = "cdn"
            rec.repo_id = f"{unquote(seg[1])}/{unquote(seg[2])}"
            rec.filename = (query.get("filename") or [None])[0]
            if self._inject_failure("cdn", method, rec.filename):
                return
            if method not in ("GET", "HEAD"):
                return self._error(405, "Method not allowed")
            return self._cdn(rec.repo_id, unquote(seg[3]), rec.filename)
        return self._error(404, "Sorry, we can't find the page you are looking for.")

    def _inject_failure(self, kind: str, method: str, filename: str | None) -> bool:
        rule = self.state.take_fail(kind, method, filename)
        if rule is None:
            return False
        self.rec.fault = "fail"
        headers = {}
        if rule["retry_after"] is not None:
            headers["Retry-After"] = str(rule["retry_after"])
        status = rule["status"]
        reason = http.server.BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
        self._send_json(status, {"error": f"{reason} (injected by the test hub)"}, headers)
        return True

    def _check_auth(self, repo_id: str) -> bool:
        token, mode = self.state.auth_for(repo_id)
        if token is None:
            return True
        sent = self.headers.get("Authorization")
        if sent == f"Bearer {token}":
            return True
        self.rec.fault = "auth"
        if sent is not None:
            self._error(401, "Invalid credentials in Authorization header")
        elif mode == "gated":
            self._error(
                401,
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated"
                " to access it. Please log in.",
                "GatedRepo",
            )
        else:
            self._error(401, "Repository not found", "RepoNotFound")
        return False

    def _lookup(self, repo_id: str, revision: str) -> _Snapshot | None:
        """Repo at a revision, or None after answering the error."""
        snap = self.state.snapshot(repo_id)
        if snap is None:
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        if not self._check_auth(repo_id):
            return None
        if revision not in ("main", snap.commit):
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return None
        return snap

    # ---- API ---------------------------------------------------------------------------------

    def _repo_info(self, repo_id: str, revision: str, query: dict[str, list[str]]) -> None:
        snap = self._lookup(repo_id, revision)
        if snap is None:
            return
        blobs = (query.get("blobs") or ["false"])[0].lower() in ("1", "true")
        siblings = []
        for f in sorted(snap.files.values(), key=lambda f: f.path):
            sib: dict[str, Any] = {"rfilename": f.path}
            if blobs:
                sib["size"] = f.size
                sib["blobId"] = f.git_sha1
                if f.lfs:
                    sib["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": f.pointer_size}
            siblings.append(sib)
        token, mode = self.state.auth_for(repo_id)
        info: dict[str, Any] = {
            "_id": snap.commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": snap.commit,
            "lastModified": snap.last_modified,
            "createdAt": snap.last_modified,
            "private": token is not None and mode == "private",
            "gated": "manual" if token is not None and mode == "gated" else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(f.size for f in snap.files.values()),
        }
        config = snap.files.get("config.json")
        if config is not None and config.size < 1 << 20:
            try:
                data = json.loads(Path(config.abspath).read_text(encoding="utf-8"))
                if isinstance(data, dict) and "model_type" in data:
                    info["config"] = {"model_type": data["model_type"], "architectures": data.get("architectures")}
            except (OSError, ValueError):
                pass
        self._send_json(200, info)

    def _tree(self, repo_id: str, revision: str, sub: str, query: dict[str, list[str]]) -> None:
        snap = self._lookup(repo_id, revision)
        if snap is None:
            return
        recursive = (query.get("recursive") or ["false"])[0].lower() in ("1", "true")
        dirs = snap.dirs()
        if sub and sub not in dirs:
            return self._error(404, f"Entry not found: {sub}", "EntryNotFound", {"X-Repo-Commit": snap.commit})
        prefix = f"{sub}/" if sub else ""

        def wanted(path: str) -> bool:
            if not path.startswith(prefix):
                return False
            return recursive or "/" not in path[len(prefix) :]

        entries: list[dict[str, Any]] = []
        for d in sorted(p for p in dirs if wanted(p)):
            tree_id = hashlib.sha1(f"tree {snap.commit} {d}".encode()).hexdigest()
            entries.append({"type": "directory", "oid": tree_id, "size": 0, "path": d})
        for f in sorted((f for f in snap.files.values() if wanted(f.path)), key=lambda f: f.path):
            entry: dict[str, Any] = {"type": "file", "oid": f.git_sha1, "size": f.size, "path": f.path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
            entries.append(entry)
        entries.sort(key=lambda e: e["path"])

        page_size = max(1, int(self.server.options["tree_page_size"]))
        try:
            cursor = int((query.get("cursor") or ["0"])[0])
        except ValueError:
            return self._error(400, "Invalid cursor")
        page = entries[cursor : cursor + page_size]
        headers = {}
        if cursor + page_size < len(entries):
            params = {k: v[0] for k, v in query.items() if k != "cursor"}
            params["cursor"] = str(cursor + page_size)
            host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            split = urlsplit(self.path)
            headers["Link"] = f'<http://{host}{split.path}?{urlencode(params)}>; rel="next"'
        self._send_json(200, page, headers)

    # ---- files -------------------------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        snap = self._lookup(repo_id, revision)
        if snap is None:
            return
        f = snap.files.get(filename)
        if f is None:
            return self._error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": snap.commit})
        self._maybe_stall_head(f)
        headers = {"X-Repo-Commit": snap.commit}
        if not f.lfs:
            return self._serve_file(f, {**headers, "ETag": f'"{f.git_sha1}"'})
        headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size), "ETag": f'"{f.sha256}"'})
        if not self.server.options["lfs_redirect"]:
            return self._serve_file(f, headers)
        location = self._cdn_url(repo_id, f)
        body = f"Found. Redirecting to {location}".encode()
        self._send(302, {**headers, "Location": location, "Content-Type": "text/plain; charset=utf-8"}, body)

    def _cdn_url(self, repo_id: str, f: _File) -> str:
        port = self.server.server_address[1]
        expires = int(time.time()) + 3600
        params = urlencode({"filename": f.path, "Expires": expires, "Signature": f.sha256[:16]})
        return f"http://{self.server.options['cdn_host']}:{port}/cdn-lfs/{quote(repo_id, safe='/')}/{f.sha256}?{params}"

    def _cdn(self, repo_id: str, sha256: str, filename: str | None) -> None:
        snap = self.state.snapshot(repo_id)
        match = None
        if snap is not None:
            candidates = [f for f in snap.files.values() if f.sha256 == sha256 and f.lfs]
            match = next((f for f in candidates if f.path == filename), candidates[0] if candidates else None)
        if match is None:
            return self._send(404, {"Content-Type": "text/plain"}, b"NoSuchKey")
        self.rec.filename = match.path
        self._maybe_stall_head(match)
        self._serve_file(match, {"ETag": f'"{sha256}"'})

    def _maybe_stall_head(self, f: _File) -> None:
        if self.command != "HEAD":
            return
        delay = self.state.take_delay(f.path, self.rec.repo_id or "", "HEAD")
        if delay is not None:
            self.rec.fault = "delay"
            self._stall(delay)

    def _serve_file(self, f: _File, headers: dict[str, str]) -> None:
        rec = self.rec
        size = f.size
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, size)
            if parsed is None:
                return self._error(416, "Requested Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"})
            start, end = parsed  # like the Hub, any satisfiable Range gets a 206, even bytes=0-
            status = 206
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("X-Request-Id", self.request_id)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        name = f.path.rsplit("/", 1)[-1]
        self.send_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        rec.status = status
        rec.content_length = length
        if self.command == "HEAD":
            return

        drop = self.state.take_drop(f.path, self.rec.repo_id or "")
        delay = self.state.take_delay(f.path, self.rec.repo_id or "", "GET")
        limit = length if drop is None else min(length, drop["nbytes"])
        if drop is not None and limit < length:
            rec.fault = "drop"
        elif delay is not None:
            rec.fault = "delay"
        delayed = delay is None
        with open(f.abspath, "rb") as fh:
            fh.seek(start)
            while True:
                if not delayed and rec.bytes_sent >= delay["after_bytes"]:
                    self.wfile.flush()
                    self._stall(delay)
                    delayed = True
                if rec.bytes_sent >= limit:
                    break
                want = min(_READ_CHUNK, limit - rec.bytes_sent)
                if not delayed:
                    want = min(want, delay["after_bytes"] - rec.bytes_sent)
                chunk = fh.read(want)
                if not chunk:
                    break
                self.wfile.write(chunk)
                rec.bytes_sent += len(chunk)
        if drop is not None and limit < length:
            self._abort_connection(drop["mode"])
            raise _Abort()

    def _stall(self, delay: dict[str, Any]) -> None:
        deadline = time.monotonic() + delay["seconds"]
        while not self.state.stop_event.is_set() and not delay["event"].is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            delay["event"].wait(min(remaining, 0.05))
        if self.state.stop_event.is_set():
            raise _Abort()

    def _abort_connection(self, mode: str) -> None:
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            if mode == "reset":
                # SO_LINGER with a zero timeout: close() sends a TCP RST instead of a FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First range of a ``bytes=`` Range header as inclusive (start, end); None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    first = spec.split(",")[0].strip()
    a, sep, b = first.partition("-")
    if not sep:
        return None
    try:
        if a == "":  # suffix range: the last b bytes
            n = int(b)
            if n <= 0 or size == 0:
                return None
            return max(0, size - n), size - 1
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size or start < 0 or end < start:
        return None
    return start, min(end, size - 1)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def client_env(
    url: str,
    hf_home: str | os.PathLike,
    token: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a subprocess that must reach the hub at ``url`` through huggingface_hub.

    huggingface_hub reads HF_ENDPOINT (and HF_HOME, HF_TOKEN, ...) once, at import time, so a
    subprocess started with this environment uses the test hub everywhere without ``endpoint=``.
    """
    env = dict(os.environ if base is None else base)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        env.pop(key, None)
    env.update(
        {
            "HF_ENDPOINT": url,
            "HF_HOME": str(hf_home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    if token is not None:
        env["HF_TOKEN"] = token
        env.pop("HF_HUB_DISABLE_IMPLICIT_TOKEN")
    return env


class HubServer:
    """The local hub, served from a background thread of this process.

    ``HubServer(root)`` serves ``root/{org}/{name}``. Use as a context manager or call
    ``start()`` / ``stop()``. ``url`` is the value for HF_ENDPOINT / ``endpoint=``.

    Options: ``port`` (0 = any free port), ``require_token`` and ``auth_mode`` ("gated" or
    "private"), ``lfs_redirect`` (True: LFS files redirect to the CDN origin), ``cdn_host``
    (host name of that origin; must differ from ``host``), ``lfs_suffixes`` / ``lfs_threshold``
    (which files are LFS), ``tree_page_size`` (entries per page of the tree listing),
    ``log_file`` (also append every RequestRecord as a JSON line there).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        require_token: str | None = None,
        auth_mode: str = "gated",
        lfs_redirect: bool = True,
        cdn_host: str = "localhost",
        lfs_suffixes: Iterable[str] = DEFAULT_LFS_SUFFIXES,
        lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
        tree_page_size: int = 1000,
        log_file: str | os.PathLike | None = None,
    ) -> None:
        if lfs_redirect and cdn_host == host:
            raise ValueError("cdn_host must differ from host, or huggingface_hub follows the redirect as a hub one")
        self.root = Path(root).resolve()
        self.host = host
        self._port = port
        self._state = _HubState(
            self.root,
            require_token=require_token,
            auth_mode=auth_mode,
            lfs_suffixes=lfs_suffixes,
            lfs_threshold=lfs_threshold,
            log_file=log_file,
        )
        self._options = {"lfs_redirect": lfs_redirect, "cdn_host": cdn_host, "tree_page_size": tree_page_size}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> HubServer:
        if self._httpd is not None:
            return self
        self._state.stop_event.clear()
        self._httpd = _HTTPServer((self.host, self._port), self._state, self._options)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="local-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._state.stop_event.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def env(
        self, hf_home: str | os.PathLike, token: str | None = None, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Environment for a worker subprocess: see :func:`client_env`."""
        return client_env(self.url, hf_home, token=token, base=base)

    # ---- repos -------------------------------------------------------------------------------

    def repo_sha(self, repo_id: str) -> str:
        snap = self._state.snapshot(repo_id)
        if snap is None:
            raise KeyError(f"no repo {repo_id} under {self.root}")
        return snap.commit

    def repo_files(self, repo_id: str) -> dict[str, int]:
        """Path -> size of each file of the repo as served now."""
        snap = self._state.snapshot(repo_id)
        if snap is None:
            raise KeyError(f"no repo {repo_id} under {self.root}")
        return {p: f.size for p, f in sorted(snap.files.items())}

    # ---- faults ------------------------------------------------------------------------------

    @property
    def require_token(self) -> str | None:
        return self._state.require_token

    @require_token.setter
    def require_token(self, token: str | None) -> None:
        with self._state.lock:
            self._state.set_auth(token, mode=self._state._auth_mode, repos=self._state._auth_repos)

    def set_auth(self, token: str | None, mode: str = "gated", repos: Iterable[str] | None = None) -> None:
        """Require ``Authorization: Bearer <token>`` (for ``repos``, or all); None lifts it."""
        self._state.set_auth(token, mode=mode, repos=list(repos) if repos is not None else None)

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        only: str | Iterable[str] | None = None,
        filename: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (and a JSON error body).

        ``only``: None (any request), "api" (/api/...), "head" (HEAD of a file, on /resolve or the
        CDN), "file_get" (GET of a file, on /resolve or the CDN), "resolve" (HEAD or GET on
        /resolve), or a list of these. ``filename`` narrows it to one file. ``retry_after`` adds a
        Retry-After header (huggingface_hub then sleeps that long + 1 s before retrying).
        """
        self._state.fail_next(n, status, only, filename, retry_after)

    def drop_after_bytes(
        self, filename: str, nbytes: int, times: int = 1, *, mode: str = "close", repo_id: str | None = None
    ) -> None:
        """The next ``times`` GETs of ``filename`` (path in the repo) that send its body announce the
        full Content-Length, send ``nbytes`` of the body and then end the connection: ``mode="close"``
        with a FIN (httpx: RemoteProtocolError), ``mode="reset"`` with a RST (httpx: ReadError)."""
        self._state.drop_after_bytes(filename, nbytes, times, mode, repo_id)

    def delay_seconds(
        self,
        filename: str,
        seconds: float,
        *,
        times: int | None = None,
        after_bytes: int = 0,
        repo_id: str | None = None,
        method: str = "GET",
    ) -> None:
        """GETs of ``filename`` send the headers (and ``after_bytes`` of the body), then stall for
        ``seconds`` before the rest; ``times`` limits how many GETs (None: all, until released).
        ``method="HEAD"`` stalls HEADs of the file instead, before any answer is sent."""
        self._state.delay_seconds(filename, seconds, times, after_bytes, repo_id, method)

    def release_delays(self, filename: str | None = None, method: str | None = None) -> None:
        """End the delays (of ``filename``, or all; of ``method``, or both) now: stalled answers go on."""
        self._state.release_delays(filename, method.upper() if method else None)

    def clear_faults(self) -> None:
        """Drop every fail/drop/delay rule (the token requirement stays)."""
        self._state.clear_faults()

    # ---- log ---------------------------------------------------------------------------------

    @property
    def log(self) -> list[RequestRecord]:
        return self._state.records()

    def requests(self, **filters: Any) -> list[RequestRecord]:
        """Recorded requests, filtered by method, kind, filename, repo_id, path_contains, status."""
        return _filter_records(self._state.records(), **filters)

    def downloads(self, filename: str, repo_id: str | None = None) -> list[RequestRecord]:
        """GETs that began sending the body of ``filename`` (200/206), whether or not they completed."""
        return _downloads(self._state.records(), filename, repo_id)

    def clear_log(self) -> None:
        self._state.clear_log()
