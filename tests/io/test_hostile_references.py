"""Hostile reference audio (``io/reference_audio``): every common shape of a clip works; random
bytes, truncated files, lying headers, NaN samples, oversized clips and bad base64 fail as
``reference_audio: ...`` (or ``invalid_input``), and the worker keeps serving; a clip at an odd
rate works in bounded memory. The tiny real model, real HTTP and moto's S3 server. Shared
helpers: tests/support/hostile_jobs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from tests.conftest import BUCKET, ROOT, wav_bytes
from tests.support.hostile_jobs import (
    CHEAP,
    b64,
    check_audio,
    check_refused,
    encoded,
    ref_job,
    serves_a_normal_job,
    wav_header,
)

TONE = (0.3 * np.sin(2 * np.pi * 220 * np.arange(12000) / 24000)).astype(np.float32)
MUST_WORK = {
    "stereo 44.1 kHz": wav_bytes(0.5, rate=44100, channels=2),
    "8 kHz": wav_bytes(0.5, rate=8000),
    "96 kHz": wav_bytes(0.5, rate=96000),
    "11025 Hz": wav_bytes(0.5, rate=11025),
    "6 channels 48 kHz": wav_bytes(0.5, rate=48000, channels=6),
    "silence": encoded(np.zeros(12000, dtype=np.float32), 24000),
    "flac": wav_bytes(0.5, fmt="FLAC"),
    "ogg vorbis": wav_bytes(0.5, fmt="OGG"),
    "mp3": wav_bytes(0.5, fmt="MP3"),
    "24-bit wav": encoded(TONE, 24000, subtype="PCM_24"),
    "float wav": encoded(TONE, 24000, subtype="FLOAT"),
    "8-bit unsigned wav": encoded(TONE, 24000, subtype="PCM_U8"),
}


@pytest.mark.parametrize("name", list(MUST_WORK))
def test_reference_audio_in_any_common_shape_works(make_worker, name):
    out = make_worker(CHEAP).run(ref_job({"base64": b64(MUST_WORK[name]), "transcript": "A tone."})).as_output()
    check_audio(out)


def test_reference_base64_as_data_url_and_with_line_breaks_works(make_worker):
    worker = make_worker(CHEAP)
    data = b64(wav_bytes(1.0, rate=16000))
    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))  # MIME-style lines
    for value in ("data:audio/wav;base64," + data, wrapped):
        check_audio(worker.run(ref_job({"base64": value})).as_output())


LIMITS = {"MAX_REFERENCE_SECONDS": "2", "MAX_REFERENCE_BYTES": "50000"}
MUST_FAIL = {
    # name: (the base64 field, a word the message must contain or None)
    "random bytes": (b64(np.random.default_rng(7).bytes(4096)), None),
    "a text file named .wav": (b64(b"This is not audio, just a text file called ref.wav.\n" * 40), None),
    "json": (b64(b'{"audio": "none"}'), None),
    "zero bytes": (b64(b"\0" * 4096), None),
    "RIFF and nothing else": (b64(b"RIFF"), None),
    "truncated flac": (b64(wav_bytes(1.0, fmt="FLAC")[:120]), None),
    "wav header claiming 4 GB, no samples": (b64(wav_header(1, 24000, 16, 0xFFFFFFF0)), None),
    "float wav full of NaN": (b64(encoded(np.full(2400, np.nan, dtype=np.float32), 24000, subtype="FLOAT")), None),
    "float wav full of inf": (b64(encoded(np.full(2400, np.inf, dtype=np.float32), 24000, subtype="FLOAT")), None),
    "3 s with MAX_REFERENCE_SECONDS=2": (b64(wav_bytes(3.0, rate=8000)), "MAX_REFERENCE_SECONDS"),
    "60 kB with MAX_REFERENCE_BYTES=50000": (b64(wav_bytes(1.25, rate=24000)), "MAX_REFERENCE_BYTES"),
    "not base64": ("!!! this is not base64 !!!", "base64"),
    "base64 with non-ascii": ("QUJD" + "é" * 8, "base64"),
    "empty data url": ("data:audio/wav;base64,", None),
}


@pytest.mark.parametrize("name", list(MUST_FAIL))
def test_bad_reference_audio_fails_cleanly(make_worker, name):
    value, needle = MUST_FAIL[name]
    worker = make_worker({**CHEAP, **LIMITS})
    message = check_refused(worker.run(ref_job({"base64": value})).as_output())
    if needle:
        assert needle in message, message


def test_the_worker_keeps_serving_after_bad_reference_audio(make_worker):
    worker = make_worker({**CHEAP, **LIMITS})
    for value, _ in MUST_FAIL.values():
        check_refused(worker.run(ref_job({"base64": value})).as_output())
    serves_a_normal_job(worker)


def test_wav_header_claiming_gigabytes_with_a_few_bytes_fails_cleanly(make_worker):
    """A WAV whose header claims 4 GB of samples but that holds 10 bytes (5 samples, far less
    than one 40 ms audio frame): a corrupt file, refused as reference audio. (libsndfile
    clamps the frame count to the bytes present, so this must be refused by the worker.)"""
    data = wav_header(1, 24000, 16, 0xFFFFFFF0) + b"\x10\x00" * 5
    check_refused(make_worker({**CHEAP, **LIMITS}).run(ref_job({"base64": b64(data)})).as_output())


def test_empty_reference_is_refused(make_worker, file_server):
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true"})
    # an empty base64 string is no source at all: refused by the schema
    check_refused(worker.run(ref_job({"base64": ""})).as_output(), ("invalid_input: ", "reference_audio: "))
    folder, url = file_server
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("hello, I am a text file\n" * 100)
    check_refused(worker.run(ref_job({"url": f"{url}/empty.wav"})).as_output())
    check_refused(worker.run(ref_job({"url": f"{url}/text.wav"})).as_output())
    check_refused(worker.run(ref_job({"url": f"{url}/missing.wav"})).as_output())


def test_reference_from_s3_too_large_or_missing_fails_cleanly(make_worker, s3_env, s3_client):
    key = f"higgs-audio/references/{uuid.uuid4().hex}"
    s3_client.put_object(Bucket=BUCKET, Key=f"{key}/big.wav", Body=wav_bytes(2.0))
    s3_client.put_object(Bucket=BUCKET, Key=f"{key}/text.wav", Body=b"not audio\n" * 100)
    worker = make_worker({**s3_env, **CHEAP, **LIMITS})
    assert "MAX_REFERENCE_BYTES" in check_refused(worker.run(ref_job({"s3_key": f"{key}/big.wav"})).as_output())
    check_refused(worker.run(ref_job({"s3_key": f"{key}/text.wav"})).as_output())
    check_refused(worker.run(ref_job({"s3_key": f"{key}/nothing-here.wav"})).as_output())
    for trick in ("../other-bucket/a.wav", f"{key}/../../x.wav", "/etc/passwd", "a\x00b.wav", ".."):
        check_refused(worker.run(ref_job({"s3_key": trick})).as_output(), "invalid_input: ")


ODD_RATES_CHILD = r"""
import base64, io, json, resource, sys
import numpy as np, soundfile as sf, torch
from higgs_worker.contract.config import Settings
from higgs_worker.model.engine import Engine
from higgs_worker.jobs import Worker
from higgs_worker.model.model_store import LocalModel

model_dir, tokenizer_dir, headroom = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = Settings.from_env({"MODEL_PATH": model_dir, "TOKENIZER_PATH": tokenizer_dir, "DEVICE": "cpu",
                              "MAX_NEW_TOKENS": "24", "VOICES_DIR": model_dir})
worker = Worker(settings)
worker.engine = Engine.load(model_dir, tokenizer_dir, "cpu", torch.float32)
worker.model_info = LocalModel(model_dir, settings.model.repo, "local", False)

def clip(rate):
    t = np.arange(rate) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()

def report(case, job_input):
    out = worker.run({"id": "odd", "input": job_input}).as_output()
    print(json.dumps({"case": case, "error": out.get("error"), "sample_rate": out.get("sample_rate"),
                      "duration_s": out.get("duration_s")}), flush=True)

report("warm-up", {"text": "Hi", "seed": 1, "reference_audio": {"base64": clip(16000)}, "sample_rate": 16000})
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, vm + headroom))
for rate in json.loads(sys.argv[4]):
    report(f"reference {rate}", {"text": "Hi", "seed": 1, "reference_audio": {"base64": clip(rate)}})
for rate in json.loads(sys.argv[5]):
    report(f"output {rate}", {"text": "Hi", "seed": 1, "sample_rate": rate, "output_format": "wav"})
"""


def test_odd_sample_rates_work_within_bounded_memory(tiny_models):
    """Reference clips at any rate the decoder accepts (up to 384 kHz) must work, and an
    output ``sample_rate`` the schema accepts (8000..48000) must work or be refused as
    invalid_input, in bounded memory. Run in a child process whose address space is capped
    at its size after a first job plus 2 GiB, so that a resampler that allocates gigabytes
    fails there instead of taking this machine's memory. 12345 Hz is the control (it shares
    a factor of 15 with 24000 and is cheap); 7919, 44101 and 383999 share none."""
    reference_rates = [12345, 7919, 44101, 383999]
    output_rates = [8001, 44101, 47999]
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            ODD_RATES_CHILD,
            str(tiny_models[0]),
            str(tiny_models[1]),
            str(2 * 2**30),
            json.dumps(reference_rates),
            json.dumps(output_rates),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    print(f"odd sample rates: child ran {time.monotonic() - started:.1f} s")
    results = {r["case"]: r for r in (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))}
    expected = ["warm-up"] + [f"reference {r}" for r in reference_rates] + [f"output {r}" for r in output_rates]
    assert list(results) == expected, f"child exited {proc.returncode}; stderr tail:\n{proc.stderr[-3000:]}"
    problems = []
    for case, result in results.items():
        error = result["error"]
        if case.startswith("output") and error and error.startswith("invalid_input: "):
            continue
        if error or not result["duration_s"]:
            problems.append(f"{case}: {error}")
        elif case.startswith("output") and result["sample_rate"] != int(case.split()[1]):
            problems.append(f"{case}: came back at {result['sample_rate']} Hz")
    allocations = sorted({line.strip()[:160] for line in proc.stderr.splitlines() if "allocate" in line})
    assert not problems, "odd sample rates failed within a 2 GiB memory allowance:\n" + "\n".join(
        problems + ["the child's log:"] + allocations
    )
