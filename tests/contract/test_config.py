"""Settings: every variable parsed and checked once, bad values named with what is allowed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from higgs_worker.contract.config import Environment, Settings, SettingsError
from tests.conftest import ROOT


def test_defaults_match_the_documented_ones():
    settings = Settings.from_env({})
    assert settings.model.repo == "bosonai/higgs-audio-v2-generation-3B-base"
    assert settings.model.path == "/runpod-volume/bosonai/higgs-audio-v2-generation-3B-base"
    assert settings.tokenizer.path == "/runpod-volume/bosonai/higgs-audio-v2-tokenizer"
    assert (settings.s3, settings.inline_max_bytes, settings.max_concurrency) == (None, 10_000_000, None)
    assert (settings.worker_mode, settings.port, settings.stream_jobs, settings.preload_models) == (
        "queue",
        8000,
        False,
        False,
    )
    assert settings.compile_cache_dir == "/runpod-volume/bosonai/compile-cache"


@pytest.mark.parametrize(
    ("env", "named", "allowed"),
    [
        ({"DTYPE": "fp17"}, "DTYPE='fp17'", "'bfloat16'"),
        ({"PRELOAD_MODELS": "ture"}, "PRELOAD_MODELS='ture'", "true or false"),
        ({"WORKER_MODE": "grpc"}, "WORKER_MODE='grpc'", "'queue' or 'http'"),
        ({"DEVICE": "gpu"}, "DEVICE='gpu'", "cuda"),
        ({"MAX_CONCURRENCY": "0"}, "MAX_CONCURRENCY='0'", "greater than or equal to 1"),
        ({"INLINE_MAX_BYTES": "ten megs"}, "INLINE_MAX_BYTES='ten megs'", "like 10MB"),
        ({"S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL='minio:9000'", "https?://"),
        ({"PORT": "80000"}, "PORT='80000'", "65535"),
        ({"DECODE_COMPILE": "sometimes"}, "DECODE_COMPILE='sometimes'", "'auto', 'true' or 'false'"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(env, named, allowed):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert named in str(caught.value) and allowed in str(caught.value)


def test_every_bad_variable_is_named_at_once_and_secrets_are_not_echoed():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MAX_TEXT_CHARS": "many", "S3_PRESIGN_SECONDS": "-1", "PORT_HEALTH": "x"})
    message = str(caught.value)
    assert all(name in message for name in ("MAX_TEXT_CHARS", "S3_PRESIGN_SECONDS", "PORT_HEALTH"))


def test_values_are_parsed_by_type_and_empty_means_unset():
    settings = Settings.from_env(
        {
            "PRELOAD_MODELS": "yes",
            "DECODE_COMPILE": "on",
            "INLINE_MAX_BYTES": "5MB",
            "MAX_REFERENCE_BYTES": "1000",
            "MAX_TEXT_CHARS": "",
            "MODEL_REPO": "org/other",
            "WORKER_MODE": "HTTP",
            "DTYPE": "BF16",
        }
    )
    assert settings.preload_models is True and settings.decode_compile == "true"
    assert (settings.inline_max_bytes, settings.max_reference_bytes, settings.max_text_chars) == (
        5_000_000,
        1000,
        20000,
    )
    assert settings.model.path == "/runpod-volume/org/other"
    assert (settings.worker_mode, settings.dtype) == ("http", "bf16")


def test_runpod_bucket_aliases_and_an_empty_prefix():
    settings = Settings.from_env(
        {
            "BUCKET_NAME": "results",
            "BUCKET_ENDPOINT_URL": "https://r2.example.com",
            "BUCKET_ACCESS_KEY_ID": "alias-key-id",
            "BUCKET_SECRET_ACCESS_KEY": "alias-secret",
            "S3_PREFIX": "",
        }
    )
    s3 = settings.s3
    assert (s3.bucket, s3.endpoint_url, s3.prefix) == ("results", "https://r2.example.com", "")
    assert (s3.access_key_id, s3.secret_access_key) == ("alias-key-id", "alias-secret")
    assert "alias-secret" not in repr(settings)
    with_aws = Settings.from_env({"S3_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k", "BUCKET_ACCESS_KEY_ID": "alias"})
    assert with_aws.s3.access_key_id is None  # boto3 reads AWS_* itself


def test_api_key_is_secret():
    settings = Settings.from_env({"API_KEY": "sk-test-not-for-logs"})
    assert settings.api_key.get_secret_value() == "sk-test-not-for-logs"
    assert "sk-test-not-for-logs" not in repr(settings)


def test_every_environment_field_has_a_description():
    missing = [name for name, field in Environment.model_fields.items() if not field.description]
    assert missing == []


def test_a_worker_with_a_bad_setting_stops_at_start_with_the_message(subprocess_env):
    env = {**subprocess_env, "DTYPE": "fp17", "PRELOAD_MODELS": "ture"}
    done = subprocess.run(
        [sys.executable, "handler.py", "--test_input", '{"input": {"text": "Hello."}}'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "DTYPE='fp17'" in output and "PRELOAD_MODELS='ture'" in output and "cannot start" in output
    assert "Traceback" not in output


def test_the_serving_path_does_not_import_the_dev_tools():
    """devtools (bench, tiny_model) and the reference-doc generator ship in the package on
    purpose (the GPU check and the smoke run use the same image), but serving never imports them."""
    code = (
        "import sys, handler; from higgs_worker import jobs; "
        "print(sorted(m for m in sys.modules if m.startswith('higgs_worker.devtools') or m.endswith('reference_doc')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
