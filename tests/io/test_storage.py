"""S3 delivery and reference keys (``higgs_worker/io/storage.py``) against moto's S3 server (real
HTTP, real boto3), alone and through whole jobs on the tiny model:

- delivery: S3 or inline as asked, inline only within INLINE_MAX_BYTES (stream items counted),
  presigned URLs that download, a failed upload a ``storage`` error that names the bucket and
  key and never a credential; output names never write outside S3_PREFIX;
- ``reference_audio.s3_key`` is confined to REFERENCE_S3_PREFIX: no job can clone another
  job's output, and no answer tells whether, or how large, an object outside the prefix exists.
"""

from __future__ import annotations

import base64
import io
import uuid

import pytest
import requests
import soundfile as sf

from higgs_worker.contract.config import Settings, SettingsError
from higgs_worker.contract.errors import STORAGE, TOO_LARGE, WorkerError
from higgs_worker.io.storage import S3Store, deliver
from tests.conftest import BUCKET, FAKE_AWS, wav_bytes
from tests.support.hostile_jobs import NAME_TRICKS, check_audio

CHEAP = {"MAX_TEXT_CHARS": "300", "MAX_NEW_TOKENS": "12", "MAX_REFERENCE_BYTES": "200000"}
SHORT = "Hello there."
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


# -- delivery ---------------------------------------------------------------------------------


def store(s3_env, **overrides) -> S3Store:
    settings = Settings.from_env({**s3_env, **overrides}).s3
    return S3Store(settings, attempts=int(overrides.get("S3_ATTEMPTS", 4)))


def test_an_upload_is_stored_with_its_content_type_and_presigned_to_its_bytes(s3_env, s3_client):
    name = f"direct-{uuid.uuid4().hex[:8]}.mp3"
    stored = store(s3_env).upload(name, b"ID3 not really an mp3", "audio/mpeg")
    assert stored.s3_uri == f"s3://{BUCKET}/higgs-audio/{name}"
    head = s3_client.head_object(Bucket=BUCKET, Key=f"higgs-audio/{name}")
    assert head["ContentType"] == "audio/mpeg" and head["ContentLength"] == len(b"ID3 not really an mp3")
    assert requests.get(stored.url, timeout=10).content == b"ID3 not really an mp3"
    assert store(s3_env, S3_PRESIGN_SECONDS="0").upload(name, b"x", "audio/mpeg").url is None


def test_a_refused_upload_names_the_bucket_and_key_and_no_credential(s3_env):
    with pytest.raises(WorkerError) as refused:
        store(s3_env, S3_BUCKET="no-such-bucket", S3_ATTEMPTS="1").upload("x.wav", b"RIFF", "audio/wav")
    assert refused.value.code == STORAGE
    assert "s3://no-such-bucket/higgs-audio/x.wav" in refused.value.message and "NoSuchBucket" in refused.value.message
    for secret in FAKE_AWS.values():
        assert secret not in str(refused.value)


def test_deliver_inline_within_the_budget_and_to_s3_when_asked_or_over_it(s3_env, s3_client):
    s3 = store(s3_env)
    data = bytes(range(256)) * 3  # 768 bytes: 1024 in base64
    inline = deliver(None, "auto", "a.wav", data, "audio/wav", inline_max_bytes=1024)
    assert base64.b64decode(inline["audio_base64"]) == data
    assert "audio_base64" in deliver(s3, "base64", "a.wav", data, "audio/wav", inline_max_bytes=1024)
    auto = deliver(s3, "auto", "auto.wav", data, "audio/wav", inline_max_bytes=1024)
    assert auto["s3_uri"] == f"s3://{BUCKET}/higgs-audio/auto.wav" and "audio_url" in auto
    over = deliver(s3, "base64", "over.wav", data, "audio/wav", inline_max_bytes=1023)  # no room inline: S3
    assert "audio_base64" not in over
    assert s3_client.get_object(Bucket=BUCKET, Key="higgs-audio/over.wav")["Body"].read() == data


def test_stream_items_already_sent_count_against_the_inline_budget():
    data = b"\0" * 300  # 400 bytes in base64
    assert "audio_base64" in deliver(None, "auto", "a.wav", data, "audio/wav", inline_max_bytes=500)
    with pytest.raises(WorkerError) as refused:
        deliver(None, "auto", "a.wav", data, "audio/wav", inline_max_bytes=500, streamed_bytes=200)
    assert refused.value.code == STORAGE and refused.value.kind == TOO_LARGE
    assert "with 200 bytes of streamed chunks" in refused.value.message and "S3_BUCKET" in refused.value.message


def test_s3_delivery_with_presigned_url_that_downloads(make_worker, s3_env, s3_client):
    out = (
        make_worker(s3_env)
        .run({"id": "job-s3", "input": {"text": SHORT, "output_format": "mp3", "seed": 1}})
        .as_output()
    )
    assert "error" not in out, out
    assert "audio_base64" not in out
    assert out["s3_uri"] == f"s3://{BUCKET}/higgs-audio/job-s3.mp3"
    head = s3_client.head_object(Bucket=BUCKET, Key="higgs-audio/job-s3.mp3")
    assert head["ContentType"] == "audio/mpeg"
    response = requests.get(out["audio_url"], timeout=10)
    assert response.status_code == 200
    audio, rate = sf.read(io.BytesIO(response.content))
    assert rate == 24000 and len(audio) / rate == pytest.approx(out["duration_s"], abs=0.08)


def test_s3_output_name_prefix_and_no_presign(make_worker, s3_env, s3_client):
    env = {**s3_env, "S3_PREFIX": "tts/out", "S3_PRESIGN_SECONDS": "0"}
    out = make_worker(env).run({"id": "x", "input": {"text": SHORT, "output_name": "greeting", "seed": 1}}).as_output()
    assert out["s3_uri"] == f"s3://{BUCKET}/tts/out/greeting.wav" and "audio_url" not in out
    assert s3_client.get_object(Bucket=BUCKET, Key="tts/out/greeting.wav")["ContentLength"] > 44


def test_base64_delivery_even_with_s3_configured(make_worker, s3_env):
    out = make_worker(s3_env).run({"input": {"text": SHORT, "delivery": "base64", "seed": 1}}).as_output()
    assert "audio_base64" in out and "s3_uri" not in out


def test_runpod_bucket_aliases_work(make_worker, moto_server, s3_client, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env = {
        "BUCKET_ENDPOINT_URL": moto_server,
        "S3_BUCKET": BUCKET,
        "BUCKET_ACCESS_KEY_ID": "FAKE-ACCESS-KEY-ID-1",
        "BUCKET_SECRET_ACCESS_KEY": "x" * 20,
    }
    out = make_worker(env).run({"id": "alias", "input": {"text": SHORT, "seed": 1}}).as_output()
    assert out["s3_uri"] == f"s3://{BUCKET}/higgs-audio/alias.wav", out


def test_inline_result_too_large_goes_to_s3_or_fails_clearly(make_worker, s3_env):
    job = {"id": "big", "input": {"text": SHORT, "seed": 1, "delivery": "base64"}}
    out = make_worker({"INLINE_MAX_BYTES": "1000"}).run(job).as_output()
    assert out == {"error": out["error"]} and out["error"].startswith("storage: ")
    assert "S3_BUCKET" in out["error"] and "mp3" in out["error"]
    moved = make_worker({**s3_env, "INLINE_MAX_BYTES": "1000"}).run(job).as_output()
    assert moved["s3_uri"].endswith("/big.wav") and "audio_base64" not in moved


def test_s3_failure_is_a_storage_error_never_success(make_worker, s3_env):
    env = {**s3_env, "S3_BUCKET": "no-such-bucket", "S3_ATTEMPTS": "2"}
    out = make_worker(env).run({"input": {"text": SHORT, "seed": 1}}).as_output()
    assert list(out) == ["error"] and out["error"].startswith("storage: ")
    assert "no-such-bucket" in out["error"]


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
