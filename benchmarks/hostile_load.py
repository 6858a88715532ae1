"""The HTTP mode under hostile load (issue 26, findings 1, 2 and 6), measured (figures, no asserts).

    python benchmarks/hostile_load.py [--worker-root PATH] [--only burst,upload,slow]

The worker under test is ``handler.py`` of ``--worker-root`` (default: this checkout) in HTTP mode
with the tiny random-weight model on the CPU (MAX_CONCURRENCY and IO_JOBS left to their defaults:
1 + 2 = 3 jobs at once); the clients come from this checkout. Run once with ``--worker-root`` at
older code (``git worktree add /tmp/main-26a main``) and once without for a before/after pair;
``--worker-env KEY=VALUE`` sets a worker variable (e.g. ``MAX_JOB_REFERENCE_SECONDS=1000``, so that
the burst's 16 minutes of reference audio pass the total and wait in the line).

Sections:

- ``burst`` (finding 1): admission full with 3 long ``/v1/synthesize`` jobs, then ``--burst``
  (30) concurrent requests of ``--speakers`` (16) speakers, each a base64 FLAC of 60 s of
  silence (about 96 KB a request). Prints the worker's RSS before the burst, at its peak
  (sampled every 0.1 s) and 5 s after every client has gone, and the status codes the burst got.
- ``upload`` (finding 2): ``POST /v1/audio/voices`` with a chunked multipart body whose file
  part is ``--upload-mb`` (300) MB of zeros; prints the largest temporary file the worker had
  open meanwhile (its /proc/PID/fd, sampled every 0.05 s) and the status.
- ``slow`` (finding 6): ``--flood`` (300) sockets each sending a partial request head, held
  open for ``--flood-seconds`` (30); ``/ping`` timed every 0.5 s meanwhile (timeout 5 s); prints
  the median and worst latency and the failures. Then one body dripping a byte every 5 s: how
  long the worker held it (at most ``--drip-seconds``, 75).

Prints a table a section and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.http_server import http_worker  # noqa: E402

LONG = {"text": "word " * 400, "seed": 3, "chunk_method": "word", "chunk_max_words": 1, "delivery": "base64"}


def worker_env(model: Path, tokenizer: Path, work: Path, root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "BUCKET_", "HF_"))}
    (work / "voices").mkdir(exist_ok=True)
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
            "TMPDIR": str(work / "tmp"),
        }
    )
    (work / "tmp").mkdir(exist_ok=True)
    return env


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def open_request(url: str, path: str, body: dict) -> socket.socket:
    """A request sent on a raw socket and left open (closed to make the client go away)."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


def wait_state(url: str, predicate, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = requests.get(f"{url}/v1/state", timeout=30).json()["requests"]
        if predicate(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def silence_flac(seconds: float) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * 24000), dtype=np.float32), 24000, format="FLAC")
    return base64.b64encode(buffer.getvalue()).decode()


def burst(args, env: dict, work: Path) -> dict:
    clip = silence_flac(60)
    names = [f"SPEAKER{i}" for i in range(args.speakers)]
    job = {
        "text": " ".join(f"[{name}] Hello." for name in names),
        "speakers": {name: {"reference_audio": {"base64": clip, "transcript": "Hello."}} for name in names},
        "seed": 1,
        "max_new_tokens": 20,
        "delivery": "base64",
    }
    body = json.dumps({"input": job})
    with http_worker(env, work / "burst.log", root=args.worker_root) as worker:
        pid = worker.proc.pid
        long_jobs = [open_request(worker.url, "/v1/synthesize", {"input": LONG}) for _ in range(3)]
        wait_state(worker.url, lambda s: len(s) == 3 and "queued" not in s.values(), 120)
        time.sleep(1)
        before = rss_mb(pid)
        peak, stop = [before], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(rss_mb(pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        codes: list = []
        sockets: list[socket.socket] = []

        def send(_i: int) -> None:
            try:
                sock = socket.create_connection(("127.0.0.1", port_of(worker.url)), timeout=120)
                data = body.encode()
                head = "POST /v1/synthesize HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                sock.sendall((head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data)
                sockets.append(sock)
                sock.settimeout(args.burst_wait)
                try:
                    first = sock.recv(64).decode(errors="replace")
                    codes.append(int(first.split()[1]) if first.startswith("HTTP/") else "closed")
                except TimeoutError:
                    codes.append("waiting")
            except OSError as exc:
                codes.append(type(exc).__name__)

        started = time.perf_counter()
        with ThreadPoolExecutor(args.burst) as pool:
            list(pool.map(send, range(args.burst)))
        queued = requests.get(f"{worker.url}/v1/state", timeout=30).json()["requests"]
        for sock in sockets + long_jobs:
            sock.close()
        wait_state(worker.url, lambda s: not s, 300)
        time.sleep(5)
        stop.set()
        sampler.join()
        after = rss_mb(pid)
    counts = {str(code): codes.count(code) for code in sorted(set(codes), key=str)}
    figures = {
        "request_kb": round(len(body) / 1000, 1),
        "rss_before_mb": round(before),
        "rss_peak_mb": round(max(peak)),
        "rss_after_mb": round(after),
        "answers": counts,
        "http_429": codes.count(429),
        "in_state_during_burst": len(queued),
        "burst_s": round(time.perf_counter() - started, 1),
    }
    print(f"burst: {args.burst} x {figures['request_kb']} KB ({args.speakers} speakers of 60 s FLAC silence)")
    print(
        f"  RSS before {figures['rss_before_mb']} MB, peak {figures['rss_peak_mb']} MB, "
        f"after {figures['rss_after_mb']} MB"
    )
    print(f"  answers within {args.burst_wait:g}s: {counts}; requests in /v1/state: {len(queued)}")
    return figures


def open_temp_bytes(pid: int, folder: Path) -> int:
    """Bytes of the largest file under ``folder`` (or deleted, /tmp-like) the process has open."""
    largest = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in list(fd_dir.iterdir()) if fd_dir.exists() else []:
        try:
            target = os.readlink(fd)
            if target.startswith(str(folder)) or (target.startswith("/tmp") and "(deleted)" in target):
                largest = max(largest, os.stat(fd).st_size)
        except OSError:
            continue
    return largest


def upload(args, env: dict, work: Path) -> dict:
    boundary = "benchboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    with http_worker(env, work / "upload.log", root=args.worker_root) as worker:
        pid, peak, stop = worker.proc.pid, [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(open_temp_bytes(pid, work / "tmp"))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def chunks():
            yield head
            block = b"\0" * (1 << 20)
            for _ in range(args.upload_mb):
                yield block
            yield tail

        started = time.perf_counter()
        try:
            response = requests.post(
                f"{worker.url}/v1/audio/voices",
                data=chunks(),  # a generator: Transfer-Encoding: chunked, no Content-Length
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=300,
            )
            status = response.status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        seconds = time.perf_counter() - started
        time.sleep(0.5)
        stop.set()
        sampler.join()
    figures = {"upload_mb": args.upload_mb, "temp_peak_mb": round(max(peak) / 1e6, 1), "status": status}
    figures["seconds"] = round(seconds, 1)
    print(f"upload: chunked multipart, {args.upload_mb} MB part -> {status} after {seconds:.1f}s")
    print(f"  largest temporary file open: {figures['temp_peak_mb']} MB")
    return figures


def ping_ms(url: str, timeout: float = 5.0) -> float | None:
    start = time.perf_counter()
    try:
        requests.get(f"{url}/ping", timeout=timeout)
    except requests.RequestException:
        return None
    return (time.perf_counter() - start) * 1000


def slow(args, env: dict, work: Path) -> dict:
    with http_worker(env, work / "slow.log", root=args.worker_root) as worker:
        port = port_of(worker.url)
        baseline = [ping_ms(worker.url) for _ in range(5)]
        flood: list[socket.socket] = []
        for _ in range(args.flood):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /ping HTTP/1.1\r\nHost: bench\r\nX-Slow: ")  # the head never ends
                flood.append(sock)
            except OSError:
                break
        times: list[float | None] = []
        deadline = time.monotonic() + args.flood_seconds
        while time.monotonic() < deadline:
            times.append(ping_ms(worker.url))
            time.sleep(0.5)
        still_open = 0
        for sock in flood:
            try:
                sock.setblocking(False)
                still_open += sock.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
            sock.close()
        # one body dripping a byte every 5 s: how long is it held?
        drip = socket.create_connection(("127.0.0.1", port), timeout=5)
        drip.sendall(
            b"POST /v1/synthesize HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        started, held = time.perf_counter(), None
        drip.settimeout(5)
        while time.perf_counter() - started < args.drip_seconds:
            try:
                drip.sendall(b" ")
                drip.recv(1024)  # an answer (408) or the close: the worker let go
                held = time.perf_counter() - started
                break
            except TimeoutError:
                continue
            except OSError:
                held = time.perf_counter() - started
                break
        drip.close()
    ok = [t for t in times if t is not None]
    figures = {
        "flood": len(flood),
        "flood_still_open_at_end": still_open,
        "ping_baseline_ms": round(statistics.median([t for t in baseline if t is not None]), 1),
        "ping_median_ms": round(statistics.median(ok), 1) if ok else None,
        "ping_worst_ms": round(max(ok), 1) if ok else None,
        "ping_failed": len(times) - len(ok),
        "pings": len(times),
        "drip_held_s": round(held, 1) if held is not None else f">{args.drip_seconds}",
    }
    print(f"slow: {len(flood)} partial heads held {args.flood_seconds:g}s ({still_open} still open at the end)")
    print(
        f"  /ping: baseline {figures['ping_baseline_ms']} ms; under the flood median {figures['ping_median_ms']} ms, "
        f"worst {figures['ping_worst_ms']} ms, {figures['ping_failed']}/{len(times)} failed (5 s timeout)"
    )
    print(f"  a body dripping a byte every 5 s was held {figures['drip_held_s']} s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker-root", type=Path, default=ROOT)
    parser.add_argument("--only", default="burst,upload,slow")
    parser.add_argument("--worker-env", action="append", default=[], help="KEY=VALUE for the worker (repeatable)")
    parser.add_argument("--burst", type=int, default=30)
    parser.add_argument("--speakers", type=int, default=16)
    parser.add_argument("--burst-wait", type=float, default=20, help="seconds each burst client waits for an answer")
    parser.add_argument("--upload-mb", type=int, default=300)
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--flood-seconds", type=float, default=30)
    parser.add_argument("--drip-seconds", type=float, default=75)
    args = parser.parse_args()
    from higgs_worker.devtools.tiny_model import build

    figures: dict = {"worker_root": str(args.worker_root)}
    with tempfile.TemporaryDirectory(prefix="hostile-load-") as tmp:
        work = Path(tmp)
        model, tokenizer = build(work / "tiny")
        env = worker_env(model, tokenizer, work, args.worker_root)
        env.update(dict(item.split("=", 1) for item in args.worker_env))
        figures["worker_env"] = args.worker_env
        sections = {"burst": burst, "upload": upload, "slow": slow}
        for name in args.only.split(","):
            figures[name] = sections[name](args, env, work)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
