"""A book against a simulated endpoint of many workers: the client's wall time vs the ideal,
and its own CPU (figures, no asserts).

    python benchmarks/book_client.py [--pieces 300] [--workers 32] [--parallel 32,40]
                                     [--rtf R] [--overhead S] [--piece-words 200[,100,400]] [--assemble]

1. The RTF and the per-job time outside generation come from real jobs measured in the same
   run: the tiny model on this CPU through the worker's own job path (``Worker.run``, in a
   subprocess), pieces of ``--piece-words`` words; ``--rtf`` / ``--overhead`` use figures
   measured elsewhere instead (e.g. ``python -m higgs_worker.devtools.bench`` on a GPU).
2. A synthetic book of ``--pieces`` pieces (paragraphs of 30..170 words, seeded), as the
   client cuts it at the first ``--piece-words``; further sizes cut the same book otherwise
   (more or fewer pieces): the measurement behind the default piece size.
3. For each ``--parallel``: the RunPod look-alike (tests/support/fake_endpoint.py) runs in
   its own process with ``--workers`` simulated workers; each job takes ``overhead + audio
   seconds x rtf`` (audio seconds = the text at 14 characters a second) and returns a real
   FLAC of that length. The real client (``make_book``, the runpod SDK over HTTP, the
   manifest, the checks) runs here. Ideal = total job time / workers (perfect packing, no
   polling or queue delay); the client's CPU is this process's CPU time over the run.

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


def run_once(book: Path, workers: int, parallel: int, rtf: float, overhead: float, piece_words: int, assemble: bool):
    from higgs_tts import BookOptions, FanOutSettings, QueueEndpoint, make_book
    from higgs_tts.book_source import read_book
    from higgs_tts.pieces import plan_pieces

    from tests.support.fake_endpoint import speech_seconds

    plan = plan_pieces(read_book(book), piece_words)
    job_seconds = [overhead + speech_seconds(p.text) * rtf for p in plan]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_endpoint", "--simulated", str(workers), "--rtf", str(rtf)]
        + ["--overhead", str(overhead)],
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
            fanout=FanOutSettings(parallel=parallel),
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
        "job_s_mean": round(sum(job_seconds) / len(job_seconds), 2),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=300)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--parallel", default="32,40")
    parser.add_argument("--rtf", type=float, help="job RTF (default: measured here on the tiny model)")
    parser.add_argument("--overhead", type=float, help="seconds per job outside generation (default: measured)")
    parser.add_argument("--piece-words", default="200", help="comma-separated: the same book cut at each size")
    parser.add_argument("--assemble", action="store_true", help="also assemble the book (MP3 encoding of hours)")
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
