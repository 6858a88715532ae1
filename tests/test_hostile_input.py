"""Hostile input against the real worker: fuzzed job input, bad reference audio, SSRF-style
URLs, slow and oversized servers, path tricks in names, and odd text.

Everything runs the real code path (schema, reference-audio fetch and decode, the tiny
random-weight model on the CPU, moto's S3 server, real HTTP servers on loopback addresses
from ``tests/support/hostile_servers.py``). Where a real part cannot run in a test, the one
stand-in is named in the test's docstring:

- a *public* web server: with ALLOW_PRIVATE_URLS unset nothing local may be fetched, so the
  loopback address 127.0.0.3 (and only it) is treated as public by patching
  ``safe_http.is_public`` (fixture ``public_standin``);
- a DNS server that answers as an attacker wants: ``socket.getaddrinfo`` answers for names
  under ``.test`` (a test cannot make its own DNS server this machine's resolver).

Generation is kept cheap (MAX_NEW_TOKENS 24 or less, short texts) so that every valid input
costs at most a few dozen decode steps of the tiny model.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import struct
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handler as handler_module
from higgs_worker.contract.schema import KNOWN_FIELDS, OPUS_RATES, SAMPLE_RATES
from tests.conftest import BUCKET, PUBLIC_STANDIN, ROOT, wav_bytes
from tests.support.hostile_servers import (
    HostileServer,
    endless_body,
    gzip_bomb,
    redirect,
    route,
    serve,
    stall,
    trickle_body,
    trickle_headers,
)

FUZZ_ENV = {"MAX_TEXT_CHARS": "300", "MAX_NEW_TOKENS": "24"}  # any valid fuzzed job: at most 24 steps a chunk
CHEAP = {"MAX_TEXT_CHARS": "300", "MAX_NEW_TOKENS": "12"}  # the other tests: 12 steps a chunk
OUTPUT_KEYS = {"format", "content_type", "sample_rate", "duration_s", "num_chunks", "seed", "model", "timings", "rtf"}
URL_TIMEOUT = 2

PRIVATE = "127.0.0.2"


# -- helpers ------------------------------------------------------------------------------


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


# -- 1. fuzzing the job input ---------------------------------------------------------------

JSON_LEAVES = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=16,
)

# Output rates the tiny model can be resampled to cheaply. Any other rate in 8000..48000 is
# left out of the fuzzing on purpose: a rate that shares no large factor with 24000 makes
# the resampler allocate gigabytes (see test_odd_sample_rates_work_within_bounded_memory,
# which checks that in a separate, memory-capped process).
SAFE_RATES = sorted(SAMPLE_RATES | OPUS_RATES)


def _no_odd_rate(value) -> bool:
    if isinstance(value, bool):
        return True
    try:
        rate = float(value)
    except (TypeError, ValueError, OverflowError):
        return True
    return not (8000 <= rate <= 48000) or rate in SAFE_RATES


def _not_a_url(value) -> bool:
    return not (isinstance(value, str) and value.strip().lower().startswith(("http", "//")))


# URLs in fuzzed input only ever name private, loopback or malformed hosts, so that no
# example can reach out to the internet (every one must be refused before connecting).
HOSTS = [
    "127.0.0.1",
    "10.0.0.1",
    "169.254.169.254",
    "[::1]",
    "localhost",
    "0.0.0.0",
    "[::ffff:127.0.0.1]",
    "192.168.0.1",
    "2130706433",
    "[::1",
    "[fe80::1%25lo]",
    "127.0.0.1\\@10.0.0.1",
    "",
]
PORTS = ["", ":0", ":1", ":80", ":65535", ":65536", ":99999", ":-1", ":abc", ":"]
URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
    st.sampled_from(["http", "https", "HTTP", "file", "ftp", "gopher"]),
    st.sampled_from(HOSTS),
    st.sampled_from(PORTS),
    st.text(max_size=12),
)
TINY_WAV = wav_bytes(0.3, rate=8000)
BASE64S = st.text(max_size=24) | st.sampled_from(
    [b64(TINY_WAV), "AAAA", "!!!", "", "data:,", "data:audio/wav;base64,", b64(b"not audio at all"), b64(b"RIFF" * 9)]
)
SAYABLE = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and any(c.isprintable() for c in t))
VALID_TEXTS = SAYABLE | st.sampled_from(["Hello there.", "[SPEAKER0] Hi. [SPEAKER1] Hello.", "😀 你好 مرحبا"])
VALID_RATES = st.sampled_from(
    [(f, r) for f in ("wav", "flac", "ogg", "pcm") for r in (8000, 16000, 24000, 44100)]
    + [("mp3", 22050), ("mp3", 24000), ("opus", 24000), ("opus", 48000)]
)
# Values the schema accepts: a near-valid job is a valid job with 0-2 fields replaced by hostile values.
VALID_FIELDS = {
    "voice": st.sampled_from(["belinda", "broom"]),
    "reference_audio": st.fixed_dictionaries(
        {"base64": st.sampled_from([b64(TINY_WAV), "data:audio/wav;base64," + b64(TINY_WAV)])},
        optional={"transcript": st.text(max_size=40)},
    ),
    "speakers": st.just({"SPEAKER0": {"voice": "belinda"}, "SPEAKER1": {"description": "deep"}}),
    "scene_description": st.text(max_size=40),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0.01, 1),
    "top_k": st.integers(0, 1024),
    "max_new_tokens": st.integers(1, 24),
    "seed": st.integers(0, 2**32 - 1),
    "ras_win_len": st.integers(0, 20),
    "ras_win_max_num_repeat": st.integers(0, 5),
    "chunk_method": st.sampled_from(["auto", "none", "word", "speaker", " WORD "]),
    "chunk_max_words": st.integers(1, 30),
    "delivery": st.sampled_from(["auto", "base64"]),
    "output_name": st.sampled_from(["out", "take-2.v1", "x" * 128]),
    "stream": st.booleans(),
}
HOSTILE_REFERENCE = st.fixed_dictionaries(
    {},
    optional={
        "url": URLS | JSON.filter(_not_a_url),
        "base64": BASE64S | JSON,
        "s3_key": st.sampled_from(["refs/a.wav", "../a.wav", "/etc/passwd"]) | JSON,
        "transcript": st.text(max_size=40) | JSON,
        "extra": JSON,
    },
)
VOICES = st.sampled_from(["nobody", "../belinda", "belinda\n", "ｂｅｌｉｎｄａ", "a" * 129, "\x00", "", "a/b"])
HOSTILE_FIELDS = {
    "text": JSON | st.sampled_from(["", "   ", "\x00\x07", "[SPEAKER0", "[SPEAKER0][SPEAKER1]", "x" * 301]),
    "voice": VOICES | JSON,
    "reference_audio": st.one_of(st.fixed_dictionaries({"url": URLS}), HOSTILE_REFERENCE, JSON),
    "speakers": st.dictionaries(
        st.sampled_from(["SPEAKER0", "SPEAKER1", "SPEAKER99", "SPEAKER100", "narrator"]) | st.text(max_size=8),
        st.fixed_dictionaries(
            {},
            optional={
                "voice": VOICES | JSON,
                "reference_audio": HOSTILE_REFERENCE | JSON,
                "description": st.text(max_size=30) | JSON,
            },
        )
        | JSON,
        max_size=3,
    )
    | JSON,
    "scene_description": JSON | st.just("x" * 2001),
    "temperature": st.floats(allow_nan=True) | JSON,
    "top_p": st.floats(allow_nan=True) | JSON,
    "top_k": st.integers() | JSON,
    "max_new_tokens": st.integers(-2, 10**6) | JSON,
    "seed": st.integers() | JSON,
    "ras_win_len": st.integers() | JSON,
    "chunk_method": st.sampled_from(["sentence", ""]) | JSON,
    "chunk_max_words": st.integers() | JSON,
    "output_format": st.sampled_from(["aac", "WAV", " mp3 ", ""]) | JSON,
    "sample_rate": (st.sampled_from([7999, 48001, 0, -1, 10**12]) | JSON).filter(_no_odd_rate),
    "delivery": st.sampled_from(["s3", "email"]) | JSON,
    "output_name": st.sampled_from(["../out", "a/b", "x" * 200, ".", "a\x00b"]) | JSON,
    "stream": JSON,
    "transcript": VALID_TEXTS,  # an alias next to text: refused
    "ref_audio": st.sampled_from(["belinda", "nobody"]),
    "unknown field": JSON,
}


@st.composite
def near_valid_inputs(draw) -> dict:
    job = {"text": draw(VALID_TEXTS)}
    for name in draw(st.lists(st.sampled_from(sorted(VALID_FIELDS)), max_size=4, unique=True)):
        job[name] = draw(VALID_FIELDS[name])
    if draw(st.booleans()):
        job["output_format"], job["sample_rate"] = draw(VALID_RATES)
    for name in draw(st.lists(st.sampled_from(sorted(HOSTILE_FIELDS)), max_size=2, unique=True)):
        job[name if name != "unknown field" else draw(st.text(max_size=10))] = draw(HOSTILE_FIELDS[name])
    return job


FUZZ = settings(  # random locally (new examples each run), the same examples in CI (CI=true)
    max_examples=150,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


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


@pytest.fixture
def fuzz_worker(make_worker):
    return make_worker({**FUZZ_ENV, "REFERENCE_URL_TIMEOUT_SECONDS": str(URL_TIMEOUT), "MAX_REFERENCE_SECONDS": "5"})


def test_fuzz_any_json_input_gets_an_output_or_a_contract_error(fuzz_worker):
    @FUZZ
    @given(
        job_input=JSON | st.dictionaries(st.sampled_from(KNOWN_FIELDS), JSON, max_size=5),
        job_id=st.none() | st.text(max_size=20),
    )
    def one_job(job_input, job_id):
        check_handler_items(run_handler(fuzz_worker, {"id": job_id, "input": job_input}))

    one_job()
    serves_a_normal_job(fuzz_worker)


def test_fuzz_near_valid_input_gets_an_output_or_a_contract_error(fuzz_worker):
    @settings(FUZZ, max_examples=150)
    @given(job_input=near_valid_inputs())
    def one_job(job_input):
        check_handler_items(run_handler(fuzz_worker, {"id": "fuzz", "input": job_input}))

    one_job()
    serves_a_normal_job(fuzz_worker)


@pytest.mark.parametrize("job", [{}, {"input": None}, {"id": None, "input": []}, {"input": "text"}, {"input": 7}])
def test_jobs_without_an_input_object_are_invalid_input(fuzz_worker, job):
    check_refused(check_handler_items(run_handler(fuzz_worker, job)), "invalid_input: ")
    serves_a_normal_job(fuzz_worker)


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-45])
def test_tiny_positive_temperatures_work_or_are_refused(make_worker, temperature):
    """The schema accepts any temperature in [0, 2]; a tiny positive one must not make the
    sampler divide its way to inf/NaN probabilities."""
    out = make_worker(CHEAP).run({"input": {"text": "Hello there.", "seed": 1, "temperature": temperature}}).as_output()
    check_contract(out, ("invalid_input: ",))


# -- 2. reference audio -----------------------------------------------------------------------

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


# -- 3. reference URLs ------------------------------------------------------------------------


@pytest.fixture
def private_servers():
    """Servers that would hand out a valid clip, on 127.0.0.1 and 127.0.0.2; each counts requests."""
    data = wav_bytes(1.0)
    with HostileServer(serve(data)) as first, HostileServer(serve(data), host=PRIVATE) as second:
        yield first, second


def _fill(template: str, first: HostileServer, second: HostileServer) -> str:
    return template.format(p1=first.port, p2=second.port)


PRIVATE_URLS = [
    "http://127.0.0.1:{p1}/ref.wav",
    "https://127.0.0.1:{p1}/ref.wav",
    "http://127.0.0.2:{p2}/ref.wav",
    "http://127.255.255.254/ref.wav",
    "http://localhost:{p1}/ref.wav",
    "http://LocalHost:{p1}/ref.wav",
    "http://[::1]:{p1}/ref.wav",
    "http://[::ffff:127.0.0.1]:{p1}/ref.wav",
    "http://[::ffff:7f00:2]:{p2}/ref.wav",
    "http://user:password@127.0.0.1:{p1}/ref.wav",
    "http://10.0.0.1/ref.wav",
    "http://10.255.255.254:8080/ref.wav",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://192.168.1.1/ref.wav",
    "http://172.16.0.1/ref.wav",
    "http://100.64.0.1/ref.wav",
    "http://0.0.0.0:{p1}/ref.wav",
    "http://[::]:{p1}/ref.wav",
]
# Other spellings of loopback addresses: refused, though maybe as "cannot resolve".
TRICKY_URLS = [
    "http://127.1:{p1}/ref.wav",
    "http://2130706433:{p1}/ref.wav",
    "http://0x7f000001:{p1}/ref.wav",
    "http://0177.0.0.1:{p1}/ref.wav",
    "http://127.0.0.1.:{p1}/ref.wav",
    "http://localhost.:{p1}/ref.wav",
    "http://①②⑦.0.0.1:{p1}/ref.wav",
    "http://127。0。0。1:{p1}/ref.wav",
    "http://[0:0:0:0:0:ffff:127.0.0.2]:{p2}/ref.wav",
    "http://[fe80::1%25lo]:{p1}/ref.wav",
    "http://1.1.1.1\t@127.0.0.1:{p1}/ref.wav",
    "http://1.1.1.1 &@127.0.0.2:{p2}# @1.1.1.1/ref.wav",
    "http://1.1.1.1:80@127.0.0.1:{p1}/ref.wav",
    "http://127.0.0.1:{p1}#@1.1.1.1/ref.wav",
    "http://127.0.0.1:{p1}?@1.1.1.1/ref.wav",
]


@pytest.mark.parametrize("template", PRIVATE_URLS)
def test_private_addresses_are_refused_without_a_request(make_worker, private_servers, template):
    first, second = private_servers
    out = make_worker(CHEAP).run(ref_job({"url": _fill(template, first, second)})).as_output()
    message = check_refused(out)
    expected = "user information" if "@" in template else "ALLOW_PRIVATE_URLS"  # userinfo is refused outright
    assert expected in message, message
    assert first.requests == [] and second.requests == []


@pytest.mark.parametrize("template", TRICKY_URLS)
def test_other_spellings_of_private_addresses_are_refused_without_a_request(make_worker, private_servers, template):
    first, second = private_servers
    check_refused(make_worker(CHEAP).run(ref_job({"url": _fill(template, first, second)})).as_output())
    assert first.requests == [] and second.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/ref.wav",
        "gopher://127.0.0.1:25/_HELO",
        "dict://127.0.0.1:11211/stat",
        "data:audio/wav;base64,AAAA",
        "javascript:alert(1)",
        "//127.0.0.1/ref.wav",
        "/etc/passwd",
        "ref.wav",
        "http:/127.0.0.1/ref.wav",
        "http:127.0.0.1/ref.wav",
        "http://",
        "http:///ref.wav",
    ],
)
def test_non_http_urls_are_refused(make_worker, url):
    check_refused(make_worker(CHEAP).run(ref_job({"url": url})).as_output(), ("invalid_input: ", "reference_audio: "))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[::1]]:80/",
        "http://127.0.0.1:99999/ref.wav",
        "http://[::1]:65536/ref.wav",
        "http://10.0.0.1:-1/ref.wav",
        "http://10.0.0.1:1e3/ref.wav",
        "http://10.0.0.1:port/ref.wav",
        "http://[not-an-address]/ref.wav",
        "http://\x00/ref.wav",
        "http://" + "a" * 300 + "/ref.wav",
        "http://a..b/ref.wav",
    ],
)
def test_malformed_urls_are_refused_as_contract_errors(make_worker, url):
    """Malformed URLs fail as ``invalid_input`` or ``reference_audio``, not as an unexpected error."""
    worker = make_worker(CHEAP)
    check_refused(worker.run(ref_job({"url": url})).as_output(), ("invalid_input: ", "reference_audio: "))


def test_public_standin_serves_a_clip(make_worker, public_standin):
    """The control for the stand-in tests: a "public" URL and a redirect between "public" URLs work."""
    data = wav_bytes(1.0)
    behaviour = route({"/ref.wav": serve(data), "/moved.wav": redirect("/ref.wav", 301)})
    with HostileServer(behaviour, host=PUBLIC_STANDIN) as public:
        worker = make_worker(CHEAP)
        check_audio(worker.run(ref_job({"url": f"{public.url}/ref.wav"})).as_output())
        check_audio(worker.run(ref_job({"url": f"{public.url}/moved.wav"})).as_output())
    assert public.requests == ["GET /ref.wav HTTP/1.1", "GET /moved.wav HTTP/1.1", "GET /ref.wav HTTP/1.1"]


REDIRECT_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.1/ref.wav",
    "http://127.0.0.2:{port}/ref.wav",
    "file:///etc/passwd",
    "http://localhost:{port}/ref.wav",
    "//127.0.0.2:{port}/ref.wav",
    "http://[::ffff:127.0.0.2]:{port}/ref.wav",
    "gopher://127.0.0.2:{port}/_x",
    "ftp://127.0.0.2/ref.wav",
]


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_redirects_to_private_addresses_or_other_schemes_are_refused(make_worker, public_standin, target):
    """A "public" URL (stand-in: 127.0.0.3) that redirects to a private address or another scheme."""
    with HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private:
        location = target.format(port=private.port)
        with HostileServer(redirect(location, 302), host=PUBLIC_STANDIN) as public:
            out = make_worker(CHEAP).run(ref_job({"url": f"{public.url}/ref.wav"})).as_output()
    check_refused(out)
    assert public.requests == ["GET /ref.wav HTTP/1.1"], "the stand-in was not asked: the test proves nothing"
    assert private.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_checked(make_worker, public_standin, status):
    with HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private:
        hops = route({"/a": redirect("/b", status), "/b": redirect(f"{private.url}/ref.wav", status)})
        with HostileServer(hops, host=PUBLIC_STANDIN) as public:
            out = make_worker(CHEAP).run(ref_job({"url": f"{public.url}/a"})).as_output()
    assert "ALLOW_PRIVATE_URLS" in check_refused(out)
    assert len(public.requests) == 2 and private.requests == []


def test_redirect_loops_are_cut_off(make_worker, public_standin):
    with HostileServer(redirect("/again", 302), host=PUBLIC_STANDIN) as public:
        started = time.monotonic()
        out = make_worker(CHEAP).run(ref_job({"url": f"{public.url}/again"})).as_output()
        elapsed = time.monotonic() - started
    assert "redirected" in check_refused(out)
    assert len(public.requests) <= 5, public.requests
    print(f"redirect loop refused after {len(public.requests)} requests, {elapsed:.2f} s")


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.2:{private}\\@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}\\\\@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}\t@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}%5C@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.2:{private}/\\@127.0.0.3:{public}/ref.wav",
        "http://127.0.0.3:{public}\\@127.0.0.2:{private}/ref.wav",
    ],
)
def test_url_parser_confusion_cannot_reach_a_private_server(make_worker, public_standin, template):
    """URLs that Python's ``urlsplit`` (used by the address check) and urllib3 (used to connect)
    may read as different hosts: the private server must never see a request. The public
    address is the stand-in 127.0.0.3, which serves a clip, so a fetch from it is fine."""
    with (
        HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private,
        HostileServer(serve(wav_bytes(1.0)), host=PUBLIC_STANDIN) as public,
    ):
        url = template.format(private=private.port, public=public.port)
        out = make_worker(CHEAP).run(ref_job({"url": url})).as_output()
    check_contract(out)
    assert private.requests == [], f"{url!r} reached the private server: {out.get('error', 'fetched')}"


@pytest.mark.parametrize(
    "answers",
    [
        [["169.254.169.254"]],
        [["127.0.0.2"]],
        [["10.0.0.1"]],
        [["127.0.0.3", "127.0.0.2"]],  # one "public" answer and one private: refused
    ],
)
def test_names_that_resolve_to_private_addresses_are_refused(make_worker, public_standin, fake_dns, answers):
    table, lookups = fake_dns
    with HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private:
        table["internal.test"] = [list(a) for a in answers]
        out = make_worker(CHEAP).run(ref_job({"url": f"http://internal.test:{private.port}/ref.wav"})).as_output()
    assert "ALLOW_PRIVATE_URLS" in check_refused(out)
    assert lookups and private.requests == []


def test_dns_rebinding_cannot_reach_a_private_server(make_worker, public_standin, fake_dns):
    """DNS rebinding: ``rebind.test`` resolves to the "public" stand-in 127.0.0.3 on the first
    lookup and to the private 127.0.0.2 on every later one. Both servers listen on the same
    port. The worker may fetch from the public one or refuse; the private one must see nothing."""
    table, lookups = fake_dns
    with (
        HostileServer(serve(wav_bytes(1.0)), host=PRIVATE) as private,
        HostileServer(serve(wav_bytes(1.0)), host=PUBLIC_STANDIN, port=private.port) as public,
    ):
        table["rebind.test"] = [[PUBLIC_STANDIN], [PRIVATE]]
        out = make_worker(CHEAP).run(ref_job({"url": f"http://rebind.test:{private.port}/ref.wav"})).as_output()
    check_contract(out)
    print(f"rebinding: {len(lookups)} lookups; public saw {public.requests}, private saw {private.requests}")
    assert private.requests == [], "the second lookup's private address was used for the connection"


SLOW = {
    "stalls after the request": lambda: stall(),
    "trickles a body with Content-Length": lambda: trickle_body("length", give_up_after=9),
    "trickles a body without a length": lambda: trickle_body("close", give_up_after=9),
    "trickles a chunked body": lambda: trickle_body("chunked", give_up_after=9),
    "trickles header lines": lambda: trickle_headers(give_up_after=9),
}


@pytest.mark.parametrize("name", list(SLOW))
def test_slow_servers_are_cut_off_by_the_url_timeout(make_worker, name):
    """REFERENCE_URL_TIMEOUT_SECONDS is the total time to fetch a URL. (ALLOW_PRIVATE_URLS is set
    so that a local server can be reached at all.) The slow servers give up after 9 s."""
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true", "REFERENCE_URL_TIMEOUT_SECONDS": str(URL_TIMEOUT)})
    with HostileServer(SLOW[name]()) as server:
        started = time.monotonic()
        out = worker.run(ref_job({"url": f"{server.url}/ref.wav"})).as_output()
        elapsed = time.monotonic() - started
    print(f"server that {name}: job ended after {elapsed:.1f} s (timeout {URL_TIMEOUT} s): {out.get('error')}")
    check_refused(out)
    assert elapsed < URL_TIMEOUT + 5, f"the {URL_TIMEOUT} s URL timeout did not hold: {elapsed:.1f} s"


@pytest.mark.parametrize("framing", ["declared", "chunked", "close"])
def test_oversized_bodies_are_cut_off_at_the_limit(make_worker, framing):
    """An endless body: with a declared Content-Length of 10 GB, chunked, or close-delimited.
    The server's send buffer is small, so what it managed to send is close to what the
    worker read (plus the worker's receive buffer, at most a few MB on Linux)."""
    limit = 50000
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true", "MAX_REFERENCE_BYTES": str(limit)})
    with HostileServer(endless_body(framing), sndbuf=32768) as server:
        started = time.monotonic()
        out = worker.run(ref_job({"url": f"{server.url}/ref.wav"})).as_output()
        elapsed = time.monotonic() - started
        hung_up = server.peer_closed.wait(10)
        sent = server.sent
    print(f"endless {framing} body: refused after {elapsed:.2f} s; the server sent {sent} body bytes")
    assert "MAX_REFERENCE_BYTES" in check_refused(out)
    assert hung_up, "the worker kept the connection open"
    assert sent <= limit + 64 * 1024 + 8 * 2**20, sent
    assert elapsed < 10


def test_gzip_bomb_is_cut_off_at_the_limit(make_worker):
    """The worker asks for identity encoding and never inflates a body: a gzip bomb is refused
    as too large or as unreadable audio, never expanded to its 50 MB."""
    worker = make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true", "MAX_REFERENCE_BYTES": "50000"})
    with HostileServer(gzip_bomb(50 * 10**6)) as server:
        out = worker.run(ref_job({"url": f"{server.url}/ref.wav"})).as_output()
    message = check_refused(out)
    assert "MAX_REFERENCE_BYTES" in message or "not a readable audio file" in message


@pytest.mark.parametrize("status", [204, 206, 404, 500, 503])
def test_non_200_answers_are_refused(make_worker, status):
    def answer(conn):
        conn.head(f"{status} Whatever", {"Content-Length": "4"})
        conn.send(b"RIFF", body=True)

    with HostileServer(answer) as server:
        out = (
            make_worker({**CHEAP, "ALLOW_PRIVATE_URLS": "true"})
            .run(ref_job({"url": f"{server.url}/ref.wav"}))
            .as_output()
        )
    assert str(status) in check_refused(out)


# -- 4. names -----------------------------------------------------------------------------------

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


@pytest.fixture
def secret_outside(tmp_path, voices_dir):
    """A valid clip and a transcript outside VOICES_DIR, and symlinks to them inside it."""
    (tmp_path / "secret.wav").write_bytes(wav_bytes(1.0, rate=16000))
    (tmp_path / "secret.txt").write_text("The secret password is swordfish.")
    (voices_dir / "evil.wav").symlink_to(tmp_path / "secret.wav")
    (voices_dir / "evil2.flac").symlink_to("../secret.wav")
    return tmp_path


@pytest.mark.parametrize("name", NAME_TRICKS, ids=[ascii(n)[:40] for n in NAME_TRICKS])
def test_voice_names_cannot_leave_the_voice_folder(make_worker, secret_outside, name):
    """tmp_path/secret.wav (next to VOICES_DIR) is a valid clip: a name that reached it would make
    the job succeed. Every trick is invalid_input, as a voice and as a speaker's voice."""
    worker = make_worker(CHEAP)
    check_refused(worker.run({"input": {"text": "Hi", "voice": name}}).as_output(), "invalid_input: ")
    speakers = {"SPEAKER0": {"voice": name}, "SPEAKER1": {"description": "calm"}}
    check_refused(
        worker.run({"input": {"text": "[SPEAKER0] Hi [SPEAKER1] Yo", "speakers": speakers}}).as_output(),
        "invalid_input: ",
    )


def test_symlinks_out_of_the_voice_folder_are_not_used(make_worker, secret_outside, voices_dir):
    worker = make_worker(CHEAP)
    for name in ("evil", "evil2"):
        check_refused(worker.run({"input": {"text": "Hi", "voice": name}}).as_output(), "invalid_input: ")


def test_a_symlinked_transcript_outside_the_voice_folder_is_not_read(make_worker, secret_outside, voices_dir):
    """The transcript is part of the prompt, so it changes the (seeded) audio: the output with a
    transcript symlinked from outside must equal the output with no transcript at all."""
    worker = make_worker(CHEAP)
    job = {"input": {"text": "Hello there.", "voice": "belinda", "seed": 5}}
    (voices_dir / "belinda.txt").unlink()
    without = worker.run(job).as_output()
    (voices_dir / "belinda.txt").symlink_to(secret_outside / "secret.txt")
    linked = worker.run(job).as_output()
    (voices_dir / "belinda.txt").unlink()
    (voices_dir / "belinda.txt").write_text((secret_outside / "secret.txt").read_text())
    inside = worker.run(job).as_output()
    for out in (without, linked, inside):
        check_audio(out)
    assert inside["audio_base64"] != without["audio_base64"], "control: a transcript should change the audio"
    assert linked["audio_base64"] == without["audio_base64"], "the transcript outside VOICES_DIR was read"


ACCEPTED_OUTPUT_NAMES = ["x" * 128, "CON", "a.", "report.v2", "A-b_c.9", "take.wav"]


def test_output_names_cannot_write_outside_the_prefix(make_worker, s3_env, s3_client):
    """Every trick is refused as invalid_input up front (before any generation), and nothing
    is ever written outside S3_PREFIX; plain names at the edges of the rules are stored."""
    prefix = f"hostile-{uuid.uuid4().hex[:8]}/"

    def all_keys() -> set[str]:
        pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    before = all_keys()
    worker = make_worker({**s3_env, **CHEAP, "S3_PREFIX": prefix, "S3_PRESIGN_SECONDS": "0", "S3_ATTEMPTS": "1"})
    not_refused = []
    for name in NAME_TRICKS + ["../x.wav", "a/../../x", "%2F..%2Fx", "\u2215x"]:
        out = worker.run({"id": "job-name", "input": {"text": "Hi", "output_name": name, "delivery": "s3"}}).as_output()
        if not out.get("error", "").startswith("invalid_input: "):
            not_refused.append(f"{name!r} -> {out.get('error') or out.get('s3_uri')!r}")
    for name in ACCEPTED_OUTPUT_NAMES:
        out = worker.run({"id": "job-name", "input": {"text": "Hi", "output_name": name, "delivery": "s3"}}).as_output()
        check_audio(out)
        assert out["s3_uri"] == f"s3://{BUCKET}/{prefix}{name if name.endswith('.wav') else name + '.wav'}"
    new = all_keys() - before
    outside = [key for key in new if not key.startswith(prefix)]
    assert not outside, f"written outside {prefix!r}: {outside}"
    for key in new:
        rest = key[len(prefix) :]
        assert "/" not in rest and rest not in (".", ".."), repr(key)
    assert not not_refused, "output names not refused as invalid_input:\n" + "\n".join(not_refused)
    assert all(key.isprintable() for key in new), sorted(new)


# -- 5. text ------------------------------------------------------------------------------------

REFUSED_TEXTS = {
    "empty": "",
    "spaces": "   ",
    "whitespace mix": "\n\t\r \x0b\x0c",
    "unicode spaces": "\u00a0\u2003\u3000\u2028",
    "control characters only": "\x00\x01\x07\x1b\x7f",
    "line breaks only": "\r\n" * 50,
    "a lone surrogate": "\ud800",
}
ACCEPTED_TEXTS = {
    "control characters inside": "Hello\x00 wor\x07ld\x1b[31m!\x7f",
    "a lone surrogate inside": "Hi \ud83d there.",
    "only a speaker tag": "[SPEAKER0]",
    "two empty turns": "[SPEAKER0][SPEAKER1]",
    "unbalanced tags": "[SPEAKER0 Hello there. [SPEAKER1]",
    "speaker 1 and 99 without speaker 0": "[SPEAKER1] Hello. [SPEAKER99] Hi.",
    "tag look-alikes": "[/SPEAKER0] [[SPEAKER0]] [SPEAKER100] [speaker0] Hello.",
    "emoji": "😀🎉 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️",
    "mixed languages": "Hello 你好 こんにちは مرحبا שלום Привет नमस्ते 안녕하세요.",
    "invisible and direction marks": "\u202eHello\u200b\u200c\u200d there\ufeff\u2066.",
    "odd code points": "\ufffe\uffff\U0010ffff 𝐇𝐞𝐥𝐥𝐨 a" + "\u0301" * 60,
    "one 300-character word": "x" * 300,
    "punctuation and digits only": "...!?; 1234567890",
}


@pytest.mark.parametrize("name", list(REFUSED_TEXTS))
def test_texts_with_nothing_to_say_are_refused(make_worker, name):
    out = make_worker(CHEAP).run({"input": {"text": REFUSED_TEXTS[name]}}).as_output()
    assert "something to say" in check_refused(out, "invalid_input: ")


@pytest.mark.parametrize("name", list(ACCEPTED_TEXTS))
def test_odd_texts_still_make_audio(make_worker, name):
    check_audio(make_worker(CHEAP).run({"input": {"text": ACCEPTED_TEXTS[name], "seed": 2}}).as_output())


def test_text_one_character_over_the_limit_is_refused_and_the_limit_works(make_worker):
    worker = make_worker({"MAX_NEW_TOKENS": "12"})  # MAX_TEXT_CHARS is its default, 20000
    message = check_refused(worker.run({"input": {"text": "x" * 20001}}).as_output(), "invalid_input: ")
    assert "MAX_TEXT_CHARS" in message and "20000" in message and "20001" in message
    text = ("hello " * 3334)[:20000]
    assert len(text) == 20000
    started = time.monotonic()
    check_audio(worker.run({"input": {"text": text, "chunk_method": "none", "seed": 1}}).as_output())
    print(f"20,000 characters in one chunk: {time.monotonic() - started:.1f} s")


def test_text_far_over_the_limit_is_refused_quickly(make_worker):
    started = time.monotonic()
    out = make_worker(CHEAP).run({"input": {"text": "x" * 5_000_000}}).as_output()
    assert "MAX_TEXT_CHARS" in check_refused(out, "invalid_input: ")
    assert time.monotonic() - started < 20
