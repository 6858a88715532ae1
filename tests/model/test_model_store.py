"""Models on the volume, through huggingface_hub's real download code and a local hub.

The hub is tests/support/hub_server.py on 127.0.0.1 serving the tiny repos the way
the Hugging Face Hub does (LFS redirects, ranges, typed errors, fault injection).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from higgs_worker.contract.config import ModelSource, Settings
from higgs_worker.contract.errors import WorkerError
from higgs_worker.jobs import Worker
from higgs_worker.model.model_store import MARKER, check_format, ensure_local
from tests.conftest import ROOT
from tests.support.hub_server import HubServer

MODEL_REPO = "bosonai/higgs-audio-v2-generation-3B-base"
TOKENIZER_REPO = "bosonai/higgs-audio-v2-tokenizer"
TOKEN = "fake-hub-token-that-must-never-leak-123"


@pytest.fixture
def hub_root(tmp_path, tiny_models) -> Path:
    root = tmp_path / "hub"
    shutil.copytree(tiny_models[0], root / MODEL_REPO)
    shutil.copytree(tiny_models[1], root / TOKENIZER_REPO)
    # a weights file large enough to be cut off mid-way (several read blocks)
    return root


@pytest.fixture
def hub(hub_root, monkeypatch):
    with HubServer(hub_root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HOME", str(hub_root.parent / "hf-home"))
        yield server


def source(tmp_path, revision="main", repo=MODEL_REPO) -> ModelSource:
    return ModelSource(repo=repo, revision=revision, path=str(tmp_path / "volume" / repo))


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if p.is_file())
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_first_use_downloads_then_reuses_without_the_hub(tmp_path, hub, tiny_models):
    src = source(tmp_path)
    local = ensure_local(src, "MODEL", str(tmp_path / "cache"), backoff=0.01)
    assert local.downloaded and local.revision == hub.repo_sha(MODEL_REPO)
    assert same_files(tiny_models[0], Path(local.path))
    marker = json.loads((Path(local.path) / MARKER).read_text())
    assert marker["repo"] == MODEL_REPO and marker["commit"] == local.revision
    hub.clear_log()
    again = ensure_local(src, "MODEL", str(tmp_path / "cache"))
    assert not again.downloaded and again.revision == local.revision
    assert hub.log == []  # a complete folder never asks the hub


def test_pinned_revision_and_a_changed_pin_downloads_again(tmp_path, hub):
    sha = hub.repo_sha(MODEL_REPO)
    pinned = ensure_local(source(tmp_path, revision=sha), "MODEL", str(tmp_path / "cache"))
    assert pinned.revision == sha
    hub.clear_log()
    with pytest.raises(WorkerError) as info:
        ensure_local(source(tmp_path, revision="0" * 40), "MODEL", str(tmp_path / "cache"), attempts=1)
    assert info.value.code == "model_unavailable" and "MODEL_REVISION" in info.value.message


def test_runpod_cache_layout_is_used_when_present(tmp_path, hub, tiny_models):
    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--bosonai--higgs-audio-v2-generation-3B-base" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_models[0], snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    local = ensure_local(source(tmp_path), "MODEL", str(cache))
    assert local.path == str(snapshot) and local.revision == "a" * 40
    assert hub.log == []


def test_folder_filled_by_hand_is_used(tmp_path, tiny_models, hub):
    src = source(tmp_path)
    shutil.copytree(tiny_models[0], src.path)
    local = ensure_local(src, "MODEL", str(tmp_path / "cache"))
    assert local.revision == "local" and hub.log == []


def test_gated_repo_needs_the_token_and_never_shows_it(tmp_path, hub, monkeypatch):
    hub.set_auth(TOKEN)
    with pytest.raises(WorkerError) as info:
        ensure_local(source(tmp_path), "MODEL", str(tmp_path / "cache"), attempts=1)
    assert info.value.code == "model_unavailable" and "HF_TOKEN" in info.value.message
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    local = ensure_local(source(tmp_path), "MODEL", str(tmp_path / "cache"), attempts=1)
    assert local.downloaded and TOKEN not in json.dumps(json.loads((Path(local.path) / MARKER).read_text()))


def test_server_errors_are_retried_then_succeed(tmp_path, hub):
    hub.fail_next(2, status=503)
    local = ensure_local(source(tmp_path), "MODEL", str(tmp_path / "cache"), attempts=4, backoff=0.01)
    assert local.downloaded
    assert len([r for r in hub.log if r.status == 503]) == 2


@pytest.mark.parametrize("mode", ["close", "reset"])
def test_connection_cut_mid_file_recovers(tmp_path, hub, mode):
    """huggingface_hub retries a clean close itself (from byte 0 below 10 MiB); a reset is
    not retried by it and reaches the worker's own retry loop."""
    hub.drop_after_bytes("model.safetensors", 100_000, times=1, mode=mode)
    local = ensure_local(source(tmp_path), "MODEL", str(tmp_path / "cache"), attempts=4, backoff=0.01)
    served = (hub_root_of(hub) / MODEL_REPO / "model.safetensors").read_bytes()
    assert (Path(local.path) / "model.safetensors").read_bytes() == served
    gets = hub.downloads("model.safetensors")
    assert len(gets) >= 2  # the cut transfer and its continuation


def hub_root_of(hub) -> Path:
    return Path(hub.root)


def test_unreachable_hub_is_model_unavailable_and_next_job_retries(tmp_path, monkeypatch, hub_root, tiny_models):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    env = {
        "MODEL_PATH": str(tmp_path / "m"),
        "TOKENIZER_PATH": str(tmp_path / "t"),
        "DEVICE": "cpu",
        "RUNPOD_HF_CACHE_DIR": str(tmp_path / "c"),
        "MODEL_DOWNLOAD_ATTEMPTS": "2",
        "MODEL_DOWNLOAD_BACKOFF_SECONDS": "0.01",
    }
    worker = Worker(Settings.from_env(env))
    out = worker.run({"input": {"text": "Hi."}}).as_output()
    assert list(out) == ["error"] and out["error"].startswith("model_unavailable: MODEL_REPO=")
    with HubServer(hub_root) as server:  # the hub is back: the same worker recovers
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        out = worker.run({"input": {"text": "Hi.", "seed": 1, "max_new_tokens": 20}}).as_output()
    assert "audio_base64" in out, out
    assert out["model"]["revision"] == server.repo_sha(MODEL_REPO)
    assert out["timings"]["download_s"] > 0 and out["timings"]["load_s"] > 0


def test_legacy_checkpoint_is_refused_naming_the_variable(tmp_path, hub_root, hub):
    config = hub_root / MODEL_REPO / "config.json"
    data = json.loads(config.read_text())
    data["model_type"] = "higgs_audio"
    config.write_text(json.dumps(data))
    local = ensure_local(source(tmp_path), "MODEL", str(tmp_path / "cache"))
    with pytest.raises(WorkerError) as info:
        check_format(local, "higgs_audio_v2", "MODEL")
    assert info.value.code == "model_unavailable"
    assert "MODEL_REPO" in info.value.message and "legacy" in info.value.message


DOWNLOAD_SCRIPT = """
import json, sys
from higgs_worker.contract.config import ModelSource
from higgs_worker.model.model_store import ensure_local
src = ModelSource(repo=sys.argv[1], revision="main", path=sys.argv[2])
local = ensure_local(src, "MODEL", sys.argv[3], backoff=0.01)
print(json.dumps({"revision": local.revision, "downloaded": local.downloaded}))
"""


def start_downloader(hub, tmp_path, name: str) -> subprocess.Popen:
    env = hub.env(tmp_path / f"hf-home-{name}", base={**os.environ, "PYTHONPATH": str(ROOT)})
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            DOWNLOAD_SCRIPT,
            MODEL_REPO,
            str(tmp_path / "volume" / "model"),
            str(tmp_path / "cache"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_three_workers_at_once_download_once_and_all_succeed(tmp_path, hub):
    hub.delay_seconds("model.safetensors", 1.5)  # keep the first download in flight while the others arrive
    procs = [start_downloader(hub, tmp_path, str(i)) for i in range(3)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["downloaded"] for r in results) == 1
    assert {r["revision"] for r in results} == {hub.repo_sha(MODEL_REPO)}
    assert len([r for r in hub.downloads("model.safetensors") if r.status in (200, 206)]) == 1


@pytest.mark.slow
def test_worker_killed_mid_download_leaves_nothing_loadable_and_next_finishes(tmp_path, hub):
    hub.delay_seconds("model.safetensors", 60, after_bytes=50_000)
    victim = start_downloader(hub, tmp_path, "victim")
    deadline = time.time() + 60
    while not hub.downloads("model.safetensors") and time.time() < deadline:
        time.sleep(0.1)
    assert hub.downloads("model.safetensors"), "the download never started"
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    folder = tmp_path / "volume" / "model"
    assert not (folder / MARKER).exists()
    assert not (folder / "model.safetensors").exists()  # only huggingface_hub's .incomplete file
    hub.release_delays()
    hub.clear_faults()
    survivor = start_downloader(hub, tmp_path, "survivor")
    out, err = survivor.communicate(timeout=180)
    assert survivor.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["downloaded"] is True
    assert (folder / MARKER).exists()
    served = (Path(hub.root) / MODEL_REPO / "model.safetensors").read_bytes()
    assert (folder / "model.safetensors").read_bytes() == served
