"""Queue-mode stream items stay within RunPod's result limits, whatever the job's length.

The long job runs on a copy of the tiny model whose stream-eos id is moved out of the
codebook's reach (as higgs_worker/devtools/bench.py does in-process), so it never ends a segment on
its own: ``max_new_tokens`` then fixes the audio's length exactly (25 frames a second).
"""

from __future__ import annotations

import base64
import io
import json
import shutil

import numpy as np
import pytest
import requests
import soundfile as sf

from higgs_worker.audio.stream_items import StreamItems
from tests.support.api_server import rp_serve_api

FRAME_RATE = 25
TEN_MINUTES = 600
RUNPOD_RUN_LIMIT = 10_000_000  # the smaller of RunPod's result limits (/run: 10 MB, /runsync: 20 MB)


def test_items_are_complete_opus_files_and_stop_at_the_budget():
    items: list[dict] = []
    count = {"n": 0, "bytes": 0}
    stream = StreamItems(items.append, count, budget=60_000)
    rng = np.random.default_rng(0)
    # as the streaming decoder hands them out: 0.4 s (one Ogg page), 1.6 s, a 0.04 s tail
    sizes = [9_600] + [38_400] * 18 + [960]
    pieces = [(0.2 * rng.standard_normal(size)).astype(np.float32) for size in sizes]
    for piece in pieces:
        stream(piece)
    audio = [item for item in items if "chunk" in item]
    assert 0 < len(audio) < len(pieces)  # the budget cut the stream short
    assert items[-1] == {"notice": items[-1]["notice"]} and "stream_budget" in items[-1]["notice"]
    assert sum(len(item["audio_base64"]) for item in audio) <= 60_000
    assert count["n"] == len(audio) and count["bytes"] >= sum(len(item["audio_base64"]) for item in audio)
    for item, piece in zip(audio, pieces, strict=False):
        decoded, rate = sf.read(io.BytesIO(base64.b64decode(item["audio_base64"])), dtype="float32")
        assert rate == 24000 and len(decoded) == len(piece)


@pytest.fixture(scope="module")
def endless_model(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("endless") / "model"
    shutil.copytree(tiny_models[0], folder)
    config = json.loads((folder / "config.json").read_text())
    config["audio_stream_eos_id"] = config["codebook_size"] + 100  # never sampled: no early end
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.slow
def test_ten_minute_streamed_job_keeps_the_aggregate_under_the_limit(subprocess_env, endless_model):
    """About 4 minutes on 2 CPU cores: 15,000 decoding steps of the tiny model."""
    frames = TEN_MINUTES * FRAME_RATE
    env = {
        **subprocess_env,
        "MODEL_PATH": str(endless_model),
        "STREAM_JOBS": "true",
        "PRELOAD_MODELS": "true",
        "MAX_NEW_TOKENS": str(frames + 100),
    }
    job_input = {
        "text": "Hello there.",
        "seed": 1,
        "stream": True,
        "max_new_tokens": frames + 7,
        "delivery": "base64",
        "output_format": "opus",
    }
    with rp_serve_api(env) as (url, _proc):
        response = requests.post(f"{url}/runsync", json={"input": job_input}, timeout=1500)
    body = response.json()
    assert body["status"] == "COMPLETED", str(body)[:2000]
    items, result = body["output"][:-1], body["output"][-1]
    assert result["duration_s"] == pytest.approx(TEN_MINUTES, abs=0.5)  # really ten minutes of audio
    assert len(response.content) < RUNPOD_RUN_LIMIT, len(response.content)  # the aggregate, every item in it
    assert all("chunk" in item for item in items) and len(items) > 300  # all streamed: no budget cut at 10 min
    streamed_seconds = (
        sum(len(sf.read(io.BytesIO(base64.b64decode(item["audio_base64"])))[0]) for item in items) / 24000
    )
    assert streamed_seconds == pytest.approx(result["duration_s"], abs=0.05)
    final, rate = sf.read(io.BytesIO(base64.b64decode(result["audio_base64"])))
    assert rate == 24000 and len(final) / rate == pytest.approx(TEN_MINUTES, abs=0.5)
    print(f"\n10-minute streamed job: {len(items)} items, aggregate {len(response.content) / 1e6:.2f} MB")
