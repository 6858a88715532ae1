"""Fetch and decode reference audio for zero-shot cloning: URL, base64 or S3 key.

URLs are fetched with limits: http(s) only, no private/loopback/link-local/metadata
addresses (checked for every redirect hop and for every address a name resolves to)
unless ALLOW_PRIVATE_URLS, a total time limit, and a byte limit enforced while
reading. All failures are ``WorkerError("reference_audio", ...)``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import time
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import numpy as np

from .audio import MODEL_SAMPLE_RATE, AudioDecodeError, decode, resample
from .errors import REFERENCE_AUDIO, WorkerError
from .schema import ReferenceAudio

MAX_REDIRECTS = 3


def _refuse(message: str) -> WorkerError:
    return WorkerError(REFERENCE_AUDIO, message)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _refuse("reference_audio.url must be an http:// or https:// URL with a host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise _refuse(f"cannot resolve the host of reference_audio.url ({parts.hostname})") from None
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(_public(a) for a in addresses):
        raise _refuse(
            "reference_audio.url points to a private, loopback or link-local address; refused "
            "(set ALLOW_PRIVATE_URLS=true on the endpoint to allow it)"
        )


def fetch_url(url: str, max_bytes: int, timeout: float, allow_private: bool) -> bytes:
    import requests

    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private)
        try:
            response = requests.get(
                url,
                stream=True,
                allow_redirects=False,
                timeout=(min(10.0, timeout), timeout),
                headers={"User-Agent": "higgs-runpod-worker"},
            )
        except requests.RequestException as exc:
            raise _refuse(f"could not fetch reference_audio.url ({type(exc).__name__})") from None
        with response:
            if response.is_redirect:
                location = response.headers.get("Location", "")
                url = urljoin(url, location)
                continue
            if response.status_code != 200:
                raise _refuse(f"reference_audio.url answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _refuse(f"reference audio is larger than {max_bytes} bytes (MAX_REFERENCE_BYTES)")
            body = bytearray()
            try:
                for block in response.iter_content(64 * 1024):
                    body += block
                    if len(body) > max_bytes:
                        raise _refuse(f"reference audio is larger than {max_bytes} bytes (MAX_REFERENCE_BYTES)")
                    if time.monotonic() > deadline:
                        raise _refuse(f"reference_audio.url took longer than {timeout:g} s; refused")
            except requests.RequestException as exc:
                raise _refuse(f"reference_audio.url broke off ({type(exc).__name__})") from None
            return bytes(body)
    raise _refuse(f"reference_audio.url redirected more than {MAX_REDIRECTS} times")


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
        waveform, rate = decode(data, max_seconds=max_seconds)
    except AudioDecodeError as exc:
        hint = " (MAX_REFERENCE_SECONDS)" if "long" in str(exc) else ""
        raise _refuse(f"reference audio: {exc}{hint}") from None
    return resample(waveform, rate, MODEL_SAMPLE_RATE)
