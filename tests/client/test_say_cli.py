"""Issue 30 item 6: ``higgs-tts --version``; ``say`` shows the job id and its progress on
stderr; Ctrl-C says exactly how to cancel (and ``higgs-tts cancel`` does it), never promising a
manifest; a ``/run`` whose answer was lost is not sent again; help names the variables; a
missing key exits 2. Against the look-alike (simulated workers) and a local listener."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from higgs_tts.endpoint import QueueEndpoint

from tests.client.conftest import client_env, run_cli
from tests.client.listener import Listener
from tests.client.test_cli import assert_clean_failure, client_env_without_runpod
from tests.conftest import ROOT


def test_version_is_the_package_version():
    result = run_cli(["--version"], dict(os.environ))
    version = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]["version"]
    assert result.returncode == 0 and result.stdout.strip() == f"higgs-tts {version}", result


@pytest.mark.parametrize("command", [[], ["say"], ["book"], ["cancel"]])
def test_help_names_the_variables_and_the_exit_codes(command):
    result = run_cli([*command, "--help"], dict(os.environ))
    assert result.returncode == 0
    for name in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID", "RUNPOD_ENDPOINT_BASE_URL", "HIGGS_TTS_API_KEY"):
        assert name in result.stdout, (command, name)
    assert "2 bad input or setup (e.g. no key)" in result.stdout


@pytest.mark.parametrize("command", [["say", "hello", "-o", "x.mp3"], ["cancel", "job-1"]])
def test_a_missing_key_exits_2(command, tmp_path):
    env = {**client_env_without_runpod(), "RUNPOD_ENDPOINT_ID": "ep"}
    assert_clean_failure(run_cli(command, env), 2, "no API key: set RUNPOD_API_KEY")


def test_say_shows_the_job_id_and_its_progress(simulated, tmp_path):
    fake, workers = simulated
    workers.behave = lambda job_input: {"run_s": 2.5}
    result = run_cli(["say", "Hello there.", "-o", str(tmp_path / "a.flac")], client_env(fake))
    assert result.returncode == 0, result.stderr
    (job_id,) = fake.jobs
    assert f"job {job_id} sent to endpoint" in result.stderr
    assert "in progress, " in result.stderr  # the state and the seconds since /run
    assert result.stderr.index("sent to") < result.stderr.index("in progress")


def test_ctrl_c_says_how_to_cancel_and_cancel_does_it(simulated, tmp_path):
    fake, workers = simulated
    workers.behave = lambda job_input: {"run_s": 60}
    args = [str(Path(sys.executable).parent / "higgs-tts"), "say", "A long one.", "-o", str(tmp_path / "a.flac")]
    proc = subprocess.Popen(
        args, env=client_env(fake), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        fake.wait_for(lambda: any(j.status == "IN_PROGRESS" for j in fake.jobs.values()), 60, "job running")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    (job_id,) = fake.jobs
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "manifest" not in stderr, stderr
    assert f"higgs-tts cancel {job_id} --endpoint" in stderr
    assert fake.jobs[job_id].status == "IN_PROGRESS"  # not cancelled behind the user's back
    result = run_cli(["cancel", job_id], client_env(fake))
    assert result.returncode == 0, result.stderr
    assert fake.jobs[job_id].status == "CANCELLED"
    assert f"job {job_id}: CANCELLED" in result.stdout


@pytest.mark.parametrize("failure", ["drop", ("hang", 3)])
def test_a_run_whose_answer_was_lost_is_not_sent_again(failure):
    """The old client retried /run after a read timeout or a cut connection: 5 jobs, 5 bills."""
    from higgs_tts.errors import RunAnswerLost

    with Listener(lambda method, path, body: failure) as listener:
        endpoint = QueueEndpoint("ep", "rpa_X", base_url=f"{listener.url}/v2", read_timeout_s=1)
        with pytest.raises(RunAnswerLost, match="may have been queued") as lost:
            endpoint.submit({"text": "hello"})
    assert [r["path"] for r in listener.requests] == ["/v2/ep/run"]
    assert "not sent again" in str(lost.value) and "Requests tab" in str(lost.value)


def test_say_tells_the_user_when_the_run_answer_was_lost(tmp_path):
    with Listener(lambda method, path, body: "drop") as listener:
        env = {**client_env_without_runpod(), "RUNPOD_API_KEY": "rpa_X", "RUNPOD_ENDPOINT_ID": "ep"}
        env["RUNPOD_ENDPOINT_BASE_URL"] = f"{listener.url}/v2"
        result = run_cli(["say", "hello", "-o", str(tmp_path / "x.flac")], env)
    assert_clean_failure(result, 1, "may have been queued", "it was not sent again", "/v2/ep/health")
    assert len(listener.requests) == 1


def test_a_run_that_never_connected_is_tried_again():
    """No connection made: nothing reached RunPod, so sending it again bills nothing twice."""
    import socket

    from higgs_tts.errors import RunAnswerLost

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = QueueEndpoint("ep", "rpa_X", base_url=f"http://127.0.0.1:{port}/v2")
    started = time.monotonic()
    with pytest.raises(Exception) as failed:
        endpoint.submit({"text": "hello"})
    assert not isinstance(failed.value, RunAnswerLost)
    assert "unreachable" in str(failed.value) and "after 5 tries" in str(failed.value)
    assert time.monotonic() - started > 1  # it waited between tries
