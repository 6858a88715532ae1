"""Reference audio for zero-shot cloning: URL, base64 or S3 key, checked, fetched and decoded.

In two steps, so that a job is checked completely before it waits for anything:

- ``check_reference`` (when the job arrives, no waiting): base64 is decoded (syntax, size);
  a URL's form and the addresses of its host are checked (``safe_http.check_address``);
  an S3 key needs S3_BUCKET;
- ``fetch_reference`` (later, outside the generation slot): the URL is downloaded by
  ``safe_http`` (public peers only unless ALLOW_PRIVATE_URLS, checked again at every hop; a
  total time limit; a byte limit), the S3 object read; ``decode_reference`` decodes.

All failures are ``WorkerError("reference_audio", ...)``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import numpy as np

from ..audio.codecs import AudioDecodeError, decode, probe, resample
from ..contract.errors import AUDIO_TOO_LONG, REFERENCE_AUDIO, TOO_LARGE, WorkerError
from ..contract.schema import MODEL_SAMPLE_RATE, ReferenceAudio
from .safe_http import FetchRefused, check_address, fetch

MIN_REFERENCE_SECONDS = 0.25  # shorter is no voice to clone (and what a lying header leaves)


def _refuse(message: str, kind: str | None = None) -> WorkerError:
    return WorkerError(REFERENCE_AUDIO, message, kind=kind, parameter="reference_audio")


def _url_refused(exc: FetchRefused) -> WorkerError:
    if exc.too_large:
        return _refuse(f"reference_audio.url {exc} (MAX_REFERENCE_BYTES)", TOO_LARGE)
    return _refuse(f"reference_audio.url {exc}")


def fetch_url(url: str, max_bytes: int, timeout: float, allow_private: bool) -> bytes:
    try:
        return fetch(url, max_bytes, timeout, allow_private)
    except FetchRefused as exc:
        raise _url_refused(exc) from None


def decode_base64(data: str, max_bytes: int) -> bytes:
    if data.startswith("data:"):
        data = data.split(",", 1)[-1]
    if len(data) * 3 // 4 > max_bytes + 3:
        raise _refuse(f"reference audio is larger than {max_bytes} bytes (MAX_REFERENCE_BYTES)", TOO_LARGE)
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("reference_audio.base64 is not valid base64") from None


def check_reference(reference: ReferenceAudio, max_bytes: int, allow_private: bool, has_s3: bool) -> bytes | None:
    """Everything about ``reference`` that needs no download; the decoded bytes of base64."""
    if reference.base64:
        return decode_base64(reference.base64, max_bytes)
    if reference.url:
        try:
            check_address(reference.url, allow_private)
        except FetchRefused as exc:
            raise _url_refused(exc) from None
    elif not has_s3:
        raise _refuse("reference_audio.s3_key needs S3_BUCKET set on the endpoint")
    return None


def fetch_reference(
    reference: ReferenceAudio,
    max_bytes: int,
    timeout: float,
    allow_private: bool,
    fetch_s3: Callable[[str, int], bytes] | None,
) -> bytes:
    """The audio bytes of a URL or S3 reference (base64 is decoded by ``check_reference``)."""
    if reference.url:
        return fetch_url(reference.url, max_bytes, timeout, allow_private)
    if reference.base64:
        return decode_base64(reference.base64, max_bytes)
    if fetch_s3 is None:
        raise _refuse("reference_audio.s3_key needs S3_BUCKET set on the endpoint")
    return fetch_s3(reference.s3_key, max_bytes)


def _decode_refused(exc: AudioDecodeError) -> WorkerError:
    """Audio over its seconds keeps its kind (AUDIO_TOO_LONG) and names the setting."""
    hint = " (MAX_REFERENCE_SECONDS)" if exc.kind == AUDIO_TOO_LONG else ""
    return _refuse(f"reference audio: {exc}{hint}", exc.kind)


def decode_reference(data: bytes, max_seconds: float) -> np.ndarray:
    try:
        waveform, rate = decode(data, max_seconds=max_seconds, min_seconds=MIN_REFERENCE_SECONDS)
    except AudioDecodeError as exc:
        raise _decode_refused(exc) from None
    return resample(waveform, rate, MODEL_SAMPLE_RATE)


def probe_reference(data: bytes, max_seconds: float) -> float:
    """The header's length in seconds, checked without decoding (``codecs.probe``)."""
    try:
        return probe(data, max_seconds)
    except AudioDecodeError as exc:
        raise _decode_refused(exc) from None
