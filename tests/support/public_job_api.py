"""RunPod's public job URLs (``https://api.runpod.ai/v2/ENDPOINT_ID/...``) in front of the
runpod SDK's local API (``handler.py --rp_serve_api``), for running documented client code.

The local API serves the same operations as RunPod's public job API and runs the real
handler, but it differs in what a client sees, so code written for RunPod (the guide's curl,
``requests`` and runpod SDK examples) cannot talk to it as it is. This adapter makes up
those differences and nothing else; RunPod's queue itself is a remote service that cannot
run here. What it changes (RunPod's side from docs.runpod.io/serverless/endpoints/
operation-reference and send-requests; the local API's from runpod 1.12.0,
``runpod/serverless/modules/rp_fastapi.py``):

- paths: ``/v2/ENDPOINT_ID/run``, ``/runsync``, ``/status/ID``, ``/stream/ID`` become the
  local ``/run``, ``/runsync``, ``/status/ID``, ``/stream/ID``; another endpoint id is a 404;
- methods: RunPod answers GET (and POST) on ``/status`` and ``/stream``; the local API
  only POST;
- the key: RunPod refuses a request without ``Authorization: [Bearer ]<key>`` (401); the
  local API checks none;
- request options: ``webhook`` and ``policy`` sit beside ``input`` on RunPod; only
  ``input`` is passed on (the local API would call the webhook itself);
- results: the local API runs a ``/run`` job when ``/status`` or ``/stream`` is first asked
  for it and then forgets it; RunPod keeps a finished job's status (30 minutes after
  ``/run``), and ``/stream`` hands out each item once. The adapter keeps every final answer:
  a later ``/status`` gets it again (after ``/stream``: ``output`` = the streamed items, as
  an endpoint with ``return_aggregate_stream`` gives), a later ``/stream`` an empty
  ``stream``.

:meth:`PublicJobApi.drain` runs every ``/run`` job that nobody asked about (an example that
only submits), and :attr:`PublicJobApi.finished` lists each job's final answer, so a test can
check that every job it caused succeeded.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


class PublicJobApi:
    def __init__(self, local_url: str, endpoint_id: str, api_key: str):
        self.local_url = local_url
        self.endpoint_id = endpoint_id
        self.api_key = api_key
        self.submitted: list[str] = []  # /run job ids, in order
        self.finished: dict[str, dict] = {}  # job id -> its final /status answer
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self._streamed: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PublicJobApi:
        threading.Thread(target=self._server.serve_forever, name="public-job-api", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def drain(self) -> None:
        """Ask for the status of every submitted job that has no final answer yet (the local
        API runs it then)."""
        for job_id in list(self.submitted):
            if job_id not in self.finished:
                self.status(job_id)

    # -- the operations -------------------------------------------------------------------

    def _local(self, path: str, body: dict | None = None) -> dict:
        return requests.post(f"{self.local_url}{path}", json=body, timeout=600).json()

    def run(self, body: dict) -> dict:
        answer = self._local("/run", {"input": body["input"]})
        with self._lock:
            self.submitted.append(answer["id"])
        return answer

    def runsync(self, body: dict) -> dict:
        answer = self._local("/runsync", {"input": body["input"]})
        with self._lock:
            self.finished[answer["id"]] = answer
        return answer

    def status(self, job_id: str) -> dict:
        with self._lock:
            if job_id in self.finished:
                return self.finished[job_id]
        answer = self._local(f"/status/{job_id}")
        if answer.get("status") in FINAL:
            with self._lock:
                self.finished[job_id] = answer
        return answer

    def stream(self, job_id: str) -> dict:
        with self._lock:
            if job_id in self._streamed:
                return {"id": job_id, "status": self.finished[job_id]["status"], "stream": []}
        answer = self._local(f"/stream/{job_id}")
        with self._lock:
            self._streamed.add(job_id)
            final = {k: v for k, v in answer.items() if k != "stream"}
            if "stream" in answer:
                final["output"] = [item["output"] for item in answer["stream"]]
            self.finished[job_id] = final
        return answer


def _make_handler(api: PublicJobApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            with api._lock:
                api.requests.append((self.command, self.path, status))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization", "")
            if auth.removeprefix("Bearer ").strip() != api.api_key:
                return self._reply(401, {"error": "Unauthorized"})
            m = re.fullmatch(r"/v2/([^/]+)/(run|runsync|status|stream)(?:/([^/?]+))?(?:\?.*)?", self.path)
            if not m or m.group(1) != api.endpoint_id:
                return self._reply(404, {"error": f"no route {self.command} {self.path}"})
            operation, job_id = m.group(2), m.group(3)
            if operation in ("run", "runsync"):
                if self.command != "POST" or job_id:
                    return self._reply(405, {"error": "POST /run or /runsync"})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._reply(400, {"error": "the body is not JSON"})
                if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
                    return self._reply(400, {"error": "the body needs an 'input' object"})
                return self._reply(200, getattr(api, operation)(body))
            if not job_id:
                return self._reply(404, {"error": f"/{operation} needs a job id"})
            return self._reply(200, getattr(api, operation)(job_id))

        do_GET = do_POST = _handle

    return Handler
