"""What the hostile-input tests share: cheap limits, the contract every answer keeps (the
output or ``{"error": "<code>: ..."}``, never a traceback), jobs with reference audio, crafted
audio files, and the name tricks tried on voices and output names.

The tests that use it run the real code path (schema, reference-audio fetch and decode, the tiny
random-weight model on the CPU, moto's S3 server, real HTTP servers on loopback addresses from
``tests/support/hostile_servers.py``), one file for each surface attacked:

- the queue door's job input (fuzzed): tests/handler/test_hostile_job_input.py;
- reference audio (decoding, limits, S3 keys): tests/io/test_hostile_references.py;
- reference URLs (SSRF-style addresses, redirects, DNS, slow and oversized servers):
  tests/io/test_hostile_urls.py;
- voice names and symlinks: tests/io/test_hostile_voice_names.py; output names under the S3
  prefix: tests/io/test_storage.py;
- odd text: tests/text/test_hostile_texts.py.

Generation is kept cheap (MAX_NEW_TOKENS 24 or less, short texts) so that every valid input
costs at most a few dozen decode steps of the tiny model.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct

import numpy as np
import soundfile as sf

import handler as handler_module

CHEAP = {"MAX_TEXT_CHARS": "300", "MAX_NEW_TOKENS": "12"}  # 12 decode steps a chunk
OUTPUT_KEYS = {"format", "content_type", "sample_rate", "duration_s", "num_chunks", "seed", "model", "timings", "rtf"}
URL_TIMEOUT = 2

PRIVATE = "127.0.0.2"


def check_contract(out, codes=("invalid_input: ", "reference_audio: ")) -> None:
    """A result is the contract's output or ``{"error": "<code>: ..."}`` with one of ``codes``."""
    assert isinstance(out, dict), out
    json.dumps(out, allow_nan=False)  # RunPod serialises it
    if "error" in out:
        assert set(out) == {"error"}, out
        message = out["error"]
        assert isinstance(message, str) and message.startswith(codes), message
        assert "Traceback" not in message and 'File "' not in message, message
    else:
        assert OUTPUT_KEYS <= set(out), out
        assert ("audio_base64" in out) != ("s3_uri" in out), out
        if "audio_base64" in out:
            base64.b64decode(out["audio_base64"], validate=True)


def check_audio(out) -> None:
    assert "error" not in out, out
    check_contract(out)
    assert out["duration_s"] > 0, out


def check_refused(out, codes: str | tuple[str, ...] = "reference_audio: ") -> str:
    codes = (codes,) if isinstance(codes, str) else codes
    check_contract(out, codes)
    assert "error" in out, f"expected an error starting with {codes}, got an output with keys {sorted(out)}"
    return out["error"]


def run_handler(worker, job: dict) -> list:
    """Run ``job`` through handler.py's streaming handler (the entry RunPod calls with
    STREAM_JOBS=true, the superset of the plain one); all its items."""

    async def collect() -> list:
        return [item async for item in handler_module.stream_handler(job)]

    previous = handler_module._worker
    handler_module._worker = worker
    try:
        return asyncio.run(collect())
    finally:
        handler_module._worker = previous


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def ref_job(reference: dict, **extra) -> dict:
    return {"input": {"text": "Hi there.", "seed": 3, "reference_audio": reference, **extra}}


def wav_header(channels: int, rate: int, bits: int, data_len: int) -> bytes:
    """A PCM WAV header that claims ``data_len`` bytes of samples."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    riff = (36 + data_len) & 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_len)
    )


def encoded(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def check_handler_items(items: list) -> dict:
    assert items, "the handler yielded nothing"
    *chunks, result = items
    for chunk in chunks:
        assert set(chunk) == {"chunk", "format", "sample_rate", "audio_base64"}, chunk
    check_contract(result)
    return result


def serves_a_normal_job(worker) -> None:
    job = {"id": "after-fuzz", "input": {"text": "Hello there.", "seed": 1}}
    check_audio(check_handler_items(run_handler(worker, job)))


NAME_TRICKS = [
    "..",
    ".",
    "../secret",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..\\secret",
    "secret\x00",
    "belinda\x00.wav",
    "\x00",
    "x" * 129,
    "x" * 10000,
    "ｂｅｌｉｎｄａ",
    "．．",
    "\u2025",
    "..\u2215secret",
    "\u2024\u2024\u2215secret",
    "belinda\u200b",
    "b\u0435linda",
    "\u202ebelinda",
    "belinda\n",
    "belinda\r\n",
    "\nbelinda",
    " belinda",
    "belinda ",
    "\tbelinda",
    ".belinda",
    "-belinda",
    "~",
    "$HOME",
    "%2e%2e%2fsecret",
    "belinda%00",
    "",
    "İ",
    "belinda\u0301",
]
