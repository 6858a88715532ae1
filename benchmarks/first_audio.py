"""Time to first audio byte: HTTP streaming vs the queue's /stream vs a full response (figures, no asserts).

    python benchmarks/first_audio.py [--seconds 20] [--runs 3]

Same run, same text, same seed, same length: a copy of the tiny model whose stream-eos id
is out of reach generates exactly ``--seconds`` of audio on the CPU for every request.
Two worker processes are started from handler.py:

- HTTP mode (``WORKER_MODE=http``): ``POST /v1/audio/speech`` (pcm, streamed body): the
  time to its first body byte, and to its end;
- the runpod SDK's local API with ``STREAM_JOBS=true`` (``--rp_serve_api``): ``/run`` then
  ``POST /stream/{id}``; the SDK's local simulation answers /stream only once the job has
  finished (on RunPod, /stream polls see items as they are posted, plus the polling delay);
- the full non-streamed response: ``POST /v1/synthesize`` (the queue contract over HTTP,
  inline wav), which answers when the whole audio is encoded.

Prints a table (medians over ``--runs``) with each figure's ratio to the HTTP stream's first
byte, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TEXT = "Hello there, this is the benchmark sentence for the first audio byte."


def endless_tiny_model(folder: Path) -> tuple[Path, Path]:
    from higgs_worker.devtools.tiny_model import build

    model, tokenizer = build(folder / "tiny")
    endless = folder / "endless"
    shutil.copytree(model, endless)
    config = json.loads((endless / "config.json").read_text())
    config["audio_stream_eos_id"] = config["codebook_size"] + 100  # no early end: a fixed length
    (endless / "config.json").write_text(json.dumps(config))
    return endless, tokenizer


def http_stream(url: str, job: dict) -> tuple[float, float]:
    body = {"model": "higgs-audio-v2", "input": TEXT, "voice": "auto", "response_format": "pcm", **job}
    start = time.perf_counter()
    first = None
    with requests.post(f"{url}/v1/audio/speech", json=body, stream=True, timeout=900) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=None):
            if chunk and first is None:
                first = time.perf_counter() - start
    return first, time.perf_counter() - start


def http_full(url: str, job: dict) -> float:
    start = time.perf_counter()
    response = requests.post(
        f"{url}/v1/synthesize", json={"input": {"text": TEXT, "delivery": "base64", **job}}, timeout=900
    )
    response.raise_for_status()
    assert response.json()["audio_base64"]
    return time.perf_counter() - start


def queue_stream(url: str, job: dict) -> float:
    start = time.perf_counter()
    run = requests.post(
        f"{url}/run", json={"input": {"text": TEXT, "stream": True, "delivery": "base64", **job}}, timeout=60
    ).json()
    body = requests.post(f"{url}/stream/{run['id']}", timeout=900).json()
    assert body["status"] == "COMPLETED" and "chunk" in body["stream"][0]["output"], str(body)[:500]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio length of every request")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support.api_server import rp_serve_api
    from tests.support.http_server import http_worker

    frames = round(args.seconds * 25)
    job = {"seed": 1, "max_new_tokens": frames + 7}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, tokenizer = endless_tiny_model(folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "BUCKET_", "HF_"))}
        env.update(
            {
                "MODEL_PATH": str(model),
                "TOKENIZER_PATH": str(tokenizer),
                "DEVICE": "cpu",
                "VOICES_DIR": str(folder / "voices"),
                "RUNPOD_HF_CACHE_DIR": str(folder / "hf"),
                "HF_HUB_OFFLINE": "1",
                "PYTHONPATH": str(ROOT),
                "PRELOAD_MODELS": "true",
            }
        )
        rows: dict[str, list[float]] = {
            "http_stream_first_byte_s": [],
            "http_stream_total_s": [],
            "queue_stream_first_audio_s": [],
            "full_response_s": [],
        }
        with http_worker(env, folder / "http.log") as http, rp_serve_api({**env, "STREAM_JOBS": "true"}) as (api, _):
            warm = {"seed": 1, "max_new_tokens": 20}
            http_stream(http.url, warm), http_full(http.url, warm), queue_stream(api, warm)
            for _ in range(args.runs):  # interleaved, so that load on the machine hits all alike
                first, total = http_stream(http.url, job)
                rows["http_stream_first_byte_s"].append(first)
                rows["http_stream_total_s"].append(total)
                rows["queue_stream_first_audio_s"].append(queue_stream(api, job))
                rows["full_response_s"].append(http_full(http.url, job))
    medians = {key: statistics.median(values) for key, values in rows.items()}
    base = medians["http_stream_first_byte_s"]
    print(f"time to first audio, {args.seconds:g} s of audio, tiny model on the CPU, median of {args.runs}:")
    for key, value in medians.items():
        print(f"  {key:32s} {value:8.3f} s   x{value / base:6.1f} of the HTTP stream's first byte")
    print(
        json.dumps(
            {
                "audio_s": args.seconds,
                "runs": args.runs,
                "medians": medians,
                "all": rows,
                "ratio_to_http_first_byte": {k: v / base for k, v in medians.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
