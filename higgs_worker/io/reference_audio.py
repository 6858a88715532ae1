"""Fetch and decode reference audio for zero-shot cloning: URL, base64 or S3 key.

URLs are fetched by ``safe_http`` (public addresses only unless ALLOW_PRIVATE_URLS, a
total time limit, a byte limit). All failures are ``WorkerError("reference_audio", ...)``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import numpy as np

from ..audio.codecs import AudioDecodeError, decode, resample
from ..contract.errors import REFERENCE_AUDIO, WorkerError
from ..contract.schema import MODEL_SAMPLE_RATE, ReferenceAudio
from .safe_http import FetchRefused, fetch

MIN_REFERENCE_SECONDS = 0.25  # shorter is no voice to clone (and what a lying header leaves)


def _refuse(message: str) -> WorkerError:
    return WorkerError(REFERENCE_AUDIO, message)


def fetch_url(url: str, max_bytes: int, timeout: float, allow_private: bool) -> bytes:
    try:
        return fetch(url, max_bytes, timeout, allow_private)
    except FetchRefused as exc:
        hint = " (MAX_REFERENCE_BYTES)" if "larger than" in str(exc) else ""
        raise _refuse(f"reference_audio.url {exc}{hint}") from None


def decode_base64(data: str, max_bytes: int) -> bytes:
    if data.startswith("data:"):
        data = data.split(",", 1)[-1]
    if len(data) * 3 // 4 > max_bytes + 3:
        raise _refuse(f"reference audio is larger than {max_bytes} bytes (MAX_REFERENCE_BYTES)")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("reference_audio.base64 is not valid base64") from None


def load_reference(
    reference: ReferenceAudio,
    max_bytes: int,
    max_seconds: float,
    timeout: float,
    allow_private: bool,
    fetch_s3: Callable[[str, int], bytes] | None,
) -> tuple[np.ndarray, str | None]:
    """Return mono float32 audio at the model's sample rate and the transcript."""
    if reference.url:
        data = fetch_url(reference.url, max_bytes, timeout, allow_private)
    elif reference.base64:
        data = decode_base64(reference.base64, max_bytes)
    else:
        if fetch_s3 is None:
            raise _refuse("reference_audio.s3_key needs S3_BUCKET set on the endpoint")
        data = fetch_s3(reference.s3_key, max_bytes)
    return decode_reference(data, max_seconds), reference.transcript


def decode_reference(data: bytes, max_seconds: float) -> np.ndarray:
    try:
        waveform, rate = decode(data, max_seconds=max_seconds, min_seconds=MIN_REFERENCE_SECONDS)
    except AudioDecodeError as exc:
        hint = " (MAX_REFERENCE_SECONDS)" if "limit" in str(exc) else ""
        raise _refuse(f"reference audio: {exc}{hint}") from None
    return resample(waveform, rate, MODEL_SAMPLE_RATE)
