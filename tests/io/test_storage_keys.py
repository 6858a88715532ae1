"""``reference_audio.s3_key`` is confined to REFERENCE_S3_PREFIX, against moto's S3 server
(real HTTP, real boto3) and the tiny model: no job can clone another job's output, and no
answer tells whether, or how large, an object outside the prefix exists."""

from __future__ import annotations

import uuid

import pytest

from higgs_worker.contract.config import Settings, SettingsError
from higgs_worker.io.storage import S3Store
from tests.conftest import BUCKET, wav_bytes

CHEAP = {"MAX_TEXT_CHARS": "300", "MAX_NEW_TOKENS": "12", "MAX_REFERENCE_BYTES": "200000"}
REFERENCES = "higgs-audio/references/"  # the default: <S3_PREFIX>references/, where higgs-tts uploads


def cloning(key: str, **extra) -> dict:
    return {"input": {"text": "Hi there.", "seed": 3, "reference_audio": {"s3_key": key}, **extra}}


def test_another_jobs_output_cannot_be_cloned(make_worker, s3_env):
    """The probe: a job's result, stored in the bucket, named as the next job's reference."""
    worker = make_worker({**s3_env, **CHEAP})
    stored = worker.run(
        {"input": {"text": "Someone else's words.", "delivery": "s3", "output_format": "wav"}}
    ).as_output()
    assert "error" not in stored, stored
    key = stored["s3_uri"].removeprefix(f"s3://{BUCKET}/")
    assert key.startswith("higgs-audio/") and not key.startswith(REFERENCES)
    out = worker.run(cloning(key)).as_output()
    assert out == {
        "error": f"reference_audio: no reference audio at s3_key {key!r}: it must name an object under "
        f"REFERENCE_S3_PREFIX {REFERENCES!r} in S3_BUCKET"
    }


def test_missing_and_not_allowed_keys_give_one_error(make_worker, s3_env, s3_client):
    """Outside the prefix, an object (small or over MAX_REFERENCE_BYTES) and no object
    answer alike, word for word but the key; so does a missing key inside the prefix."""
    folder = f"private/{uuid.uuid4().hex}"
    s3_client.put_object(Bucket=BUCKET, Key=f"{folder}/small.wav", Body=wav_bytes(0.5))
    s3_client.put_object(Bucket=BUCKET, Key=f"{folder}/large.bin", Body=b"\0" * 300_000)
    worker = make_worker({**s3_env, **CHEAP})
    keys = [f"{folder}/small.wav", f"{folder}/large.bin", f"{folder}/missing.wav", f"{REFERENCES}missing.wav"]
    errors = {worker.run(cloning(key)).as_output()["error"].replace(repr(key), "KEY") for key in keys}
    assert len(errors) == 1, errors
    (error,) = errors
    assert error.startswith("reference_audio: no reference audio at s3_key KEY") and "bytes" not in error


def test_a_key_under_the_reference_prefix_is_read_and_still_limited(s3_env, s3_client):
    key = f"{REFERENCES}{uuid.uuid4().hex}"
    s3_client.put_object(Bucket=BUCKET, Key=f"{key}.wav", Body=wav_bytes(0.5))
    s3_client.put_object(Bucket=BUCKET, Key=f"{key}.big", Body=b"\0" * 300_000)
    store = S3Store(Settings.from_env(s3_env).s3)
    assert store.read_reference(f"{key}.wav", 200_000) == wav_bytes(0.5)
    with pytest.raises(Exception, match="MAX_REFERENCE_BYTES"):
        store.read_reference(f"{key}.big", 200_000)


@pytest.mark.parametrize(
    "key",
    [
        f"{REFERENCES}./a.wav",
        f"{REFERENCES}../a.wav",
        f"{REFERENCES}/a.wav",  # an empty part
        "/higgs-audio/references/a.wav",
        "higgs-audio\\references\\..\\job.wav",
        f"{REFERENCES}a\x01.wav",
        f"{REFERENCES}a\x7f.wav",
    ],
)
def test_key_forms_a_store_or_proxy_could_resolve_are_invalid_input(make_worker, s3_env, key):
    out = make_worker({**s3_env, **CHEAP}).run(cloning(key)).as_output()
    assert out["error"].startswith("invalid_input: ") and "REFERENCE_S3_PREFIX" in out["error"], out


def test_the_reference_prefix_follows_s3_prefix_and_never_holds_the_results(s3_env):
    assert Settings.from_env(s3_env).s3.reference_prefix == REFERENCES
    assert Settings.from_env({**s3_env, "S3_PREFIX": "tts/out"}).s3.reference_prefix == "tts/out/references/"
    assert Settings.from_env({**s3_env, "REFERENCE_S3_PREFIX": "/voices"}).s3.reference_prefix == "voices/"
    for covering in ("higgs-audio/", "higgs-audio", "/"):
        with pytest.raises(SettingsError, match="REFERENCE_S3_PREFIX"):
            Settings.from_env({**s3_env, "REFERENCE_S3_PREFIX": covering})
