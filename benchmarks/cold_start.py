"""Worker cold start and per-job overhead, on the tiny model and the CPU (figures, no asserts).

    python benchmarks/cold_start.py [--jobs 8] [--narration-jobs 4]
    python benchmarks/cold_start.py --phases [--full-size-random]   # start phases: benchmarks/start_phases.py

A fresh Python process plays a new worker: import (torch, transformers, runpod SDK,
the worker), download of both repos from a local hub server (huggingface_hub's real
code, tests/support/hub_server.py), load, and the first job; then more jobs measure
the time spent outside generation (validation, encode, delivery) as a share of each
job, for inline (base64) and S3 (moto) delivery. Prints a table and a JSON line.

Narration section (``--narration-jobs``, 0 = off): pairs of the same job (same seed,
three chunks) without and with ``subtitles`` + ``loudness_lufs``; the overhead is the
difference of their time outside generation (encode + upload: render, loudness,
subtitles, the subtitle upload) as a share of the job's total, per delivery. Segments
are in every result: their own cost is timed apart (``narration.render`` without
options against the bare resample it replaced, on the same synthesis).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import torch, transformers, runpod  # noqa: F401  the runtime a worker imports
from higgs_worker.contract.config import Settings
from higgs_worker.jobs import Timer, Worker
from higgs_worker.contract.schema import parse_request
t_import = time.perf_counter() - t0
worker = Worker(Settings.from_env())
timer = Timer(); worker.ensure_engine(timer); split = timer.summary()
job = {"text": "Hello there, this is the first job of a new worker.", "seed": 1, "max_new_tokens": 120}
t = time.perf_counter(); first = worker.run({"id": "first", "input": job}).as_output()
t_first_job = time.perf_counter() - t
rows = []
for delivery in ("base64", "s3"):
    for i in range(int(os.environ["BENCH_JOBS"])):
        inp = {**job, "seed": i, "delivery": delivery, "output_format": "mp3"}
        t = time.perf_counter(); parse_request(inp, worker.settings); validate = time.perf_counter() - t
        out = worker.run({"id": f"j{i}", "input": inp}).as_output()
        assert "error" not in out, out
        rows.append({"delivery": delivery, "validate_s": validate, **out["timings"]})
narration_rows, segments = [], {}
if int(os.environ.get("BENCH_NARRATION_JOBS", "0")):
    from higgs_worker.audio import codecs as audio_codec
    from higgs_worker import narration
    from higgs_worker.synthesis import build_voice_setup, synthesize
    story = {"text": "The harbour was quiet before dawn. A gull called once from the breakwater. "
                     "Then the bell rang and the boats went out.", "chunk_method": "word", "chunk_max_words": 8,
             "max_new_tokens": 60, "output_format": "mp3"}
    options = {"subtitles": "vtt", "loudness_lufs": -16}
    for delivery in ("base64", "s3"):
        for i in range(int(os.environ["BENCH_NARRATION_JOBS"])):
            pair = {}
            for kind, extra in (("plain", {}), ("narration", options)):
                job_input = {**story, **extra, "seed": 100 + i, "delivery": delivery}
                out = worker.run({"id": f"n{i}", "input": job_input}).as_output()
                assert "error" not in out, out
                pair[kind] = out["timings"]
            narration_rows.append({"delivery": delivery, "audio_s": out["duration_s"], **pair})
    prepared = worker.prepare({**story, "seed": 1})
    request = prepared.request
    setup = build_voice_setup(request, prepared.voices.resolver(worker.engine, worker.voice_clips))
    result = synthesize(worker.engine, request, setup, 1000)
    for name, fn in (("render", lambda: narration.render(result, request)),
                     ("resample", lambda: audio_codec.resample(result.audio, result.sample_rate, request.sample_rate))):
        fn(); t = time.perf_counter()
        for _ in range(50):
            fn()
        segments[name] = (time.perf_counter() - t) / 50
    segments["chunks"] = len(result.chunks)
print(json.dumps({"import_s": t_import, "download_s": split["download_s"], "load_s": split["load_s"],
                  "first_job_s": t_first_job,
                  "first_job_timings": first["timings"], "jobs": rows,
                  "narration": narration_rows, "segments": segments}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--narration-jobs", type=int, default=4, help="job pairs for the narration overhead; 0 = off")
    parser.add_argument("--phases", action="store_true", help="start phases, cold and warm compile cache")
    args, _ = parser.parse_known_args()
    if args.phases:  # benchmarks/start_phases.py (--full-size-random: the GPU variant)
        sys.path.insert(0, str(Path(__file__).parent))
        from start_phases import main as phases

        return phases(sys.argv[1:])
    sys.path.insert(0, str(ROOT))
    from moto.server import ThreadedMotoServer

    from higgs_worker.devtools.tiny_model import build
    from tests.support.hub_server import HubServer

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir, tokenizer_dir = build(work / "built")
        shutil.copytree(model_dir, work / "hub" / "bosonai" / "higgs-audio-v2-generation-3B-base")
        shutil.copytree(tokenizer_dir, work / "hub" / "bosonai" / "higgs-audio-v2-tokenizer")
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        s3_url = f"http://127.0.0.1:{moto._server.server_port}"
        creds = {
            "AWS_ACCESS_KEY_ID": "bench-access-key",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        import boto3

        boto3.client(
            "s3",
            endpoint_url=s3_url,
            **{k.lower(): v for k, v in creds.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")
        with HubServer(work / "hub") as hub:
            env = hub.env(work / "hf-home", base={**os.environ, **creds})
            env.update(
                {
                    "PYTHONPATH": str(ROOT),
                    "BENCH_JOBS": str(args.jobs),
                    "DEVICE": "cpu",
                    "BENCH_NARRATION_JOBS": str(args.narration_jobs),
                    "MODEL_PATH": str(work / "volume" / "model"),
                    "TOKENIZER_PATH": str(work / "volume" / "tok"),
                    "RUNPOD_HF_CACHE_DIR": str(work / "none"),
                    "S3_BUCKET": "bench",
                    "S3_ENDPOINT_URL": s3_url,
                    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                }
            )
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=900)
            wall = time.perf_counter() - start
        moto.stop()
    if proc.returncode != 0:
        sys.exit(proc.stderr[-4000:])
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    first = data["first_job_timings"]
    result = {
        "process_wall_s": round(wall, 3),
        "import_s": round(data["import_s"], 3),
        "download_s": data["download_s"],
        "load_s": data["load_s"],
        "first_job_s": round(data["first_job_s"], 3),
        "first_job_generate_s": first["generate_s"],
    }
    for delivery in ("base64", "s3"):
        rows = [r for r in data["jobs"] if r["delivery"] == delivery]
        shares = [(r["total_s"] - r["generate_s"]) / r["total_s"] for r in rows]
        result[f"{delivery}_job_total_s_median"] = round(statistics.median(r["total_s"] for r in rows), 4)
        result[f"{delivery}_generate_s_median"] = round(statistics.median(r["generate_s"] for r in rows), 4)
        result[f"{delivery}_validate_ms_median"] = round(1000 * statistics.median(r["validate_s"] for r in rows), 3)
        result[f"{delivery}_encode_ms_median"] = round(1000 * statistics.median(r["encode_s"] for r in rows), 3)
        result[f"{delivery}_upload_ms_median"] = round(1000 * statistics.median(r["upload_s"] for r in rows), 3)
        result[f"{delivery}_overhead_share_median"] = round(statistics.median(shares), 4)
    result.update(narration_figures(data))
    for key, value in result.items():
        print(f"{key:<44}{value}")
    print(json.dumps(result))


def narration_figures(data: dict) -> dict:
    """Overhead of subtitles + loudness (job pairs) and of segments (timed apart)."""
    out: dict = {}
    if data.get("segments"):
        seg = data["segments"]
        out["segments_ms_per_job"] = round(1000 * (seg["render"] - seg["resample"]), 3)
        out["segments_chunks"] = seg["chunks"]
    for delivery in ("base64", "s3"):
        pairs = [r for r in data.get("narration", []) if r["delivery"] == delivery]
        if not pairs:
            continue

        def outside(t: dict) -> float:
            return t["encode_s"] + t["upload_s"]

        extra = [outside(p["narration"]) - outside(p["plain"]) for p in pairs]
        share = [e / p["narration"]["total_s"] for e, p in zip(extra, pairs, strict=True)]
        prefix = f"narration_{delivery}"
        out[f"{prefix}_plain_total_s_median"] = round(statistics.median(p["plain"]["total_s"] for p in pairs), 4)
        out[f"{prefix}_total_s_median"] = round(statistics.median(p["narration"]["total_s"] for p in pairs), 4)
        out[f"{prefix}_audio_s_median"] = round(statistics.median(p["audio_s"] for p in pairs), 3)
        out[f"{prefix}_overhead_ms_median"] = round(1000 * statistics.median(extra), 3)
        out[f"{prefix}_overhead_ms_per_audio_s"] = round(
            1000 * statistics.median(e / p["audio_s"] for e, p in zip(extra, pairs, strict=True)), 3
        )
        out[f"{prefix}_overhead_share_median"] = round(statistics.median(share), 4)
        # against the job's own time outside generation, the ratio measured in the same run
        base = statistics.median(outside(p["plain"]) for p in pairs)
        out[f"{prefix}_outside_generation_ratio"] = (
            round(statistics.median(outside(p["narration"]) for p in pairs) / base, 2) if base > 0 else None
        )
    return out


if __name__ == "__main__":
    main()
