"""A RunPod queue endpoint look-alike: the public API a client calls, in front of several workers.

RunPod's queue (``api.runpod.ai/v2/ENDPOINT``) cannot run here. This stand-in speaks both of
its sides on 127.0.0.1, so the client and real workers meet the way they do on RunPod:

- the public API (``Authorization: Bearer <api key>``; else 401, another endpoint id 404)::

    POST /v2/EP/run                  {"input": {...}} -> {"id", "status": "IN_QUEUE"}
    GET  /v2/EP/status/JOB           {"id", "status", "delayTime", "executionTime", "workerId",
                                      "output" | "error"}; 404 for an unknown (or expired) job
    POST /v2/EP/cancel/JOB           -> {"id", "status": "CANCELLED"} (a running job's worker is told
                                      through its stop channel)
    GET  /v2/EP/health               {"jobs": {...}, "workers": {...}}

- the control plane the runpod SDK's worker loop pulls from (as ``tests/support/fake_runpod.py``,
  but for any number of workers, each with its own id; ``Authorization: <worker key>``)::

    GET job-take/W, job-take-batch/W, job-stop/W, ping/W; POST job-done/W/JOB, job-stream/W/JOB

Jobs go first-in first-out to whichever worker asks. A worker that has not been heard from
(heartbeat, job-take or stop poll) for ``lost_after_s`` is lost: its jobs become FAILED
with ``worker lost`` (RunPod's own handling of a vanished worker is not documented; a
client must survive either a failure or a retry by RunPod). ``throttle_runs(n)`` answers the
next n ``/run`` calls with 429 and ``Retry-After: 1``; ``expire(job)`` forgets a job as
RunPod does 30 minutes after /run results are ready.

:class:`SimulatedWorkers` are threads in this process that take jobs like workers and
answer after the time a real worker would take (``overhead_s + audio seconds x rtf``),
with a real FLAC of the right length, segments, SRT subtitles and the loudness report:
taking ``MAX_CONCURRENCY + IO_JOBS`` jobs each, batched, with RunPod's queue-delay scaler
modelled: the benchmark's endpoint, and the tests of what only scale or timing shows.
Run as ``python -m tests.support.fake_endpoint --simulated 32 --rtf 0.1`` it prints its URL
and serves until stdin closes.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
import json
import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_runpod import ENDPOINT, sdk_worker_env
from tests.support.waiting import wait_until

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


@dataclass
class Job:
    id: str
    input: dict
    created: float
    status: str = "IN_QUEUE"
    worker: str | None = None
    started: float | None = None
    finished: float | None = None
    output: Any = None
    error: str | None = None

    def public(self) -> dict:
        now = time.monotonic()
        body = {"id": self.id, "status": self.status}
        body["delayTime"] = int(((self.started or now) - self.created) * 1000)
        if self.started is not None:
            body["executionTime"] = int(((self.finished or now) - self.started) * 1000)
            body["workerId"] = self.worker
        if self.status == "COMPLETED" and self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class Counts:
    runs: int = 0  # /run accepted
    throttled: int = 0  # /run answered 429
    status: int = 0
    cancels: int = 0
    rejected: list = field(default_factory=list)  # (status, method, path)


class FakeEndpoint:
    def __init__(
        self,
        api_key: str = "client-key",
        worker_key: str = "worker-key",
        hold_seconds: float = 1.0,
        lost_after_s: float = 6.0,
    ):
        self.api_key = api_key
        self.worker_key = worker_key
        self.hold_seconds = hold_seconds
        self.lost_after_s = lost_after_s
        self.jobs: dict[str, Job] = {}
        self.counts = Counts()
        self._queue: deque[str] = deque()
        self._stops: dict[str, list[str]] = {}
        self._seen: dict[str, float] = {}  # worker id -> last request
        self._ids = itertools.count(1)
        self._throttle = 0
        self._lose_answers = 0
        self._cond = threading.Condition()
        self._closing = False
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="fake-endpoint", daemon=True),
            threading.Thread(target=self._watch_workers, name="fake-endpoint-watch", daemon=True),
        ]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.base_url = f"{self.url}/v2"  # RUNPOD_ENDPOINT_BASE_URL for a client

    def __enter__(self) -> FakeEndpoint:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def client_env(self) -> dict[str, str]:
        return {
            "RUNPOD_API_KEY": self.api_key,
            "RUNPOD_ENDPOINT_ID": ENDPOINT,
            "RUNPOD_ENDPOINT_BASE_URL": self.base_url,
        }

    def worker_env(self, worker_id: str) -> dict[str, str]:
        """The variables RunPod sets in a serverless worker, pointing at this endpoint."""
        return sdk_worker_env(self.url, self.worker_key, worker_id)

    # -- what a test does ---------------------------------------------------------------

    def lose_run_answers(self, count: int) -> None:
        """The next ``count`` ``/run`` calls queue their job, then the connection closes with no
        answer (as a read timeout or a cut connection leaves a client): the job runs unseen."""
        with self._cond:
            self._lose_answers = count

    def throttle_runs(self, count: int) -> None:
        with self._cond:
            self._throttle = count

    def expire(self, job_id: str) -> None:
        with self._cond:
            self.jobs.pop(job_id, None)

    def wait_for(self, predicate, timeout: float, what: str = "condition"):
        return wait_until(self._cond, predicate, timeout, lambda: f"fake endpoint: no {what} within {timeout:.0f}s")

    def states(self) -> dict[str, int]:
        with self._cond:
            counts: dict[str, int] = {}
            for job in self.jobs.values():
                counts[job.status] = counts.get(job.status, 0) + 1
            return counts

    # -- the public API -------------------------------------------------------------------

    def _run(self, body: dict) -> tuple[int, dict]:
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return 400, {"error": 'send {"input": {...}}'}
        with self._cond:
            if self._throttle > 0:
                self._throttle -= 1
                self.counts.throttled += 1
                return 429, {"error": "Too Many Requests"}
            job = Job(f"job-{next(self._ids)}", body["input"], time.monotonic())
            self.jobs[job.id] = job
            self._queue.append(job.id)
            self.counts.runs += 1
            self._cond.notify_all()
            return 200, {"id": job.id, "status": job.status}

    def _status(self, job_id: str) -> tuple[int, dict]:
        with self._cond:
            self.counts.status += 1
            job = self.jobs.get(job_id)
            return (404, {"error": "job not found"}) if job is None else (200, job.public())

    def _cancel(self, job_id: str) -> tuple[int, dict]:
        with self._cond:
            self.counts.cancels += 1
            job = self.jobs.get(job_id)
            if job is None:
                return 404, {"error": "job not found"}
            if job.status not in FINAL:
                if job.worker:
                    self._stops.setdefault(job.worker, []).append(job_id)
                job.status, job.finished = "CANCELLED", time.monotonic()
                self._cond.notify_all()
            return 200, {"id": job.id, "status": job.status}

    def _health(self) -> dict:
        with self._cond:
            now = time.monotonic()
            alive = [w for w, seen in self._seen.items() if now - seen < self.lost_after_s]
            running = sum(1 for job in self.jobs.values() if job.status == "IN_PROGRESS")
            return {
                "jobs": {"inQueue": len(self._queue), "inProgress": running},
                "workers": {"running": len(alive), "idle": max(0, len(alive) - running)},
            }

    # -- the control plane ----------------------------------------------------------------

    def take(self, worker: str, limit: int = 1, hold: float | None = None) -> list[Job]:
        deadline = time.monotonic() + (self.hold_seconds if hold is None else hold)
        with self._cond:
            self._seen[worker] = time.monotonic()
            while not self._queue and not self._closing and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            taken = []
            while self._queue and not self._closing and len(taken) < limit:
                job = self.jobs.get(self._queue.popleft())
                if job is None or job.status != "IN_QUEUE":
                    continue  # cancelled or expired while queued
                job.status, job.worker, job.started = "IN_PROGRESS", worker, time.monotonic()
                taken.append(job)
            self._seen[worker] = time.monotonic()
            return taken

    def done(self, worker: str, job_id: str, payload: dict) -> None:
        with self._cond:
            self._seen[worker] = time.monotonic()
            job = self.jobs.get(job_id)
            if job is None or job.status in FINAL or job.worker != worker:
                return  # cancelled, lost or expired meanwhile: RunPod ignores a late result
            if payload.get("status") == "IN_PROGRESS":
                return  # a progress update
            job.finished = time.monotonic()
            if payload.get("error"):
                job.status, job.error = "FAILED", str(payload["error"])
            else:
                job.status, job.output = "COMPLETED", payload.get("output")
            self._cond.notify_all()

    def _stop_signals(self, worker: str) -> list[str]:
        deadline = time.monotonic() + self.hold_seconds
        with self._cond:
            self._seen[worker] = time.monotonic()
            while not self._stops.get(worker) and not self._closing and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            self._seen[worker] = time.monotonic()
            return self._stops.pop(worker, [])

    def _seen_now(self, worker: str) -> None:
        with self._cond:
            self._seen[worker] = time.monotonic()

    def _watch_workers(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
                now = time.monotonic()
                for job in self.jobs.values():
                    if job.status == "IN_PROGRESS" and now - self._seen.get(job.worker, now) > self.lost_after_s:
                        job.status, job.finished = "FAILED", now
                        job.error = f"worker lost: {job.worker} stopped answering while running the job"
                        self._cond.notify_all()
                self._cond.wait(0.5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(fake: FakeEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _reply(self, status: int, payload: Any = None, headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if status == 204:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(payload if payload is not None else {}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _reject(self, status: int) -> None:
            with fake._cond:
                fake.counts.rejected.append((status, self.command, self.path))
            self._reply(status, {"error": "Unauthorized" if status == 401 else f"no route {urlsplit(self.path).path}"})

        def _dispatch(self, body: bytes) -> None:
            split = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(split.query).items()}
            parts = split.path.strip("/").split("/")
            if len(parts) < 3 or parts[0] != "v2" or parts[1] != ENDPOINT:
                return self._reject(404)
            action = parts[2]
            if action in ("run", "status", "cancel", "health", "runsync"):
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._reject(401)
                return self._public(action, parts[3:], body)
            if self.headers.get("Authorization") != fake.worker_key:
                return self._reject(401)
            return self._worker(action, parts[3:], query, body)

        def _public(self, action: str, rest: list[str], body: bytes) -> None:
            if action == "run" and self.command == "POST" and not rest:
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    return self._reply(400, {"error": "invalid JSON"})
                status, answer = fake._run(payload)
                with fake._cond:
                    lose = status == 200 and fake._lose_answers > 0
                    fake._lose_answers -= 1 if lose else 0
                if lose:
                    self.close_connection = True
                    return None
                return self._reply(status, answer, {"Retry-After": "1"} if status == 429 else None)
            if action == "status" and len(rest) == 1:
                return self._reply(*fake._status(rest[0]))
            if action == "cancel" and len(rest) == 1 and self.command == "POST":
                return self._reply(*fake._cancel(rest[0]))
            if action == "health" and not rest:
                return self._reply(200, fake._health())
            return self._reject(404)

        def _worker(self, action: str, rest: list[str], query: dict, body: bytes) -> None:
            if not rest:
                return self._reject(404)
            worker = rest[0]
            if action == "job-take":
                jobs = fake.take(worker)
                return self._reply(200, {"id": jobs[0].id, "input": jobs[0].input}) if jobs else self._reply(204)
            if action == "job-take-batch":
                jobs = fake.take(worker, max(1, int(query.get("batch_size", "1"))))
                return self._reply(200, [{"id": j.id, "input": j.input} for j in jobs]) if jobs else self._reply(204)
            if action == "job-stop":
                ids = fake._stop_signals(worker)
                return self._reply(200, {"jobsToStop": ids}) if ids else self._reply(204)
            if action == "ping":
                fake._seen_now(worker)
                return self._reply(200, {})
            if action in ("job-done", "job-stream") and len(rest) == 2:
                if action == "job-done":
                    fake.done(worker, rest[1], json.loads(body or b"{}"))
                else:
                    fake._seen_now(worker)
                return self._reply(200, {})
            return self._reject(404)

        def do_GET(self):
            self._dispatch(b"")

        def do_POST(self):
            self._dispatch(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    return Handler


# -- simulated workers ---------------------------------------------------------------------

CHARS_PER_SECOND = 14.0  # speech, as the worker's own max_new_tokens bound assumes


def speech_seconds(text: str) -> float:
    return max(1.0, len(" ".join(text.split())) / CHARS_PER_SECOND)


def simulated_result(job_input: dict, seconds: float, rate: int = 24000) -> dict:
    """What the worker returns for ``job_input`` (inline delivery), with ``seconds`` of FLAC audio:
    a quiet tone in noise, so that it encodes and decodes like speech does, not like silence."""

    frames = int(round(seconds * rate))
    text = " ".join(str(job_input.get("text", "")).split())
    result = {
        "audio_base64": _flac_base64(frames, rate),
        "format": job_input.get("output_format", "wav"),
        "content_type": "audio/flac",
        "sample_rate": rate,
        "duration_s": round(frames / rate, 3),
        "num_chunks": 1,
        "seed": job_input.get("seed") or 0,
        "model": {"repo": "simulated", "revision": "local"},
        "timings": {"total_s": seconds},
        "segments": [{"text": text, "speaker": None, "start_s": 0.0, "end_s": frames / rate}],
    }
    if job_input.get("subtitles"):
        result["subtitles"] = {
            "format": "srt",
            "content_type": "application/x-subrip",
            "text": _srt(text, frames / rate),
        }
    if job_input.get("loudness_lufs") is not None:
        target = float(job_input["loudness_lufs"])
        result["loudness"] = {"target_lufs": target, "before_lufs": -30.0, "after_lufs": target}
    return result


@functools.lru_cache(maxsize=64)
def _flac_base64(frames: int, rate: int) -> str:
    """The FLAC of ``frames`` samples, made once per length (a simulated endpoint of many workers
    would otherwise spend its CPU encoding, and answer late)."""
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.resize(_signal(rate), frames), rate, format="FLAC", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


@functools.cache
def _signal(rate: int, seconds: int = 60):
    import numpy as np

    t = np.arange(seconds * rate) / rate
    noise = np.random.default_rng(0).standard_normal(len(t))
    return (0.1 * np.sin(2 * np.pi * 180 * t) + 0.02 * noise).astype(np.float32)


def _srt(text: str, seconds: float, per_cue: float = 5.0) -> str:
    from datetime import timedelta

    import srt

    words = text.split()
    cues = max(1, int(seconds // per_cue))
    size = max(1, -(-len(words) // cues))
    groups = [words[i : i + size] for i in range(0, len(words), size)] or [[text]]
    step = seconds / len(groups)
    return srt.compose(
        srt.Subtitle(i + 1, timedelta(seconds=i * step), timedelta(seconds=(i + 1) * step), " ".join(group))
        for i, group in enumerate(groups)
    )


class SimulatedWorkers:
    """Workers in threads that take jobs the way the real worker does, and an optional model of
    RunPod's queue-delay scaler that adds workers while jobs wait.

    **A worker** (the rule of ``higgs_worker/admission.py``) takes up to ``slots +
    io_jobs`` jobs at once (``MAX_CONCURRENCY + IO_JOBS``; ``io_jobs`` None: the worker's own
    default, :func:`higgs_worker.admission.io_jobs_for`); ``slots`` of them generate together,
    the rest wait at the worker, first come first served. A job's generation needs
    ``speech_seconds(text) * rtf`` seconds alone; with ``c`` jobs generating, each advances at
    ``1 / (1 + batch_cost * (c - 1))`` of that pace (a batched decode step costs more than one
    job's, less than ``c`` of them: ``batch_cost`` 0 is free batching, 1 none). Then
    ``overhead_s`` (encoding, delivery), outside the batch. It answers with
    :func:`simulated_result`.

    **The scaler** (``queue_delay_s`` set): RunPod's ``QUEUE_DELAY`` scaling adds workers when
    requests wait in the endpoint's queue longer than the scaler value (docs.runpod.io,
    endpoint settings). Modelled: once a second (``scaler_tick_s``), while the oldest job in the look-alike's queue
    has waited more than ``queue_delay_s`` and fewer than ``max_workers`` exist, one worker is
    added; it takes jobs ``start_s`` later (a start with the image cached). Jobs a worker has
    taken are not in RunPod's queue, so the scaler never sees them. No scale-down (a book is
    shorter than ``idleTimeout`` apart).

    ``behave(job_input)`` (optional) may change one job: ``{"error": "..."}`` ends it FAILED,
    ``{"audio_s": x}`` gives x seconds of audio, ``{"run_s": x}`` makes its generation take x
    seconds alone."""

    TICK_S = 0.02

    def __init__(
        self,
        fake: FakeEndpoint,
        count: int,
        rtf: float,
        overhead_s: float = 0.3,
        slots: int = 1,
        io_jobs: int | None = 0,
        batch_cost: float = 0.0,
        max_workers: int | None = None,
        queue_delay_s: float | None = None,
        start_s: float = 0.0,
        scaler_tick_s: float = 1.0,
    ):
        from higgs_worker.admission import io_jobs_for

        self.fake = fake
        self.rtf = rtf
        self.overhead_s = overhead_s
        self.slots = max(1, slots)
        self.io_jobs = io_jobs_for(io_jobs, self.slots)
        self.batch_cost = batch_cost
        self.max_workers = max(count, max_workers or count)
        self.queue_delay_s = queue_delay_s
        self.start_s = start_s
        self.scaler_tick_s = scaler_tick_s
        self.behave = lambda job_input: None
        self.busy_s = 0.0
        self.started_at: list[float] = []  # when each worker began taking jobs (monotonic)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for _ in range(count):
            self._add(0.0)

    @property
    def takes(self) -> int:
        """Jobs one worker takes at once: ``MAX_CONCURRENCY + IO_JOBS``."""
        return self.slots + self.io_jobs

    def __enter__(self) -> SimulatedWorkers:
        for thread in list(self._threads):
            thread.start()
        if self.queue_delay_s is not None and self.max_workers > len(self._threads):
            threading.Thread(target=self._scaler, name="sim-scaler", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def job_seconds(self, job_input: dict) -> float:
        """One job alone on a worker."""
        return self.overhead_s + speech_seconds(str(job_input.get("text", ""))) * self.rtf

    def batched_job_seconds(self, job_input: dict) -> float:
        """One job in a full batch of ``slots``."""
        stretch = 1 + self.batch_cost * (self.slots - 1)
        return self.overhead_s + speech_seconds(str(job_input.get("text", ""))) * self.rtf * stretch

    def _add(self, delay_s: float) -> threading.Thread:
        name = f"sim-{len(self._threads)}"
        thread = threading.Thread(target=self._loop, args=(name, delay_s), name=name, daemon=True)
        self._threads.append(thread)
        return thread

    def _scaler(self) -> None:
        while not self._stop.wait(self.scaler_tick_s):
            with self.fake._cond:
                now = time.monotonic()
                waiting = [self.fake.jobs[j] for j in self.fake._queue if j in self.fake.jobs]
                oldest = min((j.created for j in waiting if j.status == "IN_QUEUE"), default=now)
            if now - oldest > self.queue_delay_s and len(self._threads) < self.max_workers:
                self._add(self.start_s).start()

    def _loop(self, worker: str, delay_s: float) -> None:
        if self._stop.wait(delay_s):
            return
        with self._lock:
            self.started_at.append(time.monotonic())
        held: list[dict] = []  # taken jobs: {"job", "work", "payload", "phase", "left"}
        while not self._stop.is_set():
            room = self.takes - len(held)
            if room > 0:
                for job in self.fake.take(worker, limit=room, hold=0 if held else 0.2):
                    held.append(self._taken(job))
            else:
                self.fake._seen_now(worker)  # a heartbeat
            if not held:
                continue
            time.sleep(self.TICK_S)
            generating = [h for h in held if h["phase"] == "generate"][: self.slots]
            pace = self.TICK_S / (1 + self.batch_cost * (len(generating) - 1)) if generating else 0.0
            for h in generating:
                h["left"] -= pace
                if h["left"] <= 0:
                    h["phase"], h["left"] = "deliver", self.overhead_s
            for h in held:
                if h["phase"] == "deliver" and h not in generating:
                    h["left"] -= self.TICK_S
            for h in [h for h in held if h["phase"] == "deliver" and h["left"] <= 0]:
                held.remove(h)
                with self._lock:
                    self.busy_s += time.monotonic() - h["started"]
                self.fake.done(worker, h["job"].id, h["payload"])

    def _taken(self, job: Job) -> dict:
        change = self.behave(job.input) or {}
        text = str(job.input.get("text", ""))
        work = change.get("run_s", speech_seconds(text) * self.rtf)
        audio_s = change.get("audio_s", math.ceil(speech_seconds(text)))  # whole seconds: one FLAC per length
        payload = {"error": change["error"]} if "error" in change else {"output": simulated_result(job.input, audio_s)}
        return {"job": job, "payload": payload, "phase": "generate", "left": work, "started": time.monotonic()}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="a RunPod look-alike with simulated workers")
    parser.add_argument("--simulated", type=int, default=32)
    parser.add_argument("--rtf", type=float, default=0.1)
    parser.add_argument("--overhead", type=float, default=0.3)
    parser.add_argument("--slots", type=int, default=1, help="MAX_CONCURRENCY of each worker")
    parser.add_argument("--io-jobs", type=int, default=0, help="IO_JOBS (-1: the worker's default)")
    parser.add_argument("--batch-cost", type=float, default=0.0)
    parser.add_argument("--max-workers", type=int, help="the scaler's limit (workers.max)")
    parser.add_argument("--queue-delay", type=float, help="the queue-delay scaler's value in seconds")
    parser.add_argument("--start-s", type=float, default=0.0, help="seconds a worker the scaler adds takes to start")
    parser.add_argument("--scaler-tick", type=float, default=1.0, help="how often the scaler looks (s)")
    args = parser.parse_args()
    # lost_after_s: the simulated workers are threads of this process; a busy machine must not
    # make the look-alike give up on them
    with (
        FakeEndpoint(lost_after_s=120) as fake,
        SimulatedWorkers(
            fake,
            args.simulated,
            args.rtf,
            args.overhead,
            slots=args.slots,
            io_jobs=None if args.io_jobs < 0 else args.io_jobs,
            batch_cost=args.batch_cost,
            max_workers=args.max_workers,
            queue_delay_s=args.queue_delay,
            start_s=args.start_s,
            scaler_tick_s=args.scaler_tick,
        ) as workers,
    ):
        print(json.dumps({**fake.client_env(), "url": fake.url}), flush=True)
        sys.stdin.read()  # serve until the parent closes stdin
        print(
            json.dumps(
                {
                    "busy_s": workers.busy_s,
                    "runs": fake.counts.runs,
                    "status": fake.counts.status,
                    "workers_started": len(workers.started_at),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
