"""A book against a simulated endpoint: the client's wall time vs the ideal, and its own CPU
(figures, no asserts).

    python benchmarks/book_client.py [--pieces 300] [--workers 32] [--parallel 32,40]
                                     [--rtf R] [--overhead S] [--piece-words 200[,100,400]] [--assemble]
    python benchmarks/book_client.py --scaling [16:16,16:200,8:128,4:64] --workers 10 --rtf R --overhead S
                                     [--batch-cost 0.05] [--queue-delay 4] [--start-s 5] [--time-scale 6]

1. The RTF and the per-job time outside generation come from real jobs measured in the same
   run: the tiny model on this CPU through the worker's own job path (``Worker.run``, in a
   subprocess), pieces of ``--piece-words`` words; ``--rtf`` / ``--overhead`` use figures
   measured elsewhere instead (e.g. ``python -m higgs_worker.devtools.bench`` on a GPU).
2. A synthetic book of ``--pieces`` pieces (paragraphs of 30..170 words, seeded), as the
   client cuts it at the first ``--piece-words``; further sizes cut the same book otherwise.
3. Plain mode, for each ``--parallel``: the RunPod look-alike (tests/support/fake_endpoint.py)
   runs in its own process with ``--workers`` simulated workers of one job each; a job takes
   ``overhead + audio seconds x rtf`` (audio seconds = the text at 14 characters a second) and
   returns a real FLAC of that length. The real client (``make_book`` over RunPod's REST API,
   the manifest, the checks) runs here. Ideal = total job time / workers.
4. ``--scaling``, for each ``MAX_CONCURRENCY:parallel`` pair: workers as the real one takes
   jobs (``MAX_CONCURRENCY + IO_JOBS``, IO_JOBS its default; ``MAX_CONCURRENCY`` generating
   together, each at ``1 / (1 + batch_cost (c - 1))`` of its pace alone), one warm worker at
   the start, and RunPod's queue-delay scaler adding workers up to ``--workers`` (workers.max)
   while the oldest queued job waits longer than ``--queue-delay``, each ready ``--start-s``
   later (the model is described in SimulatedWorkers). Ideal = every job in a full batch on
   ``--workers`` workers from the first second, perfectly packed. ``--time-scale`` runs it
   that many times faster (jobs, delays, starts, the scaler's tick and the client's polling
   all divided); times are shown in the endpoint's own time.

Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client"))

WORDS = (
    "the a of and to in that it was he she said for on with as his her at by from they we there had "
    "been one all were when what about into time could would night light house river morning voice "
    "window letter garden winter road story long small old little first last never always again"
).split()

MEASURE = r"""
import json, sys, time
from higgs_worker.contract.config import Settings
from higgs_worker.jobs import Worker
from higgs_worker.devtools.tiny_model import build
model, tokenizer = build(sys.argv[1])
worker = Worker(Settings.from_env({"MODEL_PATH": str(model), "TOKENIZER_PATH": str(tokenizer), "DEVICE": "cpu",
                                   "VOICES_DIR": sys.argv[1]}))
texts = json.loads(sys.argv[2])
worker.run({"id": "warm", "input": {"text": "Warm up.", "seed": 1}})
jobs = []
for n, text in enumerate(texts):
    job_input = {"text": text, "seed": n, "output_format": "flac", "delivery": "base64", "subtitles": "srt",
                 "loudness_lufs": -18}
    out = worker.run({"id": f"m{n}", "input": job_input}).as_output()
    t = out["timings"]
    jobs.append({"generate_s": t["generate_s"], "total_s": t["total_s"], "audio_s": out["duration_s"]})
print(json.dumps(jobs))
"""


def synthetic_book(pieces_wanted: int, piece_words: int, seed: int = 1) -> str:
    """Chapters of paragraphs (30..170 words) until the client's plan has ``pieces_wanted`` pieces."""
    from higgs_tts.book_source import Book, Chapter
    from higgs_tts.pieces import plan_pieces

    rng = random.Random(seed)

    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
        return " ".join(words).capitalize() + "."

    chapters: list[list[str]] = []
    while True:
        chapter = [f"Chapter {len(chapters) + 1}"]
        for _ in range(rng.randint(8, 30)):
            paragraph, words = [], rng.randint(30, 170)
            while sum(len(s.split()) for s in paragraph) < words:
                paragraph.append(sentence())
            chapter.append(" ".join(paragraph))
        chapters.append(chapter)
        book = Book("bench", tuple(Chapter(c[0], tuple(c)) for c in chapters))
        planned = plan_pieces(book, piece_words)
        if len(planned) >= pieces_wanted:
            break
    # trim the last chapter's paragraphs to land on the count
    while (
        len(plan_pieces(Book("bench", tuple(Chapter(c[0], tuple(c)) for c in chapters)), piece_words)) > pieces_wanted
    ):
        chapters[-1].pop()
    return "\n\n".join("\n\n".join(chapter) for chapter in chapters) + "\n"


def measure_rtf(texts: list[str]) -> tuple[float, float, list[dict]]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, folder, json.dumps(texts)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=1800,
            check=True,
        )
    jobs = json.loads(out.stdout.strip().splitlines()[-1])
    rtf = sum(j["generate_s"] for j in jobs) / sum(j["audio_s"] for j in jobs)
    overhead = sum(j["total_s"] - j["generate_s"] for j in jobs) / len(jobs)
    return rtf, overhead, jobs


def run_once(
    book: Path,
    workers: int,
    parallel: int,
    rtf: float,
    overhead: float,
    piece_words: int,
    assemble: bool,
    endpoint_model: dict | None = None,
    time_scale: float = 1.0,
):
    """``endpoint_model``: slots, io_jobs, batch_cost, start_workers, queue_delay, start_s (the
    scaler grows from ``start_workers`` to ``workers``); None: ``workers`` workers of one job each."""
    from higgs_tts import BookOptions, FanOutSettings, QueueEndpoint, make_book
    from higgs_tts.book_source import read_book
    from higgs_tts.pieces import plan_pieces

    from tests.support.fake_endpoint import speech_seconds

    plan = plan_pieces(read_book(book), piece_words)
    m = endpoint_model or {}
    slots, batch_cost = m.get("slots", 1), m.get("batch_cost", 0.0)
    stretch = 1 + batch_cost * (slots - 1)
    # ideal: every job in a full batch of `slots` on each of `workers` workers, perfectly packed
    job_seconds = [(overhead + speech_seconds(p.text) * rtf * stretch) / slots for p in plan]
    extra = ["--slots", str(slots), "--io-jobs", str(m.get("io_jobs", 0)), "--batch-cost", str(batch_cost)]
    if endpoint_model:
        extra += ["--max-workers", str(workers), "--queue-delay", str(m["queue_delay"]), "--start-s", str(m["start_s"])]
        extra += ["--scaler-tick", str(m.get("scaler_tick", 1.0))]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_endpoint", "--simulated", str(m.get("start_workers", workers))]
        + ["--rtf", str(rtf), "--overhead", str(overhead), *extra],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        env = json.loads(server.stdout.readline())
        endpoint = QueueEndpoint(
            env["RUNPOD_ENDPOINT_ID"], env["RUNPOD_API_KEY"], env["RUNPOD_ENDPOINT_BASE_URL"], connections=parallel
        )
        options = BookOptions(
            voice="narrator",
            seed=1,
            piece_words=piece_words,
            assemble=assemble,
            fanout=FanOutSettings(
                parallel=parallel,
                poll_min_s=0.5 / time_scale,  # the client's polling runs at the endpoint's pace too
                poll_max_s=3.0 / time_scale,
                poll_aimed_max_s=10.0 / time_scale,
            ),
        )
        with tempfile.TemporaryDirectory() as out:
            cpu0, wall0 = time.process_time(), time.monotonic()
            summary = make_book(book, Path(out) / "book", endpoint, options)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        server.stdin.close()
        tail = server.stdout.read().strip().splitlines()
        server.wait(timeout=30)
    served = json.loads(tail[-1]) if tail else {}
    ideal = sum(job_seconds) / workers
    return {
        "piece_words": piece_words,
        "parallel": parallel,
        "workers": workers,
        "pieces": len(plan),
        "audio_h": round(summary.audio_s / 3600, 2),
        "job_s_mean": round(slots * sum(job_seconds) / len(job_seconds), 2),
        "slots": slots,
        "takes": slots + _io_jobs(m.get("io_jobs", 0), slots),
        "workers_started": served.get("workers_started"),
        "ideal_s": round(ideal, 1),
        "wall_s": round(wall, 1),
        "wall_over_ideal": round(wall / ideal, 3),
        "client_cpu_s": round(cpu, 1),
        "client_cpu_pct": round(100 * cpu / wall, 1),
        "client_cpu_ms_per_piece": round(1000 * cpu / len(plan)),
        "status_requests": served.get("status"),
        "runs": served.get("runs"),
        "throttled": summary.throttled,
        "retries": summary.retries,
        "billed_s": round(summary.billed_gpu_s, 1),
    }


def _io_jobs(setting: int, slots: int) -> int:
    from higgs_worker.admission import io_jobs_for

    return io_jobs_for(None if setting < 0 else setting, slots)


# --scaling: (MAX_CONCURRENCY, --parallel) pairs; IO_JOBS is the worker's default (half, >= 2)
SCALING = "16:16,16:64,16:200,8:16,8:64,8:128,4:64"


def scaling(args, book: Path, rtf: float, overhead: float) -> None:
    """A book on an endpoint that starts with one warm worker and grows by RunPod's queue-delay
    scaler to ``--workers``: which MAX_CONCURRENCY and --parallel spread it."""
    rows = []
    for pair in args.scaling.split(","):
        slots, parallel = (int(x) for x in pair.split(":"))
        model = {
            "slots": slots,
            "io_jobs": -1,
            "batch_cost": args.batch_cost,
            "start_workers": 1,
            "queue_delay": args.queue_delay / args.time_scale,
            "start_s": args.start_s / args.time_scale,
            "scaler_tick": 1.0 / args.time_scale,
        }
        row = run_once(
            book, args.workers, parallel, rtf / args.time_scale, overhead / args.time_scale, 200, False, model
        )
        for key in ("job_s_mean", "ideal_s", "wall_s"):  # back to the endpoint's own time
            row[key] = round(row[key] * args.time_scale, 1)
        rows.append(row)
    header = (
        "| MAX_CONCURRENCY | takes | parallel | workers.max | workers started | pieces | mean job (full batch)"
        " | ideal | wall | wall/ideal |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in rows:
        print(
            f"| {r['slots']} | {r['takes']} | {r['parallel']} | {r['workers']} | {r['workers_started']} |"
            f" {r['pieces']} | {r['job_s_mean']} s | {r['ideal_s']} s | {r['wall_s']} s | **{r['wall_over_ideal']}** |"
        )
    print(json.dumps({"rtf": rtf, "overhead_s": overhead, "batch_cost": args.batch_cost, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=300)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--parallel", default="32,40")
    parser.add_argument("--rtf", type=float, help="job RTF (default: measured here on the tiny model)")
    parser.add_argument("--overhead", type=float, help="seconds per job outside generation (default: measured)")
    parser.add_argument("--piece-words", default="200", help="comma-separated: the same book cut at each size")
    parser.add_argument("--assemble", action="store_true", help="also assemble the book (MP3 encoding of hours)")
    parser.add_argument(
        "--scaling",
        nargs="?",
        const=SCALING,
        help=f"MAX_CONCURRENCY:parallel pairs on a scaling endpoint (default {SCALING}); --workers is workers.max",
    )
    parser.add_argument("--batch-cost", type=float, default=0.05, help="--scaling: a job's slowdown per extra job")
    parser.add_argument("--queue-delay", type=float, default=4.0, help="--scaling: the scaler's value (s)")
    parser.add_argument("--start-s", type=float, default=5.0, help="--scaling: a new worker's start (s)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="--scaling: run this many times faster than the endpoint (every job, delay and start divided; the"
        " the client's polling too); times shown in the endpoint's time",
    )
    args = parser.parse_args()

    from higgs_tts.book_source import read_book
    from higgs_tts.pieces import plan_pieces

    with tempfile.TemporaryDirectory() as folder:
        book = Path(folder) / "bench.txt"
        sizes = [int(size) for size in args.piece_words.split(",")]
        book.write_text(synthetic_book(args.pieces, sizes[0]))
        plan = plan_pieces(read_book(book), sizes[0])
        source = "given"
        rtf, overhead = args.rtf, args.overhead
        if rtf is None or overhead is None:
            sample = [p.text for p in plan[1:4]]
            measured_rtf, measured_overhead, jobs = measure_rtf(sample)
            source = f"measured: {len(jobs)} jobs of ~{sizes[0]} words, tiny model, this CPU"
            rtf = measured_rtf if rtf is None else rtf
            overhead = measured_overhead if overhead is None else overhead
        print(f"job model: overhead {overhead:.2f} s + audio x RTF {rtf:.3f} ({source})")
        if args.scaling:
            print(
                f"endpoint model: 1 warm worker, queue-delay scaler {args.queue_delay} s up to {args.workers} workers,"
                f" {args.start_s} s a start; a batch of c jobs: each at 1/(1 + {args.batch_cost}(c-1)) of its pace;"
                f" run {args.time_scale}x faster than that, times below in the endpoint's time"
            )
            return scaling(args, book, rtf, overhead)
        rows = [
            run_once(book, args.workers, int(p), rtf, overhead, size, args.assemble)
            for size in sizes
            for p in args.parallel.split(",")
        ]
    header = (
        "| piece words | parallel | workers | pieces | audio | mean job | ideal | wall | wall/ideal | client CPU"
        " | /status | 429 | retries |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in rows:
        print(
            f"| {r['piece_words']} | {r['parallel']} | {r['workers']} | {r['pieces']} | {r['audio_h']} h |"
            f" {r['job_s_mean']} s |"
            f" {r['ideal_s']} s | {r['wall_s']} s | **{r['wall_over_ideal']}** |"
            f" {r['client_cpu_s']} s ({r['client_cpu_pct']} % of a core, {r['client_cpu_ms_per_piece']} ms a piece) |"
            f" {r['status_requests']} | {r['throttled']} |"
            f" {r['retries']} |"
        )
    print(json.dumps({"rtf": rtf, "overhead_s": overhead, "rtf_source": source, "rows": rows}))


if __name__ == "__main__":
    main()
