"""Faults a serverless worker meets: a flaky, slow or refusing S3, a full or read-only
volume, and a long run of jobs (memory and open files). Real parts: moto behind a
fault-injecting proxy, tmpfs mounts (the tests run as root, like CI), the local hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from higgs_worker.contract.config import Settings
from higgs_worker.jobs import Worker
from higgs_worker.model.model_store import MARKER
from tests.conftest import BUCKET, FAKE_AWS, free_port
from tests.support.api_server import rp_serve_api
from tests.support.hub_server import HubServer
from tests.support.s3_proxy import S3Proxy

SHORT = {"text": "Hello there.", "seed": 1, "max_new_tokens": 20}


@pytest.fixture
def proxy(moto_server, monkeypatch):
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    with S3Proxy(moto_server) as server:
        yield server


def s3_worker(make_worker, proxy, **extra) -> Worker:
    return make_worker({"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": proxy.url, **extra})


def test_flaky_s3_is_retried_and_the_result_stored(make_worker, proxy, s3_client):
    proxy.fail_puts = 2
    out = s3_worker(make_worker, proxy, S3_ATTEMPTS="4").run({"id": "flaky", "input": SHORT}).as_output()
    assert out["s3_uri"].endswith("/flaky.wav"), out
    assert [status for method, _, status in proxy.requests if method == "PUT"][:3] == [503, 503, 200]
    assert requests.get(out["audio_url"], timeout=10).status_code == 200


def test_s3_down_fails_with_storage_after_bounded_retries(make_worker, proxy):
    proxy.fail_puts = 100
    start = time.monotonic()
    out = s3_worker(make_worker, proxy, S3_ATTEMPTS="3").run({"input": SHORT}).as_output()
    elapsed = time.monotonic() - start
    assert list(out) == ["error"] and out["error"].startswith("storage: ")
    puts = [r for r in proxy.requests if r[0] == "PUT"]
    print(f"S3 down: {len(puts)} PUT attempts, failed after {elapsed:.1f}s")
    assert len(puts) == 3  # S3_ATTEMPTS is botocore's max_attempts (standard mode): no loop around it


def test_s3_unreachable_fails_with_storage(make_worker, monkeypatch):
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    closed = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    out = (
        make_worker({"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": closed, "S3_ATTEMPTS": "2"})
        .run({"input": SHORT})
        .as_output()
    )
    print(f"S3 unreachable: failed after {time.monotonic() - start:.1f}s")
    assert list(out) == ["error"] and out["error"].startswith("storage: ")


def test_slow_s3_is_cut_off_by_the_timeout(make_worker, proxy):
    proxy.stall_seconds = 3.0
    start = time.monotonic()
    out = s3_worker(make_worker, proxy, S3_ATTEMPTS="1", S3_TIMEOUT_SECONDS="1").run({"input": SHORT}).as_output()
    elapsed = time.monotonic() - start
    print(f"slow S3: failed after {elapsed:.1f}s")
    assert list(out) == ["error"] and out["error"].startswith("storage: ")
    assert elapsed < 30


def test_refused_credentials_fail_fast_without_retry_storm(make_worker, proxy):
    proxy.deny = True
    out = s3_worker(make_worker, proxy, S3_ATTEMPTS="4").run({"input": SHORT}).as_output()
    assert list(out) == ["error"] and out["error"].startswith("storage: ")
    assert "InvalidAccessKeyId" in out["error"]
    assert len([r for r in proxy.requests if r[0] == "PUT"]) == 1  # not transient: botocore does not retry it


# -- the volume ---------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """A real size-limited filesystem (tmpfs); the tests run as root, as CI does."""
    mounts = []

    def mount(name: str, size: str, read_only: bool = False) -> Path:
        target = tmp_path / name
        target.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)
        mounts.append(target)
        return target

    yield mount
    for target in reversed(mounts):
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def hub(tmp_path, tiny_models, monkeypatch):
    root = tmp_path / "hub"
    shutil.copytree(tiny_models[0], root / "bosonai" / "higgs-audio-v2-generation-3B-base")
    shutil.copytree(tiny_models[1], root / "bosonai" / "higgs-audio-v2-tokenizer")
    with HubServer(root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        yield server


def volume_worker(volume: Path, tmp_path: Path) -> Worker:
    return Worker(
        Settings.from_env(
            {
                "MODEL_PATH": str(volume / "model"),
                "TOKENIZER_PATH": str(volume / "tokenizer"),
                "DEVICE": "cpu",
                "RUNPOD_HF_CACHE_DIR": str(tmp_path / "no-cache"),
                "MODEL_DOWNLOAD_ATTEMPTS": "2",
                "MODEL_DOWNLOAD_BACKOFF_SECONDS": "0.01",
            }
        )
    )


def test_full_volume_is_a_clear_error_and_recovers_when_space_is_freed(tmp_path, tmpfs, hub):
    volume = tmpfs("full", "1m")  # smaller than the tiny weights (~2.2 MB)
    worker = volume_worker(volume, tmp_path)
    out = worker.run({"input": SHORT}).as_output()
    assert list(out) == ["error"] and out["error"].startswith("model_unavailable: ")
    assert "full" in out["error"]
    assert not (volume / "model" / MARKER).exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(volume)], check=True)  # space is freed
    out = worker.run({"input": SHORT}).as_output()
    assert "audio_base64" in out, out
    assert (volume / "model" / MARKER).exists()


def test_read_only_volume_is_a_clear_error(tmp_path, tmpfs, hub):
    volume = tmpfs("ro", "16m", read_only=True)
    out = volume_worker(volume, tmp_path).run({"input": SHORT}).as_output()
    assert list(out) == ["error"] and out["error"].startswith("model_unavailable: ")
    assert "read-only" in out["error"]
    assert not any(volume.iterdir())


# -- a long run -----------------------------------------------------------------------------


def _rss_and_fds(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/statm") as handle:
        rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_200_jobs_in_a_row_keep_memory_and_open_files_bounded(subprocess_env, moto_server):
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}
    with rp_serve_api(env) as (base, proc):
        session = requests.Session()

        def job(i: int) -> None:
            delivery = "s3" if i % 2 else "base64"
            body = {
                "input": {
                    "text": f"Job number {i}.",
                    "seed": i,
                    "max_new_tokens": 12,
                    "delivery": delivery,
                    "output_format": ["wav", "mp3", "opus", "flac"][i % 4],
                }
            }
            result = session.post(f"{base}/runsync", json=body, timeout=60).json()
            assert result["status"] == "COMPLETED" and "error" not in result["output"], result  # the plain output dict

        for i in range(20):  # warm-up: allocators, codec libraries, S3 connection pool
            job(i)
        rss0, fds0 = _rss_and_fds(proc.pid)
        start = time.monotonic()
        for i in range(200):
            job(1000 + i)
        elapsed = time.monotonic() - start
        rss1, fds1 = _rss_and_fds(proc.pid)
    print(
        f"200 jobs in {elapsed:.1f}s; RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB "
        f"({(rss1 - rss0) / 2**20:+.1f}); open files {fds0} -> {fds1}"
    )
    assert rss1 - rss0 < 64 * 2**20, "memory grew by more than 64 MiB over 200 jobs"
    assert fds1 - fds0 <= 4, "open files grew over 200 jobs"
