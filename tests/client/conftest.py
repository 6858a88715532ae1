"""Fixtures for the client's tests: the RunPod look-alike (tests/support/fake_endpoint.py) with
real local workers (``python handler.py`` on the runpod SDK's worker loop, the tiny model) or
with simulated workers, and small books written by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, voice_library, worker_process_env
from tests.support.fake_endpoint import FakeEndpoint, SimulatedWorkers
from tests.support.local_workers import LocalEndpoint


def chapters_text(count: int, words: str = "The lamp was lit and the long night began again.") -> str:
    return "\n\n".join(f"Chapter {n}\n\n{words} Number {n} is here." for n in range(1, count + 1)) + "\n"


def run_cli(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """``higgs-tts`` as a user runs it (the console script installed by scripts/setup-dev.sh)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "higgs-tts"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def client_env(fake: FakeEndpoint, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "AWS_", "S3_", "BUCKET_"))}
    return {**env, **fake.client_env(), **extra}


@pytest.fixture
def simulated():
    """The look-alike with two simulated workers (fast jobs): for what needs no model."""
    with FakeEndpoint() as fake, SimulatedWorkers(fake, 2, rtf=0.02, overhead_s=0.05) as workers:
        yield fake, workers


@pytest.fixture(scope="module")
def local_endpoint(tiny_models, tmp_path_factory):
    """The look-alike with two real workers (tiny model, CPU), shared by a module's tests.

    The tiny model's random weights stop a chunk anywhere (often after a second), not at a
    person's speaking rate, so books made on these workers use ``check_length=False``; the
    length check itself is tested with simulated workers (test_fanout.py)."""
    work = tmp_path_factory.mktemp("workers")
    voices = voice_library(work)
    env = worker_process_env(tiny_models, voices, work)
    endpoint = LocalEndpoint(env, work)
    try:
        endpoint.ensure(2)
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture
def workers(local_endpoint) -> LocalEndpoint:
    local_endpoint.ensure(2)  # a test that killed one gets it back
    return local_endpoint
