"""A fake RunPod control plane, for running handler.py on the SDK's real worker loop.

RunPod's control plane (the queue behind ``api.runpod.ai`` that hands jobs to workers and
takes their results) is a remote service that cannot run here. This is a small stand-in
for it: a standard-library HTTP server on 127.0.0.1 (threads) that answers the requests
the runpod SDK's production loop makes (``runpod/serverless/worker.py``, ``rp_scale.py``,
``rp_job.py``, ``rp_http.py``, ``rp_ping.py``, ``rp_progress.py``; runpod 1.12.0)::

    GET  /v2/EP/job-take/WORKER?gpu=fake&job_in_progress=0|1   a queued job as JSON {"id", "input"}
         (long-poll: held up to ``hold_seconds`` for one to be queued, then 204 "no job")
    GET  /v2/EP/job-take-batch/WORKER?gpu=fake&batch_size=N&job_in_progress=0|1   up to N queued jobs
         as a JSON list (the SDK asks this way when its concurrency_modifier allows N > 1 jobs)
    GET  /v2/EP/job-stop/WORKER?gpu=fake                        the stop channel (derived by the SDK
         from the job-take URL): {"jobsToStop": [ids]} once ``stop(id)`` was called, else 204
    POST /v2/EP/job-done/WORKER/JOB?gpu=fake&isStream=...       the result ({"output": ...} or
         {"error": ...}) or, with {"status": "IN_PROGRESS"}, a progress update
    POST /v2/EP/job-stream/WORKER/JOB?gpu=fake&isStream=false   one streamed item {"output": item}
    GET  /v2/EP/ping/WORKER?gpu=fake&job_id=a,b&runpod_version=  the heartbeat

POST bodies are JSON text sent with ``Content-Type: application/x-www-form-urlencoded``
(the SDK's ``_transmit``). Every request must carry ``Authorization: <api key>``
(RUNPOD_AI_API_KEY), else 401; other URLs (an unfilled ``$ID``, another worker id) get 404;
both are recorded as "rejected". ``stream_delay`` holds each stream POST for a while (a
slow control plane). Everything is recorded as an :class:`Event`, in
arrival order, with a monotonic timestamp::

    with FakeRunPod() as fake:
        env = {**base_env, **fake.worker_env()}      # start `python handler.py` with it
        job_id = fake.submit({"text": "Hello."})
        result = fake.wait_result(job_id, timeout=60)
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.waiting import wait_until

ENDPOINT = "fake-endpoint"
WORKER = "fake-worker-1"


def sdk_worker_env(url: str, api_key: str, worker_id: str) -> dict[str, str]:
    """The variables RunPod sets in a serverless worker, pointing the SDK's loop at ``url``
    (a fake control plane serving ``/v2/{ENDPOINT}/job-take``, ``job-done``, ``job-stream``, ``ping``)."""
    base = f"{url}/v2/{ENDPOINT}"
    return {
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_AI_API_KEY": api_key,
        "RUNPOD_ENDPOINT_ID": ENDPOINT,
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=fake",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=fake",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=fake",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=fake",
        "RUNPOD_PING_INTERVAL": "1000",  # ms
    }


@dataclass
class Event:
    t: float  # time.monotonic() when the fake handled it
    kind: str  # take, stop, result, progress, stream, ping; rejected (401 / 404: the worker got a URL or key wrong)
    job_id: str | None = None
    body: Any = None  # the parsed JSON body (POSTs) or the job / ids handed out (GETs)
    query: dict[str, str] = field(default_factory=dict)


class FakeRunPod:
    def __init__(self, api_key: str = "fake-runpod-key", hold_seconds: float = 2.0):
        self.api_key = api_key
        self.hold_seconds = hold_seconds
        self.stream_delay = 0.0  # seconds each job-stream POST is held (after it is recorded): a slow plane
        self.events: list[Event] = []
        self._queue: deque[dict] = deque()
        self._stops: list[str] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._closing = False
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-runpod", daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> FakeRunPod:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()  # release held long-polls
        self._server.shutdown()
        self._server.server_close()

    def worker_env(self) -> dict[str, str]:
        """The variables RunPod sets in a serverless worker, pointing at this fake."""
        return sdk_worker_env(self.url, self.api_key, WORKER)

    # -- what a test does -------------------------------------------------------------

    def submit(self, job_input: dict, job_id: str | None = None) -> str:
        """Queue a job (as /run would); the worker takes it on its next job-take poll."""
        job_id = job_id or f"job-{next(self._ids)}"
        with self._cond:
            self._queue.append({"id": job_id, "input": job_input})
            self._cond.notify_all()
        return job_id

    def stop(self, job_id: str) -> None:
        """Signal a cancel / timeout for ``job_id`` through the stop channel."""
        with self._cond:
            self._stops.append(job_id)
            self._cond.notify_all()

    def of(self, kind: str, job_id: str | None = None) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.kind == kind and (job_id is None or e.job_id == job_id)]

    def wait_for(self, predicate, timeout: float, what: str = "condition"):
        """Wait until ``predicate()`` is truthy (re-checked on every event); return its value."""
        return wait_until(
            self._cond,
            predicate,
            timeout,
            lambda: f"fake RunPod: no {what} within {timeout:.0f}s; events: {self.summary()}",
        )

    def wait_result(self, job_id: str, timeout: float) -> Event:
        return self.wait_for(lambda: next(iter(self.of("result", job_id)), None), timeout, f"result for {job_id}")

    def summary(self) -> list[tuple[str, str | None]]:
        return [(e.kind, e.job_id) for e in self.events if e.job_id][-30:]

    # -- the server side --------------------------------------------------------------

    def _record(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def _take(self, query: dict, limit: int = 1) -> list[dict]:
        deadline = time.monotonic() + self.hold_seconds
        with self._cond:
            while not self._queue and not self._closing and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            jobs = []
            while self._queue and not self._closing and len(jobs) < limit:
                job = self._queue.popleft()
                self.events.append(Event(time.monotonic(), "take", job["id"], job, query))
                jobs.append(job)
            self._cond.notify_all()
            return jobs

    def _stop_signals(self, query: dict) -> list[str]:
        deadline = time.monotonic() + self.hold_seconds
        with self._cond:
            while not self._stops and not self._closing and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            ids, self._stops = self._stops, []
            for job_id in ids:
                self.events.append(Event(time.monotonic(), "stop", job_id, ids, query))
            self._cond.notify_all()
            return ids


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a worker that hung up (a cancelled post)
            super().handle_error(request, client_address)


def _make_handler(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp expects

        def log_message(self, *args):  # keep test output clean
            pass

        def _route(self, actions: tuple[str, ...]) -> tuple[str, str | None, dict[str, str]] | None:
            """(action, job id, query) of a known URL sent with the key; else answer 401 / 404 here."""
            split = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(split.query).items()}
            parts = split.path.strip("/").split("/")  # v2, endpoint, action, worker[, job id]
            with_job = len(parts) == 5 and parts[2] in ("job-done", "job-stream")
            known = parts[:2] == ["v2", ENDPOINT] and len(parts) == 4 + with_job and parts[3] == WORKER
            if not known or parts[2] not in actions or "$" in self.path:  # "$": a template not filled in
                return self._reject(404)
            if self.headers.get("Authorization") != fake.api_key:
                return self._reject(401)
            return parts[2], (parts[4] if with_job else None), query

        def _reject(self, status: int) -> None:
            fake._record(Event(time.monotonic(), "rejected", None, (status, self.command, self.path)))
            self._reply(status, {"error": "unauthorized" if status == 401 else f"no route {self.path}"})

        def _reply(self, status: int, payload: Any = None) -> None:
            self.send_response(status)
            if status == 204:
                self.end_headers()
                return
            data = json.dumps(payload if payload is not None else {}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if (route := self._route(("job-take", "job-take-batch", "job-stop", "ping"))) is None:
                return
            action, _, query = route
            if action == "job-take":
                jobs = fake._take(query)
                return self._reply(200, jobs[0]) if jobs else self._reply(204)
            if action == "job-take-batch":
                jobs = fake._take(query, max(1, int(query.get("batch_size", "1"))))
                return self._reply(200, jobs) if jobs else self._reply(204)
            if action == "job-stop":
                ids = fake._stop_signals(query)
                return self._reply(200, {"jobsToStop": ids}) if ids else self._reply(204)
            fake._record(Event(time.monotonic(), "ping", None, query.get("job_id"), query))  # the heartbeat
            return self._reply(200, {})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if (route := self._route(("job-done", "job-stream"))) is None:
                return
            action, job_id, query = route
            payload = json.loads(body)
            if action == "job-stream":
                kind = "stream"
            else:
                kind = "progress" if payload.get("status") == "IN_PROGRESS" else "result"
            fake._record(Event(time.monotonic(), kind, job_id, payload, query))
            if kind == "stream":
                time.sleep(fake.stream_delay)
            return self._reply(200, {})

    return Handler
