"""A finished job's result: its audio (inline or a presigned URL), subtitles, and checks.

A piece's audio is accepted when it decodes, its length agrees with the result's
``duration_s``, and that length is plausible for its text: people speak about 14
characters a second, the worker bounds each chunk at twice that long (slow expressive
reading, ``max_new_tokens`` from the text length), so a piece is refused when it speaks
faster than ``MAX_CHARS_PER_S`` (the model stopped early: words are missing) or slower
than ``MIN_CHARS_PER_S`` plus a few seconds per chunk (not this text's audio). A refused
result is made again with another seed, since the same seed would repeat it. The length
check can be turned off (``--no-length-check``) for a model that does not speak at a
person's rate, such as the tests' tiny random-weight model.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import requests

from .errors import PieceError

MAX_CHARS_PER_S = 40.0
MIN_CHARS_PER_S = 5.0
SLACK_S_PER_CHUNK = 3.0  # the model's start/stop frames and the delay pattern, per chunk
LENGTH_TOLERANCE_S = 0.1
DOWNLOAD_TIMEOUT_S = 120


def result_of(status: dict) -> dict:
    """The job's result dict (with STREAM_JOBS=true the output is a list, result last)."""
    output = status.get("output")
    if isinstance(output, list):
        output = output[-1] if output else None
    if not isinstance(output, dict):
        raise PieceError(f"the job finished without a result (output: {type(output).__name__})")
    if "error" in output:
        raise PieceError(str(output["error"]), retryable=not str(output["error"]).startswith("invalid_input"))
    return output


def audio_bytes(result: dict, session: requests.Session | None = None) -> bytes:
    if result.get("audio_base64"):
        try:
            return base64.b64decode(result["audio_base64"], validate=True)
        except ValueError:
            raise PieceError("the result's audio_base64 is not valid base64") from None
    if result.get("audio_url"):
        return _download(result["audio_url"], "audio", session)
    if result.get("s3_uri"):
        raise PieceError(
            "the result is only an s3:// URI (the endpoint has S3_PRESIGN_SECONDS=0); "
            "set S3_PRESIGN_SECONDS > 0 on the endpoint so the client can fetch it",
            retryable=False,
        )
    raise PieceError("the result has no audio (no audio_base64, audio_url or s3_uri)")


def subtitles_text(result: dict, session: requests.Session | None = None) -> str | None:
    subtitles = result.get("subtitles")
    if not isinstance(subtitles, dict):
        return None
    if subtitles.get("text") is not None:
        return subtitles["text"]
    if subtitles.get("url"):
        return _download(subtitles["url"], "subtitles", session).decode("utf-8")
    return None


def _download(url: str, what: str, session: requests.Session | None) -> bytes:
    getter = session or requests
    for attempt in range(3):
        try:
            with getter.get(url, timeout=DOWNLOAD_TIMEOUT_S, stream=True) as response:
                if response.status_code == 200:
                    return b"".join(response.iter_content(1 << 20))  # 1 MB reads: a third of the CPU of 10 kB
                problem = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            problem = type(exc).__name__
        if attempt == 2:
            # the URL's query is a presigned credential: never put it in a message
            raise PieceError(f"could not download the {what} ({problem}) from {url.split('?')[0]}")
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class CheckedAudio:
    duration_s: float
    sample_rate: int


def check_audio(data: bytes, text: str, result: dict, check_length: bool = True) -> CheckedAudio:
    """Decode ``data``; refuse it when it disagrees with the result or (``check_length``) its text."""
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError for bad data
        raise PieceError(f"the audio does not decode ({str(exc)[:120]})", new_seed=False) from None
    duration = info.frames / info.samplerate if info.samplerate else 0.0
    reported = result.get("duration_s")
    if isinstance(reported, (int, float)) and abs(duration - reported) > LENGTH_TOLERANCE_S:
        raise PieceError(f"the audio lasts {duration:.2f} s but the result says {reported:.2f} s")
    low, high = plausible_seconds(text, int(result.get("num_chunks") or 1))
    if not check_length:
        return CheckedAudio(duration, info.samplerate)
    if duration < low:
        raise PieceError(
            f"{duration:.1f} s of audio for {len(text)} characters is too short (at least {low:.1f} s expected):"
            " the model stopped early",
            new_seed=True,
        )
    if duration > high:
        raise PieceError(
            f"{duration:.1f} s of audio for {len(text)} characters is too long (at most {high:.1f} s expected)",
            new_seed=True,
        )
    return CheckedAudio(duration, info.samplerate)


def plausible_seconds(text: str, chunks: int = 1) -> tuple[float, float]:
    chars = len(" ".join(text.split()))
    return chars / MAX_CHARS_PER_S, chars / MIN_CHARS_PER_S + SLACK_S_PER_CHUNK * max(1, chunks)
