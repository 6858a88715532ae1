"""Shared fixtures: a tiny real Higgs model, moto's S3 server, local audio, workers.

Everything here is a real component running on this machine: the tiny model is
built with transformers' own classes, S3 is moto's standalone server reached over
HTTP by boto3, reference audio is served by a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.contract.config import Settings
from higgs_worker.io import safe_http
from higgs_worker.jobs import Worker
from higgs_worker.model.model_store import LocalModel

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "test-results"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "FAKE-ACCESS-KEY-ID-1",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key-do-not-leak-0123456789",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def pytest_sessionstart(session):
    """Inductor's CUDA-graph trees imported on this process's main thread, as ``handler.main``
    does where the worker compiles: many tests compile the decode step on threads that end, and
    the thread that imports the module first must not (``torch_features.import_cudagraph_trees``;
    tests/model/test_cudagraph_import_thread.py shows why)."""
    from higgs_worker.model import torch_features

    torch_features.import_cudagraph_trees()


def pytest_collection_modifyitems(config, items):
    """Test files with slow tests first, each file's tests in their order: under pytest-xdist
    (``scripts/test.sh``: a file per process at a time) the long files start at once and the
    short ones fill in around them, instead of a long file running alone at the end."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tone(seconds: float = 1.0, rate: int = 24000, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def wav_bytes(seconds: float = 1.0, rate: int = 24000, channels: int = 1, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, tone(seconds, rate, channels=channels), rate, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny checkpoint pair, built once per test session."""
    from higgs_worker.devtools.tiny_model import build

    return build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def engine(tiny_models):
    import torch

    from higgs_worker.model.engine import Engine

    model_dir, tokenizer_dir = tiny_models
    return Engine.load(str(model_dir), str(tokenizer_dir), "cpu", torch.float32)


@pytest.fixture(scope="session")
def moto_server():
    """moto's standalone S3 server on 127.0.0.1 (real HTTP, real boto3)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1", **_creds()).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def _creds() -> dict:
    return {
        "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture
def s3_client(moto_server):
    import boto3

    return boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1", **_creds())


@pytest.fixture
def s3_env(moto_server, monkeypatch) -> dict:
    env = {**FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    return env


def voice_library(root: Path) -> Path:
    """``root/voices`` with one voice, belinda: a 1.5 s clip and its transcript."""
    folder = root / "voices"
    folder.mkdir()
    (folder / "belinda.wav").write_bytes(wav_bytes(1.5))
    (folder / "belinda.txt").write_text("The sun rises in the east.")
    return folder


@pytest.fixture
def voices_dir(tmp_path) -> Path:
    folder = voice_library(tmp_path)
    (folder / "broom.flac").write_bytes(wav_bytes(1.0, fmt="FLAC"))
    return folder


@pytest.fixture
def make_worker(engine, tiny_models, voices_dir, tmp_path):
    """A Worker whose settings come from an env dict, sharing the loaded tiny engine."""

    def factory(env: dict | None = None, share_engine: bool = True) -> Worker:
        base = {
            "MODEL_PATH": str(tiny_models[0]),
            "TOKENIZER_PATH": str(tiny_models[1]),
            "VOICES_DIR": str(voices_dir),
            "RUNPOD_HF_CACHE_DIR": str(tmp_path / "hf-cache"),
            "DEVICE": "cpu",
        }
        worker = Worker(Settings.from_env({**base, **(env or {})}))
        if share_engine:
            worker.engine = engine
            worker.model_info = LocalModel(str(tiny_models[0]), worker.settings.model.repo, "local", False)
        return worker

    return factory


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving files from a folder; yields (folder, url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def worker_process_env(tiny_models, voices_dir: Path, work_dir: Path) -> dict:
    """Environment for running handler.py as a separate process against the tiny model
    (this process's environment without S3, bucket and hub settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "BUCKET_", "HF_"))}
    env.update(
        {
            "MODEL_PATH": str(tiny_models[0]),
            "TOKENIZER_PATH": str(tiny_models[1]),
            "VOICES_DIR": str(voices_dir),
            "RUNPOD_HF_CACHE_DIR": str(work_dir / "hf-cache"),
            "DEVICE": "cpu",
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
        }
    )
    return env


@pytest.fixture
def subprocess_env(tiny_models, voices_dir, tmp_path) -> dict:
    return worker_process_env(tiny_models, voices_dir, tmp_path)


# -- the outside world of a URL fetch (none can run inside a test) --------------------------
PUBLIC_STANDIN = "127.0.0.3"


@pytest.fixture
def public_standin(monkeypatch):
    """Stand-in for a public web server: the loopback address 127.0.0.3, and only it, counts
    as public for the worker's address check. Every other address still goes through the
    real check."""
    real = safe_http.is_public
    monkeypatch.setattr(safe_http, "is_public", lambda address: address == PUBLIC_STANDIN or real(address))


@pytest.fixture
def fake_dns(monkeypatch):
    """Stand-in for an attacker's DNS server: ``socket.getaddrinfo`` answers for names in its
    table (a list of answers is used one lookup after another, the last one repeating); every
    other name goes to the real resolver. Yields (table, names looked up)."""
    real = socket.getaddrinfo
    table: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            lookups.append(name)
            answers = table[name]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [info for address in addresses for info in real(address, port, *args, **kwargs)]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table, lookups
