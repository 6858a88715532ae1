"""One text, one job: ``/run`` + ``/status`` on a queue endpoint, or ``/v1/synthesize`` over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

from .endpoint import HttpEndpoint, QueueEndpoint
from .errors import ClientError, InputError, PieceError
from .results import audio_bytes, result_of, subtitles_text
from .voice import S3Target, read_reference, reference_fields

FORMATS = ("wav", "mp3", "flac", "ogg", "opus", "pcm")


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
    if audio_format not in FORMATS:
        raise InputError(f"format {audio_format!r}: use one of {', '.join(FORMATS)}")
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


def say(job: dict, out_path: str | Path, endpoint: QueueEndpoint | HttpEndpoint, timeout_s: float = 1800) -> dict:
    """Run ``job``, write its audio to ``out_path`` (subtitles beside it); returns the result."""
    if isinstance(endpoint, HttpEndpoint):
        result = endpoint.synthesize(job)
    else:
        result = _queue_result(endpoint, job, timeout_s)
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


def _queue_result(endpoint: QueueEndpoint, job: dict, timeout_s: float) -> dict:
    job_id = endpoint.submit(job)
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(3.0, delay * 1.5)
        status = endpoint.status(job_id)
        state = status.get("status")
        if state == "COMPLETED":
            try:
                return result_of(status)
            except PieceError as exc:
                raise ClientError(f"job {job_id}: {exc}") from None
        if state in ("FAILED", "TIMED_OUT", "CANCELLED"):
            raise ClientError(f"job {job_id} {state}: {status.get('error') or 'no error given'}")
    endpoint.cancel(job_id)
    raise ClientError(f"job {job_id}: no result within {timeout_s:.0f} s; cancelled it")
