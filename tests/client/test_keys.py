"""Issue 26 finding 3: a key goes only to the host it belongs to. The RunPod account key never
goes to ``say --base-url`` (an HTTP worker gets its own HIGGS_TTS_API_KEY), and no key goes over
plain http:// to another machine without --allow-insecure-http. A real listener on 127.0.0.1
records what arrives."""

from __future__ import annotations

import pytest

from tests.client.conftest import run_cli
from tests.client.listener import Listener
from tests.client.test_cli import assert_clean_failure, client_env_without_runpod
from tests.support.fake_endpoint import simulated_result


def _synthesize(method, path, body):
    if path == "/v1/synthesize":
        return 200, simulated_result({"text": "hello", "output_format": "flac"}, 1.0)
    return 404, {"error": "no route"}


def test_the_runpod_key_is_never_sent_to_a_base_url(tmp_path):
    env = {**client_env_without_runpod(), "RUNPOD_API_KEY": "rpa_SECRET_ACCOUNT_KEY"}
    with Listener(_synthesize) as listener:
        result = run_cli(["say", "hello", "-o", str(tmp_path / "x.flac"), "--base-url", listener.url], env)
    assert result.returncode == 0, result.stderr
    assert len(listener.requests) == 1
    assert not any("rpa_SECRET" in value for value in listener.authorizations()), listener.authorizations()


def test_an_http_worker_gets_its_own_key(tmp_path):
    env = {**client_env_without_runpod(), "RUNPOD_API_KEY": "rpa_SECRET", "HIGGS_TTS_API_KEY": "worker-key-7"}
    with Listener(_synthesize) as listener:
        result = run_cli(["say", "hello", "-o", str(tmp_path / "x.flac"), "--base-url", listener.url], env)
    assert result.returncode == 0, result.stderr
    assert listener.authorizations() == ["Bearer worker-key-7"]


@pytest.mark.parametrize(
    ("args", "env_extra"),
    [
        (["--base-url", "http://192.0.2.10:8000"], {"HIGGS_TTS_API_KEY": "worker-key"}),
        (["--endpoint", "ep"], {"RUNPOD_API_KEY": "rpa_X", "RUNPOD_ENDPOINT_BASE_URL": "http://192.0.2.10/v2"}),
    ],
)
def test_no_key_over_plain_http_to_another_machine(tmp_path, args, env_extra):
    """192.0.2.10 (TEST-NET-1) is never reachable: a refusal must come before any connection."""
    env = {**client_env_without_runpod(), **env_extra}
    result = run_cli(["say", "hello", "-o", str(tmp_path / "x.flac"), *args], env, timeout=60)
    assert_clean_failure(result, 2, "plain http:// on another machine", "--allow-insecure-http")
    assert "rpa_X" not in result.stderr and "worker-key" not in result.stderr


def test_a_runpod_base_url_on_the_local_machine_gets_the_runpod_key(tmp_path):
    """RUNPOD_ENDPOINT_BASE_URL is where the user says RunPod's API is (a look-alike here)."""
    env = {**client_env_without_runpod(), "RUNPOD_API_KEY": "rpa_X", "RUNPOD_ENDPOINT_ID": "ep"}
    with Listener() as listener:  # answers 401
        env["RUNPOD_ENDPOINT_BASE_URL"] = f"{listener.url}/v2"
        result = run_cli(["say", "hello", "-o", str(tmp_path / "x.flac")], env)
    assert_clean_failure(result, 1, "refused the API key (401")
    assert listener.authorizations() == ["Bearer rpa_X"]


def test_which_hosts_are_runpods_and_which_are_local():
    from higgs_tts.keys import is_local_host, is_runpod_host

    assert is_runpod_host("https://api.runpod.ai/v2")
    assert is_runpod_host("https://abc123.api.runpod.ai")
    assert not is_runpod_host("http://api.runpod.ai/v2")  # not over plain http
    assert not is_runpod_host("https://api.runpod.ai.evil.example/v2")
    assert not is_runpod_host("https://evilrunpod.ai/v2")
    assert (
        is_local_host("http://127.0.0.1:8000")
        and is_local_host("http://[::1]:80")
        and is_local_host("http://localhost")
    )
    assert not is_local_host("http://10.0.0.5") and not is_local_host("http://127.0.0.1.example.com")
