"""The same tiny-model book on 1 and on 2 real local workers (figures, no asserts).

    python benchmarks/book_local_workers.py [--chapters 12] [--piece-words 25] [--runs 1]

Real workers: ``python handler.py`` on the runpod SDK's worker loop, the tiny random-weight
model on the CPU, behind the tests' RunPod look-alike (tests/support/local_workers.py); the
real client (``make_book``) in this process. The same book, seed and pieces in both runs, so
the workers generate the same audio (the tiny model's random weights stop each chunk at
random, so the client's length check is off, as in the tests); the book is not assembled (the
same for both). The machine has two cores: two workers is all it can show. Prints a table
(wall time, the speed-up, each worker's busy time) and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def book_text(chapters: int) -> str:
    paragraph = (
        "The lamp was lit and the long night began again. Outside, the river ran high under the bridge, "
        "and somewhere a dog barked twice and was quiet. She wrote the letter slowly, one line at a time."
    )
    return "\n\n".join(f"Chapter {n}\n\n{paragraph}\n\n{paragraph}" for n in range(1, chapters + 1)) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", type=int, default=12)
    parser.add_argument("--piece-words", type=int, default=25)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--parallel", type=int, default=4, help="jobs in flight (the tiny model's jobs take about a second)"
    )
    args = parser.parse_args()

    from higgs_tts import BookOptions, FanOutSettings, QueueEndpoint, make_book

    from higgs_worker.devtools.tiny_model import build
    from tests.conftest import wav_bytes, worker_process_env
    from tests.support.local_workers import LocalEndpoint

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model, tokenizer = build(folder / "tiny")
        voices = folder / "voices"
        voices.mkdir()
        (voices / "belinda.wav").write_bytes(wav_bytes(1.5))
        (voices / "belinda.txt").write_text("The sun rises in the east.")
        book = folder / "book.txt"
        book.write_text(book_text(args.chapters))
        for count in (1, 2):
            endpoint = LocalEndpoint(worker_process_env((model, tokenizer), voices, folder), folder)
            try:
                endpoint.ensure(count)
                for run in range(args.runs):
                    client = QueueEndpoint("fake-endpoint", endpoint.fake.api_key, base_url=endpoint.fake.base_url)
                    options = BookOptions(
                        voice="belinda",
                        seed=3,
                        piece_words=args.piece_words,
                        assemble=False,  # the same for both: the comparison is the fan-out
                        fanout=FanOutSettings(parallel=args.parallel, check_length=False),
                    )
                    start = time.monotonic()
                    summary = make_book(book, folder / f"out-{count}-{run}", client, options)
                    wall = time.monotonic() - start
                    busy = {}
                    for job in endpoint.fake.jobs.values():
                        if job.started and job.finished:
                            busy[job.worker] = busy.get(job.worker, 0.0) + job.finished - job.started
                    endpoint.fake.jobs.clear()
                    rows.append(
                        {
                            "workers": count,
                            "run": run,
                            "pieces": summary.pieces,
                            "audio_s": round(summary.audio_s, 1),
                            "wall_s": round(wall, 1),
                            "busy_s": {w: round(s, 1) for w, s in sorted(busy.items())},
                        }
                    )
            finally:
                endpoint.close()
    one = min(r["wall_s"] for r in rows if r["workers"] == 1)
    print("| workers | pieces | audio | wall | speed-up vs 1 worker | each worker busy |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        busy = ", ".join(f"{s} s" for s in r["busy_s"].values())
        speedup = one / r["wall_s"]
        print(f"| {r['workers']} | {r['pieces']} | {r['audio_s']} s | {r['wall_s']} s | {speedup:.2f}x | {busy} |")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
