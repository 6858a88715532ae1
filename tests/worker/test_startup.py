"""What a worker does before its first job (higgs_worker/startup.py, handler.py's main).

The tiny model on the CPU (plain decode step; the compiled step and its cache are
tests/model/test_compile_cache.py's). The empty-volume cases download from the local hub
server (tests/support/hub_server.py) through huggingface_hub's real code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from higgs_worker.contract.config import Settings
from higgs_worker.jobs import Worker
from higgs_worker.model.model_store import MARKER
from higgs_worker.startup import process_age_s, warm_start
from tests.conftest import BUCKET, FAKE_AWS
from tests.support.handler_runs import job_result, run_test_input
from tests.support.hub_server import HubServer

MODEL_REPO = "bosonai/higgs-audio-v2-generation-3B-base"
TOKENIZER_REPO = "bosonai/higgs-audio-v2-tokenizer"
JOB = {"id": "first", "input": {"text": "Hello there.", "seed": 1, "max_new_tokens": 20}}


def worker_for(env: dict) -> Worker:
    return Worker(Settings.from_env({"DEVICE": "cpu", **env}))


def test_model_on_the_volume_is_loaded_and_warmed_up_before_the_first_job(tiny_models, voices_dir, tmp_path):
    worker = worker_for(
        {
            "MODEL_PATH": str(tiny_models[0]),
            "TOKENIZER_PATH": str(tiny_models[1]),
            "VOICES_DIR": str(voices_dir),
            "RUNPOD_HF_CACHE_DIR": str(tmp_path / "none"),
        }
    )
    phases = warm_start(worker)
    assert phases["warm"] and worker.engine is not None
    # the model is only checked on the volume, not downloaded (a marker read: ~0 s, 0.001 s on a loaded machine)
    assert phases["load_s"] > 0 and phases["warmup_s"] > 0 and phases["download_s"] < 0.25
    assert phases["compile_cache"] == "off"  # the CPU's plain step compiles nothing
    assert phases["peak_rss_mb"] > 0 and phases["ready_s"] >= phases["imports_s"] > 0
    timings = worker.run(JOB).as_output()["timings"]
    assert timings["download_s"] == 0 and timings["load_s"] == 0 and timings["warmup_s"] == 0
    assert timings["generate_s"] > 0


@pytest.fixture
def hub(tmp_path, tiny_models, monkeypatch):
    root = tmp_path / "hub"
    shutil.copytree(tiny_models[0], root / MODEL_REPO)
    shutil.copytree(tiny_models[1], root / TOKENIZER_REPO)
    with HubServer(root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        yield server


def empty_volume_env(tmp_path: Path, voices_dir: Path) -> dict:
    volume = tmp_path / "volume"
    return {
        "MODEL_PATH": str(volume / MODEL_REPO),
        "TOKENIZER_PATH": str(volume / TOKENIZER_REPO),
        "VOICES_DIR": str(voices_dir),
        "RUNPOD_HF_CACHE_DIR": str(tmp_path / "none"),
    }


def test_empty_volume_is_still_filled_by_the_first_job(hub, tmp_path, voices_dir):
    worker = worker_for(empty_volume_env(tmp_path, voices_dir))
    phases = warm_start(worker)
    assert phases["warm"] is False and worker.engine is None
    assert hub.log == []  # nothing asked of the hub at start
    output = worker.run(JOB).as_output()
    assert "error" not in output, output
    timings = output["timings"]
    assert timings["download_s"] > 0 and timings["load_s"] > 0 and timings["warmup_s"] > 0
    assert hub.log and (tmp_path / "volume" / MODEL_REPO / MARKER).is_file()


def test_preload_downloads_at_start_on_an_empty_volume(hub, tmp_path, voices_dir):
    worker = worker_for({**empty_volume_env(tmp_path, voices_dir), "PRELOAD_MODELS": "true"})
    phases = warm_start(worker)
    assert phases["warm"] and phases["download_s"] > 0 and hub.log
    assert worker.run(JOB).as_output()["timings"]["download_s"] == 0


def test_process_age_counts_from_process_start():
    age = process_age_s()
    assert age is not None and age > 0


@pytest.mark.slow
def test_handler_warms_up_before_it_takes_a_job_when_the_model_is_on_the_volume(subprocess_env, moto_server):
    assert "PRELOAD_MODELS" not in subprocess_env  # no preload asked: the model is simply there
    # S3 delivery keeps the printed result under the SDK's 4096-character log line
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}
    proc = run_test_input(env, {"text": "Hello there.", "seed": 1, "max_new_tokens": 20})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    timings = job_result(proc.stdout)["output"]["timings"]
    assert timings["load_s"] == 0 and timings["warmup_s"] == 0
    assert proc.stdout.index("worker ready") < proc.stdout.index("Started.")
