"""Pieces fanned out over the endpoint: up to ``parallel`` jobs in flight, each driven to a
checked audio file on disk, failures retried, everything recorded in the manifest.

One thread per piece in flight (they mostly sleep between polls). Each piece:
``/run`` (the job id is saved before anything else happens) -> ``/status`` polls (every
``poll_min_s`` growing by 1.5x to ``poll_max_s``, aimed at the job's expected end once
finished jobs have shown their pace) -> the result's audio is fetched, checked
(:mod:`higgs_tts.results`) and written under OUTDIR/pieces/ -> ``done``. A failed,
timed-out, lost or rejected job costs one attempt; a piece out of attempts (or refused
as ``invalid_input``) stops new submissions, the jobs in flight are still collected,
and the run ends with the list of what failed and why. A piece whose job was submitted
by an earlier run is polled, never sent again (unless RunPod no longer knows the job).

Order: jobs of an earlier run first, then the longest pieces first (longest-processing-
time-first packs the workers best; the short tails of chapters fill the last gaps).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import requests

from .endpoint import QueueEndpoint
from .errors import ClientError, FailedPiece, JobNotFound, PieceError, RunAnswerLost, TransientEndpointError
from .manifest import DONE, FAILED, PENDING, SUBMITTED, Manifest, PieceRecord
from .results import audio_bytes, check_audio, result_of, subtitles_text

FINAL_FAILURES = ("FAILED", "TIMED_OUT", "CANCELLED")
SEED_STEP = 1_000_003  # a rejected result's next attempt uses seed + n * SEED_STEP


@dataclass
class FanOutSettings:
    parallel: int = 16
    max_attempts: int = 3
    job_timeout_s: float = 900.0  # from the first IN_PROGRESS seen; then /cancel and try again
    poll_min_s: float = 0.5
    poll_max_s: float = 3.0
    poll_aimed_max_s: float = 10.0  # the longest wait aimed at a running job's expected end
    retry_pause_s: float = 1.0
    check_length: bool = True  # refuse audio implausibly short or long for its text (results.py)


@dataclass
class RunCounters:
    submitted: int = 0  # /run calls accepted in this run
    retries: int = 0
    resumed: int = 0  # jobs of an earlier run collected in this one
    answers_lost: int = 0  # /run calls whose answer was lost: a job may have run unseen (and billed)


class JobPace:
    """Seconds of a job's execution per character of its text, learned from finished jobs
    (RunPod's ``executionTime``), to time the polls of the jobs still running."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seconds_per_char: float | None = None

    def learn(self, chars: int, execution_s: float) -> None:
        if chars <= 0 or execution_s <= 0:
            return
        rate = execution_s / chars
        with self._lock:
            old = self._seconds_per_char
            self._seconds_per_char = rate if old is None else 0.8 * old + 0.2 * rate

    def expected(self, chars: int) -> float | None:
        with self._lock:
            return None if self._seconds_per_char is None else chars * self._seconds_per_char


class Stopped(Exception):
    """Ctrl-C or a fatal error elsewhere: leave the piece as the manifest has it."""


class FanOut:
    def __init__(
        self,
        endpoint: QueueEndpoint,
        manifest: Manifest,
        outdir: Path,
        texts: dict[int, str],
        job_input_for: Callable[[PieceRecord, int | None], dict],
        settings: FanOutSettings,
        audio_suffix: str,
        want_subtitles: bool,
        on_done: Callable[[PieceRecord], None] | None = None,
    ):
        self.endpoint = endpoint
        self.manifest = manifest
        self.outdir = Path(outdir)
        self.texts = texts
        self.job_input_for = job_input_for
        self.settings = settings
        self.audio_suffix = audio_suffix
        self.want_subtitles = want_subtitles
        self.on_done = on_done or (lambda piece: None)
        self.stop = threading.Event()
        self.counters = RunCounters()
        self.pace = JobPace()
        self._count_lock = threading.Lock()
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(4, settings.parallel))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # -- the run ------------------------------------------------------------------------

    def run(self, pieces: list[PieceRecord]) -> list[FailedPiece]:
        """Drive ``pieces`` until each is done or failed; returns the failed ones.
        Raises what cannot be retried (401, 404, ...) and KeyboardInterrupt, after the
        threads have stopped (the manifest then holds every job id already paid for)."""
        todo = [p for p in pieces if p.state != DONE]
        for piece in todo:
            piece.attempts = 0
            if piece.state == FAILED:
                piece.state = PENDING
        order = [p for p in todo if p.state == SUBMITTED and p.job_id]
        sent = {p.index for p in order}
        order += sorted((p for p in todo if p.index not in sent), key=lambda p: (-p.words, p.index))
        failed: list[FailedPiece] = []
        halted = False
        with ThreadPoolExecutor(max_workers=max(1, self.settings.parallel), thread_name_prefix="piece") as pool:
            running = {}
            try:
                while order or running:
                    while order and not halted and len(running) < self.settings.parallel:
                        piece = order.pop(0)
                        running[pool.submit(self._drive, piece)] = piece
                    if not running:
                        break
                    finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                    for future in finished:
                        piece = running.pop(future)
                        if future.result() == FAILED:
                            halted = True  # no new pieces; the ones in flight are still collected
                            failed.append(self._failure(piece))
            except BaseException:
                self.stop.set()
                raise
        if halted:
            failed += [self._failure(p) for p in order if p.state == FAILED]
        return failed

    def _failure(self, piece: PieceRecord) -> FailedPiece:
        titles = self.manifest.data.get("book", {}).get("chapters", [])
        chapter = titles[piece.chapter]["title"] if 0 <= piece.chapter < len(titles) else "voice sample"
        return FailedPiece(piece.index, chapter, piece.attempts, tuple(piece.errors[-piece.attempts :] or piece.errors))

    # -- one piece ----------------------------------------------------------------------

    def _drive(self, piece: PieceRecord) -> str:
        resumed = piece.state == SUBMITTED and piece.job_id is not None
        while True:
            status = None
            try:
                if self.stop.is_set():
                    raise Stopped
                resumed_job = piece.state == SUBMITTED and piece.job_id is not None
                if not resumed_job:
                    seed = self._seed_for(piece)
                    job_id = self.endpoint.submit(self.job_input_for(piece, seed))
                    self.manifest.submitted(piece, job_id, seed)
                    self._count("submitted")
                elif resumed:
                    self._count("resumed")
                    resumed = False
                status = self._wait(piece, fresh=not resumed_job)
                self._accept(piece, status)
                return DONE
            except Stopped:
                return SUBMITTED if piece.job_id else PENDING
            except JobNotFound:
                outcome, error, retryable = (
                    "expired",
                    f"job {piece.job_id} is unknown to the endpoint (RunPod keeps /run results 30 minutes)",
                    True,
                )
            except PieceError as exc:
                if getattr(exc, "status", None) is not None:  # the job itself failed or timed out
                    status = exc.status
                    outcome = status.get("status") or "error"
                else:  # it completed, but its result could not be used
                    outcome = "rejected" if status is not None else "error"
                error, retryable = str(exc), exc.retryable
                if exc.new_seed:
                    piece.rejected += 1  # the next attempt uses another seed (saved with job_ended below)
            except RunAnswerLost as exc:  # recorded, counted in the summary, then the piece is tried again
                self._count("answers_lost")
                outcome, error, retryable = "run_answer_lost", str(exc), True
            except TransientEndpointError as exc:
                outcome, error, retryable = "unreachable", str(exc), True
            self.manifest.job_ended(piece, outcome, f"job {piece.job_id}: {error}" if piece.job_id else error, status)
            piece.attempts += 1
            out_of_attempts = piece.attempts >= self.settings.max_attempts
            self.manifest.update(piece, state=FAILED if (out_of_attempts or not retryable) else PENDING, job_id=None)
            if piece.state == FAILED:
                return FAILED
            self._count("retries")
            if self.stop.wait(self.settings.retry_pause_s):
                return PENDING

    def _seed_for(self, piece: PieceRecord) -> int | None:
        base = self.manifest.data["settings"].get("seed")
        if base is None:
            return None
        return (base + piece.rejected * SEED_STEP) % 2**32

    def _wait(self, piece: PieceRecord, fresh: bool = True) -> dict:
        """Poll until the job ends; COMPLETED -> its status, else PieceError (with .status).

        Until finished jobs have shown how long a character takes, polls come every
        ``poll_min_s`` growing by 1.5x up to ``poll_max_s``. After that, a job not yet seen
        running is polled every 80 % of its expected length (a job that starts right after a
        poll cannot end sooner), a running one 80 % of the time left to its expected end, and
        past that end every ``poll_min_s`` growing again; waits are at most
        ``poll_aimed_max_s``. So a result is seen soon after it is ready, with a few polls a job.
        ``fresh``: the job was just sent (not a job of an earlier run, which may be done)."""
        settings = self.settings
        chars = len(self.texts[piece.index])
        started = None
        expected = self.pace.expected(chars)
        delay = late = settings.poll_min_s
        if fresh and expected is not None:
            delay = min(settings.poll_aimed_max_s, max(settings.poll_min_s, expected * 0.8))
        while True:
            if self.stop.wait(delay):
                raise Stopped
            try:
                status = self.endpoint.status(piece.job_id)
            except TransientEndpointError:
                status = {}
            state = status.get("status")
            if state == "COMPLETED":
                return status
            if state in FINAL_FAILURES:
                error = str(status.get("error") or state)
                exc = PieceError(f"{state}: {error}", retryable=not error.startswith("invalid_input"))
                exc.status = status
                raise exc
            now = time.monotonic()
            if state == "IN_PROGRESS" and started is None:
                elapsed = status.get("executionTime")  # ms so far, where the endpoint says
                started = now - (elapsed / 1000 if isinstance(elapsed, (int, float)) else 0.0)
            if started is not None and now - started > settings.job_timeout_s:
                self.endpoint.cancel(piece.job_id)
                exc = PieceError(f"no result {settings.job_timeout_s:.0f} s after the job started; cancelled it")
                exc.status = {"status": "TIMED_OUT (client)"}
                raise exc
            expected = self.pace.expected(chars)
            if expected is None:
                delay = min(settings.poll_max_s, delay * 1.5)
            elif started is None:  # queued: once it starts it needs about ``expected``
                delay = min(settings.poll_aimed_max_s, max(settings.poll_min_s, expected * 0.8))
            elif (remaining := started + expected - now) > settings.poll_min_s:
                delay = min(settings.poll_aimed_max_s, remaining * 0.8)  # aim before the expected end
            else:
                delay, late = late, min(settings.poll_max_s, late * 1.5)  # past it: soon, then less often

    def _accept(self, piece: PieceRecord, status: dict) -> None:
        result = result_of(status)
        data = audio_bytes(result, self._session)
        checked = check_audio(data, self.texts[piece.index], result, self.settings.check_length)
        subtitles = subtitles_text(result, self._session) if self.want_subtitles else None
        folder = self.outdir / "pieces"
        name = f"{piece.index:05d}" if piece.index >= 0 else "voice-sample"
        try:
            audio_path = _write_atomic(folder / f"{name}.{self.audio_suffix}", data)
            subtitles_path = (
                _write_atomic(folder / f"{name}.srt", subtitles.encode()) if subtitles is not None else None
            )
        except OSError as exc:  # a full disk, a read-only folder: nothing more can be kept, so stop
            raise ClientError(f"cannot write under {folder}: {exc.strerror or exc}") from None
        digest = hashlib.sha256(data).hexdigest()
        loudness = (result.get("loudness") or {}).get("after_lufs")
        if isinstance(status.get("executionTime"), (int, float)):
            self.pace.learn(len(self.texts[piece.index]), status["executionTime"] / 1000)
        self.manifest.job_ended(piece, "COMPLETED", None, status)
        self.manifest.update(
            piece,
            state=DONE,
            job_id=None,
            file=str(audio_path.relative_to(self.outdir)),
            sha256=digest,
            subtitles=str(subtitles_path.relative_to(self.outdir)) if subtitles_path else None,
            duration_s=round(checked.duration_s, 4),
            sample_rate=checked.sample_rate,
            loudness_lufs=loudness,
            seed=result.get("seed", piece.seed),
        )
        self.on_done(piece)

    def _count(self, name: str) -> None:
        with self._count_lock:
            setattr(self.counters, name, getattr(self.counters, name) + 1)


def _write_atomic(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
