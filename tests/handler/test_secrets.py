"""No secret in any log line, output or error: a worker process with distinctive fake
AWS keys and HF token runs successful and failing jobs (hub 401, S3 refusing the
credentials, bad input, streaming) through ``--rp_serve_api``; everything it printed
and answered is searched for the secret values and for presigned query strings."""

from __future__ import annotations

import json
import shutil

import pytest
import requests

from higgs_worker.logs import scrub
from tests.conftest import BUCKET
from tests.support.api_server import rp_serve_api
from tests.support.hub_server import HubServer
from tests.support.s3_proxy import S3Proxy

ACCESS_KEY_ID = "FAKE-KEY-ID-ZZ-42"
SECRET_KEY = "fake-secret-key-zz-not-a-real-one-0123"
HF_TOKEN = "fake-hub-token-zz-1234567890"

pytestmark = pytest.mark.slow


def test_scrub_removes_secret_values_presigned_queries_and_payloads():
    env = {"AWS_SECRET_ACCESS_KEY": SECRET_KEY, "HF_TOKEN": HF_TOKEN}
    line = (
        f"token {HF_TOKEN} key {SECRET_KEY} url https://b.s3.amazonaws.com/k.wav?X-Amz-Algorithm=AWS4"
        f"&X-Amz-Credential={ACCESS_KEY_ID}%2F20261128&X-Amz-Signature=abcdef0123 data {'A' * 300}"
    )
    cleaned = scrub(line, env)
    for secret in (HF_TOKEN, SECRET_KEY, ACCESS_KEY_ID, "abcdef0123", "A" * 300):
        assert secret not in cleaned
    assert "<HF_TOKEN>" in cleaned and "<AWS_SECRET_ACCESS_KEY>" in cleaned


def test_no_secret_reaches_logs_outputs_or_errors(tmp_path, tiny_models, subprocess_env, moto_server):
    hub_root = tmp_path / "hub"
    shutil.copytree(tiny_models[0], hub_root / "bosonai" / "higgs-audio-v2-generation-3B-base")
    shutil.copytree(tiny_models[1], hub_root / "bosonai" / "higgs-audio-v2-tokenizer")
    with HubServer(hub_root) as hub, S3Proxy(moto_server) as s3:
        hub.set_auth("fake-other-hub-token-the-worker-lacks")
        env = {**subprocess_env, **hub.env(tmp_path / "hf-home", token=HF_TOKEN, base=subprocess_env)}
        env.pop("HF_HUB_OFFLINE", None)
        env.update(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1",
                "S3_BUCKET": BUCKET,
                "S3_ENDPOINT_URL": s3.url,
                "S3_ATTEMPTS": "2",
                "MODEL_PATH": str(tmp_path / "vol" / "model"),
                "TOKENIZER_PATH": str(tmp_path / "vol" / "tokenizer"),
                "MODEL_DOWNLOAD_ATTEMPTS": "1",
                "STREAM_JOBS": "true",  # the streaming handler (the plain one: tests/http/test_http_mode.py)
            }
        )
        log_path = tmp_path / "worker.log"
        answers = []
        with open(log_path, "w") as log_file, rp_serve_api(env, output=log_file) as (base, _proc):

            def runsync(job_input: dict) -> dict:
                answer = requests.post(f"{base}/runsync", json={"input": job_input}, timeout=240).json()
                answers.append(answer)
                return answer

            short = {"text": "Hello there.", "seed": 1, "max_new_tokens": 20}
            refused = runsync(short)  # the hub answers 401 to our token
            assert refused["output"][-1]["error"].startswith("model_unavailable: "), refused
            hub.set_auth(HF_TOKEN)
            stored = runsync(short)["output"][-1]
            assert stored["audio_url"].startswith(s3.url) and "X-Amz-Signature" in stored["audio_url"]
            assert "audio_base64" in runsync({**short, "delivery": "base64"})["output"][-1]
            streamed = runsync({**short, "stream": True, "delivery": "base64"})["output"]
            assert len(streamed) >= 2
            bad = runsync({"text": "Hi", "aws_secret_access_key": "x", "S3_BUCKET": "mine"})
            assert bad["output"][-1]["error"].startswith("invalid_input: unknown field(s)")
            s3.deny = True
            denied = runsync(short)["output"][-1]
            assert denied["error"].startswith("storage: ")
    logs = log_path.read_text()
    assert "job" in logs.lower() and "Started" in logs  # the log was really captured
    everything = logs + "\n" + json.dumps(answers)
    for secret in (SECRET_KEY, HF_TOKEN):
        assert secret not in everything
    # The access key id is part of every presigned URL (S3's design): it may appear there only.
    assert ACCESS_KEY_ID not in logs
    assert ACCESS_KEY_ID not in json.dumps(answers).replace(stored["audio_url"], "")
    assert "X-Amz-Signature" not in logs and stored["audio_url"] not in logs
    assert "Traceback" not in json.dumps(answers)
