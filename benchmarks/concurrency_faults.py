"""Faults under concurrent load, measured (figures, no asserts): a voice replaced while jobs use
it, bad input while every slot is busy, a stalled reference URL and a hanging S3 beside plain jobs.

    python benchmarks/concurrency_faults.py [--worker-root PATH] [--only race,refusal,url,s3,queue,memory]

The worker under test is ``handler.py`` of ``--worker-root`` (default: this checkout), started as
a process with the tiny random-weight model on the CPU: HTTP mode (``WORKER_MODE=http``) for
every section but ``queue``, which runs the runpod SDK's real worker loop against the fake
control plane of tests/support/fake_runpod.py. Everything else (the clients, the model files,
the stalling server of tests/support/hostile_servers.py, moto's S3 server behind
tests/support/s3_proxy.py) comes from this checkout, so running it once with
``--worker-root`` at older code and once without gives a before/after pair measured the same way.

Sections:

- ``race``: MAX_CONCURRENCY=4; a voice ``vx`` is replaced (POST /v1/audio/voices) between two
  clips, each with its own transcript, as fast as the uploads go for as long as ``--race-jobs``
  jobs use it. Each job's audio is compared with the audio of each whole version and of the two mixed
  pairs (clip of one, transcript of the other, sent as reference_audio): "mixed" counts jobs
  that got a mixed pair, "other" jobs that match nothing.
- ``refusal``: MAX_CONCURRENCY=1, ``--busy`` long jobs in flight; then bad requests at once
  (an unknown field, bad base64, a metadata-address URL, an unknown voice): seconds to their 400.
- ``url``: MAX_CONCURRENCY=1; a job whose reference URL never answers, then plain jobs one
  after another: their seconds vs the same plain job alone.
- ``s3``: MAX_CONCURRENCY=2; two jobs whose S3 upload hangs (S3_TIMEOUT_SECONDS x S3_ATTEMPTS),
  then four plain inline jobs at once: their seconds vs alone.
- ``queue``: the ``url`` case on the runpod SDK's loop (concurrency_modifier), MAX_CONCURRENCY=1.
- ``memory``: MAX_CONCURRENCY=1, IO_JOBS=``--io-jobs``; the worker's RSS while jobs hold reference
  downloads stalled at 24 MB (and how many get that far), then while finished results of
  ``--memory-audio-seconds`` wait on a hanging S3 upload: host memory a job outside generation holds.

Prints one table a section and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PLAIN = {"text": "Hello there.", "seed": 1, "max_new_tokens": 40, "delivery": "base64", "output_format": "pcm"}
TRANSCRIPTS = ("The sun rises in the east.", "A different sentence, said by the second clip of the voice.")
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "FAKE-ACCESS-KEY-ID-1",
    "AWS_SECRET_ACCESS_KEY": "bench-secret-key-0123456789",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def clip(freq: float, seconds: float) -> bytes:
    """A 24 kHz mono 16-bit WAV: what the voice upload stores, so base64 of it gives the same samples."""
    t = np.arange(int(seconds * 24000)) / 24000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def worker_env(model: Path, tokenizer: Path, work: Path, root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "BUCKET_", "HF_"))}
    env.update(
        {
            "MODEL_PATH": str(model),
            "TOKENIZER_PATH": str(tokenizer),
            "DEVICE": "cpu",
            "VOICES_DIR": str(work / "voices"),
            "RUNPOD_HF_CACHE_DIR": str(work / "hf"),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(root),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def synth(url: str, job_input: dict, timeout: float = 600) -> tuple[float, int, dict]:
    start = time.perf_counter()
    response = requests.post(f"{url}/v1/synthesize", json={"input": job_input}, timeout=timeout)
    return time.perf_counter() - start, response.status_code, response.json()


def pcm(output: dict) -> bytes:
    if "audio_base64" not in output:
        raise RuntimeError(f"no audio: {str(output)[:300]}")
    return base64.b64decode(output["audio_base64"])


def upload(url: str, name: str, data: bytes, transcript: str) -> None:
    response = requests.post(
        f"{url}/v1/audio/voices",
        data={"name": name, "transcript": transcript},
        files={"file": (f"{name}.wav", data, "audio/wav")},
        timeout=60,
    )
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:300]}")


# -- sections ---------------------------------------------------------------------------------


def race(args, env: dict, work: Path) -> dict:
    from tests.support.http_server import http_worker

    clips = (clip(220.0, 1.5), clip(330.0, 1.2))
    job = {"text": "Hello there.", "voice": "vx", "seed": 7, "max_new_tokens": args.race_tokens}
    job.update({"delivery": "base64", "output_format": "pcm"})
    with http_worker({**env, "MAX_CONCURRENCY": "4"}, work / "race.log", root=args.worker_root) as worker:
        known = {}
        for version in (0, 1):
            upload(worker.url, "vx", clips[version], TRANSCRIPTS[version])
            known[f"version {'AB'[version]}"] = pcm(synth(worker.url, job)[2])
        for audio, text in ((0, 1), (1, 0)):
            mixed = {k: v for k, v in job.items() if k != "voice"}
            mixed["reference_audio"] = {
                "base64": base64.b64encode(clips[audio]).decode(),
                "transcript": TRANSCRIPTS[text],
            }
            known[f"mixed: clip {'AB'[audio]} + text {'AB'[text]}"] = pcm(synth(worker.url, mixed)[2])
        distinct = len(set(known.values())) == len(known)
        stop, replaced = threading.Event(), [0]

        def replace() -> None:  # for as long as the jobs run
            while not stop.is_set():
                version = replaced[0] % 2
                upload(worker.url, "vx", clips[version], TRANSCRIPTS[version])
                replaced[0] += 1

        writer = threading.Thread(target=replace)
        writer.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: synth(worker.url, job)[2], range(args.race_jobs)))
        elapsed = time.perf_counter() - start
        stop.set()
        writer.join()
    by_audio = {audio: label for label, audio in known.items()}
    counts: dict[str, int] = {}
    for output in results:
        label = by_audio.get(pcm(output), "other") if "audio_base64" in output else "error"
        counts[label] = counts.get(label, 0) + 1
    mixed = sum(n for label, n in counts.items() if label.startswith("mixed"))
    print(
        f"race: {args.race_jobs} jobs (MAX_CONCURRENCY=4) in {elapsed:.1f}s while vx was replaced {replaced[0]} times"
    )
    print(f"  the four known audios distinct: {distinct}")
    for label in [*known, "other", "error"]:
        print(f"  {label:30s} {counts.get(label, 0):4d}")
    print(f"  => mixed pairs: {mixed} of {args.race_jobs}")
    return {"jobs": args.race_jobs, "replacements": replaced[0], "counts": counts, "mixed": mixed, "distinct": distinct}


def refusal(args, env: dict, work: Path) -> dict:
    from tests.support.http_server import http_worker

    frames = round(args.busy_seconds * 25)
    busy_job = {**PLAIN, "max_new_tokens": frames}
    metadata = "http://169.254.169.254/latest/meta-data/iam/"
    bad = {
        "synthesize: unknown field": ("/v1/synthesize", {"input": {"text": "x", "nope": 1}}),
        "synthesize: bad base64": ("/v1/synthesize", {"input": {"text": "x", "reference_audio": {"base64": "@@@"}}}),
        "synthesize: metadata URL": ("/v1/synthesize", {"input": {"text": "x", "reference_audio": {"url": metadata}}}),
        "synthesize: unknown voice": ("/v1/synthesize", {"input": {"text": "x", "voice": "nobody"}}),
    }
    speech = {"model": "higgs-audio-v2", "input": "x", "response_format": "pcm"}
    bad["speech: bad base64"] = ("/v1/audio/speech", {**speech, "reference_audio": {"base64": "@@@"}})
    bad["speech: metadata URL"] = ("/v1/audio/speech", {**speech, "reference_audio": {"url": metadata}})
    with http_worker({**env, "MAX_CONCURRENCY": "1"}, work / "refusal.log", root=args.worker_root) as worker:
        synth(worker.url, {**PLAIN, "max_new_tokens": 10})  # warm
        busy_done: list[float] = []
        start = time.perf_counter()

        def busy(i: int) -> None:
            synth(worker.url, {**busy_job, "seed": 100 + i})
            busy_done.append(time.perf_counter() - start)

        threads = [threading.Thread(target=busy, args=(i,)) for i in range(args.busy)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the busy jobs hold the slot(s)

        def refuse(item) -> tuple[str, float, int]:
            label, (path, body) = item
            sent = time.perf_counter()
            response = requests.post(f"{worker.url}{path}", json=body, timeout=600)
            return label, time.perf_counter() - sent, response.status_code

        with ThreadPoolExecutor(len(bad)) as pool:
            answers = list(pool.map(refuse, bad.items()))
        for thread in threads:
            thread.join()
    print(f"refusal: MAX_CONCURRENCY=1, {args.busy} busy jobs of {args.busy_seconds:g}s of audio sent first")
    print(f"  busy jobs done after {', '.join(f'{t:.1f}' for t in sorted(busy_done))} s")
    for label, seconds, status in answers:
        print(f"  {label:30s} HTTP {status} after {seconds:7.3f} s")
    return {
        "busy_done_s": sorted(busy_done),
        "refused": {label: {"status": status, "seconds": seconds} for label, seconds, status in answers},
    }


def plain_times(url: str, n: int) -> list[float]:
    return [synth(url, PLAIN)[0] for _ in range(n)]


def stalled_url(args, env: dict, work: Path) -> dict:
    from tests.support.hostile_servers import HostileServer, stall
    from tests.support.http_server import http_worker

    extra = {
        "MAX_CONCURRENCY": "1",
        "ALLOW_PRIVATE_URLS": "true",
        "REFERENCE_URL_TIMEOUT_SECONDS": str(args.url_timeout),
    }
    with (
        HostileServer(stall(give_up_after=args.url_timeout + 30)) as server,
        http_worker({**env, **extra}, work / "url.log", root=args.worker_root) as worker,
    ):
        synth(worker.url, {**PLAIN, "max_new_tokens": 10})  # warm
        alone = plain_times(worker.url, 3)
        stalled: dict = {}

        def stalled_job() -> None:
            reference = {"url": f"{server.url}/clip.wav", "transcript": "Hi."}
            seconds, status, output = synth(worker.url, {**PLAIN, "reference_audio": reference})
            stalled.update(seconds=seconds, status=status, error=str(output.get("error", ""))[:120])

        thread = threading.Thread(target=stalled_job)
        thread.start()
        time.sleep(0.5)
        beside = plain_times(worker.url, 3)
        thread.join()
    print(f"url: MAX_CONCURRENCY=1, REFERENCE_URL_TIMEOUT_SECONDS={args.url_timeout:g}")
    print(f"  plain job alone                     {', '.join(f'{t:.2f}' for t in alone)} s")
    print(f"  plain jobs after a stalled URL job  {', '.join(f'{t:.2f}' for t in beside)} s")
    print(f"  the stalled job: HTTP {stalled.get('status')} after {stalled.get('seconds', 0):.1f} s")
    return {"alone_s": alone, "beside_stalled_url_s": beside, "stalled": stalled}


def hanging_s3(args, env: dict, work: Path) -> dict:
    from tests.support.http_server import http_worker
    from tests.support.s3_proxy import S3Proxy

    with moto_bucket("bench") as moto_url:
        with S3Proxy(moto_url) as proxy:
            extra = {
                **FAKE_AWS,
                "MAX_CONCURRENCY": "2",
                "S3_BUCKET": "bench",
                "S3_ENDPOINT_URL": proxy.url,
                "S3_TIMEOUT_SECONDS": str(args.s3_timeout),
                "S3_ATTEMPTS": str(args.s3_attempts),
            }
            with http_worker({**env, **extra}, work / "s3.log", root=args.worker_root) as worker:
                synth(worker.url, {**PLAIN, "max_new_tokens": 10})  # warm
                alone = plain_times(worker.url, 3)
                proxy.stall_seconds = 3600.0  # every S3 request now hangs until the client gives up
                hanging: list[tuple[float, int]] = []

                def s3_job(i: int) -> None:
                    seconds, status, _ = synth(worker.url, {**PLAIN, "seed": 50 + i, "delivery": "s3"})
                    hanging.append((seconds, status))

                threads = [threading.Thread(target=s3_job, args=(i,)) for i in range(2)]
                for thread in threads:
                    thread.start()
                time.sleep(0.5)
                with ThreadPoolExecutor(4) as pool:
                    beside = list(pool.map(lambda i: synth(worker.url, {**PLAIN, "seed": 10 + i})[0], range(4)))
                for thread in threads:
                    thread.join()
    print(f"s3: MAX_CONCURRENCY=2, S3_TIMEOUT_SECONDS={args.s3_timeout:g} x S3_ATTEMPTS={args.s3_attempts}")
    print(f"  plain job alone                        {', '.join(f'{t:.2f}' for t in alone)} s")
    print(f"  4 plain jobs beside 2 hanging S3 jobs  {', '.join(f'{t:.2f}' for t in sorted(beside))} s")
    print(f"  the hanging jobs: {', '.join(f'HTTP {s} after {t:.1f} s' for t, s in hanging)}")
    return {"alone_s": alone, "beside_hanging_s3_s": sorted(beside), "hanging": hanging}


def queue_loop(args, env: dict, work: Path) -> dict:
    from tests.support.fake_runpod import FakeRunPod
    from tests.support.hostile_servers import HostileServer, stall

    extra = {
        "MAX_CONCURRENCY": "1",
        "ALLOW_PRIVATE_URLS": "true",
        "REFERENCE_URL_TIMEOUT_SECONDS": str(args.url_timeout),
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "HOME": str(work),
        "PRELOAD_MODELS": "true",
    }
    with (
        HostileServer(stall(give_up_after=args.url_timeout + 30)) as server,
        FakeRunPod(hold_seconds=1.0) as fake,
        sdk_worker({**env, **extra, **fake.worker_env()}, work / "queue.log", args.worker_root),
    ):

        def run(job_input: dict) -> float:
            sent = time.perf_counter()
            job_id = fake.submit(job_input)
            result = fake.wait_result(job_id, 600).body
            if "error" in result and "reference_audio" not in job_input:
                raise RuntimeError(str(result)[:300])
            return time.perf_counter() - sent

        run({**PLAIN, "max_new_tokens": 10})  # warm (and the model is loaded)
        alone = [run(PLAIN) for _ in range(3)]
        stalled: list[float] = []
        reference = {"url": f"{server.url}/clip.wav", "transcript": "Hi."}
        thread = threading.Thread(target=lambda: stalled.append(run({**PLAIN, "reference_audio": reference})))
        thread.start()
        time.sleep(0.5)
        beside = [run(PLAIN) for _ in range(3)]
        thread.join()
    print(f"queue (SDK loop): MAX_CONCURRENCY=1, REFERENCE_URL_TIMEOUT_SECONDS={args.url_timeout:g}")
    print(f"  plain job alone (submit -> result)     {', '.join(f'{t:.2f}' for t in alone)} s")
    print(f"  plain jobs after a stalled URL job     {', '.join(f'{t:.2f}' for t in beside)} s")
    print(f"  the stalled job's result after         {stalled[0]:.1f} s")
    return {"alone_s": alone, "beside_stalled_url_s": beside, "stalled_s": stalled[0]}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def partial_then_stall(size: int, give_up_after: float):
    """``size`` bytes of a body that declares one more, then nothing: a download held at ``size``."""

    def behaviour(conn) -> None:
        conn.head("200 OK", {"Content-Type": "audio/wav", "Content-Length": str(size + 1)})
        conn.send(b"\0" * size, body=True)
        conn.wait(give_up_after)

    return behaviour


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def memory(args, env: dict, work: Path) -> dict:
    """Host memory held by jobs outside generation: stalled downloads held just under
    MAX_REFERENCE_BYTES, and finished results whose S3 upload hangs; and how many of the
    jobs sent get that far (the rest wait at the door, checked, holding only their request)."""

    from tests.support.hostile_servers import HostileServer
    from tests.support.http_server import http_worker
    from tests.support.s3_proxy import S3Proxy

    io_jobs, size, sent = args.io_jobs, 24 * 10**6, 2 * args.io_jobs + 2
    with moto_bucket("bench") as moto_url:
        with (
            HostileServer(partial_then_stall(size, give_up_after=300)) as server,
            S3Proxy(moto_url) as proxy,
        ):
            extra = {
                **FAKE_AWS,
                "MAX_CONCURRENCY": "1",
                "IO_JOBS": str(io_jobs),
                "ALLOW_PRIVATE_URLS": "true",
                "REFERENCE_URL_TIMEOUT_SECONDS": "300",
                "S3_BUCKET": "bench",
                "S3_ENDPOINT_URL": proxy.url,
                "S3_TIMEOUT_SECONDS": "300",
                "S3_ATTEMPTS": "1",
            }
            with http_worker({**env, **extra}, work / "memory.log", root=args.worker_root) as worker:
                pid = worker.proc.pid
                for _ in range(3):
                    synth(worker.url, {**PLAIN, "max_new_tokens": 25})  # warm
                before_downloads = rss_mb(pid)
                reference = {"url": f"{server.url}/clip.wav", "transcript": "Hi."}
                jobs = [
                    threading.Thread(target=synth, args=(worker.url, {**PLAIN, "reference_audio": reference}))
                    for _ in range(sent)
                ]
                for job in jobs:
                    job.start()
                wait_for(lambda: server.requests and server.sent >= size * len(server.requests), 120)
                time.sleep(3)  # no more downloads start
                during_downloads, downloads = rss_mb(pid), len(server.requests)
                server.stop()  # the downloads fail; the jobs end
                for job in jobs:
                    job.join()

                frames = round(args.memory_audio_seconds * 25)
                result_job = {**PLAIN, "max_new_tokens": frames, "output_format": "wav"}
                synth(worker.url, result_job)  # one of that size first: allocator and codec warm
                before_uploads = rss_mb(pid)
                proxy.stall_seconds = 3600.0
                uploads = [
                    threading.Thread(target=synth, args=(worker.url, {**result_job, "seed": i, "delivery": "s3"}))
                    for i in range(io_jobs)
                ]
                for upload in uploads:
                    upload.start()

                def all_delivering() -> bool:
                    phases = requests.get(f"{worker.url}/v1/state", timeout=10).json()["requests"].values()
                    return list(phases).count("delivering") >= io_jobs

                wait_for(all_delivering, 600)
                time.sleep(2)
                during_uploads = rss_mb(pid)
                proxy.unstall()
                for upload in uploads:
                    upload.join()
    per_download = (during_downloads - before_downloads) / max(1, downloads)
    per_upload = (during_uploads - before_uploads) / io_jobs
    print(f"memory: MAX_CONCURRENCY=1, IO_JOBS={io_jobs}; worker RSS")
    print(f"  {sent} jobs sent whose reference download stalls at {size / 1e6:.0f} MB: {downloads} downloads in flight")
    print(f"    RSS {before_downloads:.0f} -> {during_downloads:.0f} MB: {per_download:.1f} MB a download")
    print(f"  {io_jobs} jobs of {args.memory_audio_seconds:g} s of audio (wav) whose S3 upload hangs")
    print(f"    RSS {before_uploads:.0f} -> {during_uploads:.0f} MB: {per_upload:.1f} MB a result")
    return {
        "io_jobs": io_jobs,
        "sent": sent,
        "downloads_in_flight": downloads,
        "rss_downloads_mb": [before_downloads, during_downloads],
        "per_download_mb": per_download,
        "rss_uploads_mb": [before_uploads, during_uploads],
        "per_upload_mb": per_upload,
        "audio_s": args.memory_audio_seconds,
    }


@contextmanager
def moto_bucket(bucket: str):
    """moto's S3 server on a free port with ``bucket`` made; yields its URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket_port() as port:
        pass
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        url = f"http://127.0.0.1:{port}"
        creds = {"aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": "x"}
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", **creds).create_bucket(Bucket=bucket)
        yield url
    finally:
        moto.stop()


@contextmanager
def socket_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextmanager
def sdk_worker(env: dict, log_path: Path, root: Path):
    """``python handler.py`` on the SDK's production loop (RUNPOD_WEBHOOK_GET_JOB is set)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-u", "handler.py"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the SDK forks a heartbeat process: stop the whole group
        )
        try:
            yield proc
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


SECTIONS = {
    "race": race,
    "refusal": refusal,
    "url": stalled_url,
    "s3": hanging_s3,
    "queue": queue_loop,
    "memory": memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-root", type=Path, default=ROOT, help="the checkout whose handler.py is measured")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--race-jobs", type=int, default=120)
    parser.add_argument("--race-tokens", type=int, default=40, help="max_new_tokens of each race job")
    parser.add_argument("--busy", type=int, default=2, help="refusal: long jobs in flight")
    parser.add_argument("--busy-seconds", type=float, default=40.0, help="refusal: audio seconds of each busy job")
    parser.add_argument("--url-timeout", type=float, default=20.0, help="REFERENCE_URL_TIMEOUT_SECONDS (default 20)")
    parser.add_argument("--s3-timeout", type=float, default=5.0, help="S3_TIMEOUT_SECONDS")
    parser.add_argument("--s3-attempts", type=int, default=2, help="S3_ATTEMPTS")
    parser.add_argument("--io-jobs", type=int, default=4, help="memory: IO_JOBS")
    parser.add_argument("--memory-audio-seconds", type=float, default=20.0, help="memory: audio of each held result")
    args = parser.parse_args()
    args.worker_root = args.worker_root.resolve()
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from first_audio import endless_tiny_model

    from higgs_worker.devtools.tiny_model import build

    revision = subprocess.run(
        ["git", "-C", str(args.worker_root), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    print(f"worker under test: {args.worker_root} ({revision})")
    figures: dict = {"worker_root": str(args.worker_root), "revision": revision}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, tokenizer = build(work / "tiny")
        endless, _ = endless_tiny_model(work / "e")  # a fixed length: for the busy jobs
        for name in args.only.split(","):
            section_dir = work / name
            section_dir.mkdir()
            use = endless if name in ("refusal", "memory") else model
            env = worker_env(use, tokenizer, section_dir, args.worker_root)
            figures[name] = SECTIONS[name](args, env, section_dir)
            print(flush=True)
    print(json.dumps(figures, default=float))


if __name__ == "__main__":
    main()
