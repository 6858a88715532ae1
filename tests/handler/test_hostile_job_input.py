"""Hostile job input at the queue door: any JSON, and valid jobs with fields replaced by hostile
values (hypothesis), through handler.py's streaming handler on the tiny real model. Every job
gets the contract's output or a contract error, and the worker serves a normal job afterwards.

URLs in fuzzed input only name private, loopback or malformed hosts, so that no example can
reach out (every one must be refused before connecting). Shared helpers:
tests/support/hostile_jobs.py."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from higgs_worker.contract.schema import KNOWN_FIELDS, OPUS_RATES, SAMPLE_RATES
from tests.conftest import wav_bytes
from tests.support.hostile_jobs import (
    CHEAP,
    URL_TIMEOUT,
    b64,
    check_contract,
    check_handler_items,
    check_refused,
    run_handler,
    serves_a_normal_job,
)

FUZZ_ENV = {"MAX_TEXT_CHARS": "300", "MAX_NEW_TOKENS": "24"}  # any valid fuzzed job: at most 24 steps a chunk

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
# the resampler allocate gigabytes (see test_odd_sample_rates_work_within_bounded_memory in
# tests/io/test_hostile_references.py, which checks that in a separate, memory-capped process).
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
