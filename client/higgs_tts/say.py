"""One text, one job: ``/run`` + ``/status`` on a queue endpoint, or ``/v1/synthesize`` over HTTP."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .endpoint import HttpEndpoint, QueueEndpoint
from .errors import ClientError, InputError, PieceError
from .formats import OUTPUT_FORMATS
from .results import audio_bytes, result_of, subtitles_text
from .voice import S3Target, read_reference, reference_fields


def job_input(
    text: str,
    audio_format: str,
    voice: str | None = None,
    reference_audio: str | None = None,
    reference_text: str | None = None,
    scene: str | None = None,
    seed: int | None = None,
    subtitles: str | None = None,
    loudness_lufs: float | None = None,
    job_options: dict | None = None,
    s3_bucket: str | None = None,
) -> dict:
    if not text.strip():
        raise InputError("the text is empty")
    if audio_format not in OUTPUT_FORMATS:
        raise InputError(f"format {audio_format!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    if voice and reference_audio:
        raise InputError("give --voice or --reference-audio, not both")
    job = {**(job_options or {}), "text": text, "output_format": audio_format}
    if voice:
        job["voice"] = voice
    if reference_audio:
        data = read_reference(reference_audio)
        suffix = Path(reference_audio).suffix.lower() or ".wav"
        job["reference_audio"], _ = reference_fields(data, suffix, reference_text, S3Target.from_env(s3_bucket))
    if scene is not None:
        job["scene_description"] = scene
    if seed is not None:
        job["seed"] = seed
    if subtitles:
        job["subtitles"] = subtitles
    if loudness_lufs is not None:
        job["loudness_lufs"] = loudness_lufs
    return job


class SayProgress:
    """What ``say`` shows on stderr while it waits: the job id at once, then its state, the time
    since ``/run`` and (while queued) how many jobs the endpoint's queue holds (RunPod gives no
    queue position; ``/health`` gives the count). A terminal gets one line rewritten in place,
    anything else a line per change of state."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = None

    def submitted(self, job_id: str, endpoint: QueueEndpoint) -> None:
        if not self.quiet:
            print(f"job {job_id} sent to {endpoint.describe()}", file=self.stream, flush=True)

    def update(self, state: str, elapsed_s: float, queued: int | None = None) -> None:
        if self.quiet:
            return
        line = f"{state.lower().replace('_', ' ')}, {elapsed_s:.0f} s"
        if queued is not None:
            line += f" ({queued} job(s) queued on the endpoint)"
        if self.tty:
            print(f"\r{line:<70}", end="", file=self.stream, flush=True)
        elif (state, queued) != self._last:
            print(line, file=self.stream, flush=True)
        self._last = (state, queued)

    def done(self) -> None:
        if self.tty and not self.quiet and self._last is not None:
            print(file=self.stream, flush=True)


class JobInterrupted(Exception):
    """Ctrl-C while ``say`` waited for ``job_id`` (still running on the endpoint)."""

    def __init__(self, job_id: str):
        super().__init__(job_id)
        self.job_id = job_id


def say(
    job: dict,
    out_path: str | Path,
    endpoint: QueueEndpoint | HttpEndpoint,
    timeout_s: float = 1800,
    progress: SayProgress | None = None,
) -> dict:
    """Run ``job``, write its audio to ``out_path`` (subtitles beside it); returns the result.

    On a queue endpoint, Ctrl-C while waiting raises :class:`JobInterrupted` (the job runs on)."""
    if isinstance(endpoint, HttpEndpoint):
        result = endpoint.synthesize(job)
    else:
        result = _queue_result(endpoint, job, timeout_s, progress or SayProgress(quiet=True))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        out_path.write_bytes(audio_bytes(result))
        text = subtitles_text(result)
    except PieceError as exc:
        raise ClientError(str(exc)) from None
    if text is not None:
        out_path.with_suffix(f".{result['subtitles']['format']}").write_text(text, encoding="utf-8")
    return result


HEALTH_EVERY_S = 10.0  # while queued, /health (the queue's length) at most this often


def _queue_result(endpoint: QueueEndpoint, job: dict, timeout_s: float, progress: SayProgress) -> dict:
    job_id = endpoint.submit(job)
    progress.submitted(job_id, endpoint)
    started = time.monotonic()
    deadline = started + timeout_s
    delay = 0.5
    queued = None
    health_at = 0.0
    try:
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(3.0, delay * 1.5)
            status = endpoint.status(job_id)
            state = status.get("status") or "UNKNOWN"
            if state == "COMPLETED":
                progress.done()
                try:
                    return result_of(status)
                except PieceError as exc:
                    raise ClientError(f"job {job_id}: {exc}") from None
            if state in ("FAILED", "TIMED_OUT", "CANCELLED"):
                progress.done()
                raise ClientError(f"job {job_id} {state}: {status.get('error') or 'no error given'}")
            if state == "IN_QUEUE" and time.monotonic() - health_at >= HEALTH_EVERY_S:
                health_at = time.monotonic()
                try:
                    queued = (endpoint.health().get("jobs") or {}).get("inQueue")
                except ClientError:
                    queued = None
            elif state != "IN_QUEUE":
                queued = None
            progress.update(state, time.monotonic() - started, queued)
    except KeyboardInterrupt:
        progress.done()
        raise JobInterrupted(job_id) from None
    progress.done()
    endpoint.cancel(job_id)
    raise ClientError(f"job {job_id}: no result within {timeout_s:.0f} s; cancelled it")
