"""Word alignment: accuracy on speech whose word times are known, and what it costs (figures, no asserts).

    python benchmarks/word_alignment.py [--passes 1]

The speech: espeak-ng (Debian's package) speaks each word of a few English passages
alone, in several voices and speeds, and the words are joined with known silences
(``higgs_worker/devtools/spoken_words.py``), so every word's true start and end is
known to the sample. Each passage is aligned as one piece, as a chunk of a job is,
resampled to the aligner's 16 kHz first as the worker does (torchaudio, in the job's
thread; its cost is printed apart).

Printed, all measured in this run:

1. accuracy of the aligner step by step on the same speech: PocketSphinx 5 as it comes
   (its default beams, no noise floor, no edge refinement), then with each measured choice
   added, to the worker's aligner (``pocketsphinx_aligner.english()``): passages it could not
   align, median / 95th percentile / largest boundary error (a word's start and its end
   are two boundaries), words out of order, words off by more than 0.25 s;
2. the worker's aligner per voice and speed, and dictionary words apart from guessed ones;
3. cost: CPU seconds per second of audio on one core (in-process, the decoder's
   construction included), and through the helper processes (wall time per piece, the
   first piece with the helper's start);
4. what aligning does to another Python thread of the worker (the scheduler's): the
   longest stall of a thread that ticks every millisecond, idle, while a piece is aligned
   in that process, and while it is aligned by the helper process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from higgs_worker.audio import codecs  # noqa: E402
from higgs_worker.audio.align import pocketsphinx_aligner  # noqa: E402
from higgs_worker.audio.align.aligner import AlignmentFailed  # noqa: E402
from higgs_worker.audio.align.service import AlignmentService  # noqa: E402
from higgs_worker.devtools.spoken_words import espeak_available, speak  # noqa: E402

PASSAGES = [
    "Narrators, teachers and video editors ask for word times. A read-along page lights up each word "
    "as it is spoken, and a subtitle starts when its first word does. Without them, an editor has to "
    "find every cut by ear, which takes far longer than the recording itself.",
    "The lighthouse keeper climbed the narrow stairs at dusk. Below him the harbour was quiet, and the "
    "last boats were tied along the wall. He wound the clock, trimmed the wick and watched the beam "
    "sweep over the water, as his father had done for forty years.",
    "In 2024 the team served 42 models from RunPod, about 10% more than planned. Kokoro and Higgs were "
    "the favourites; each GPU ran day and night, and the bill came to 300 dollars a week.",
]
VOICES = [("en-us", 175), ("en-us", 230), ("en-gb", 140), ("en-us+f3", 200), ("en-gb-scotland+m3", 190)]
ALIGNERS = {
    "PocketSphinx defaults": {"searches": ({},), "dither_rms": 0.0, "refine": False},
    "defaults + noise floor": {"searches": ({},), "refine": False},
    "+ wider beams, likelier silence": {"searches": (pocketsphinx_aligner.SEARCH,), "refine": False},
    "+ a wider retry": {"refine": False},
    "worker's aligner": {},
}


RATE = pocketsphinx_aligner.ALIGN_RATE


def boundary_errors(words, spoken) -> tuple[list[float], int, int]:
    errors, out_of_order, far = [], 0, 0
    previous_start = -1.0
    for word, (start, end) in zip(words, spoken.spans, strict=True):
        true_start, true_end = start / spoken.rate, end / spoken.rate  # the speech's own rate
        errors += [abs(word.start_s - true_start), abs(word.end_s - true_end)]
        out_of_order += word.start_s < previous_start or word.end_s < word.start_s
        far += max(abs(word.start_s - true_start), abs(word.end_s - true_end)) > 0.25
        previous_start = word.start_s
    return errors, out_of_order, far


def ms(values: list[float], q: float | None = None) -> str:
    if not values:
        return "-"
    value = statistics.median(values) if q is None else (max(values) if q == 100 else np.percentile(values, q))
    return f"{value * 1000:.0f}"


def accuracy(corpus, options: dict) -> dict:
    aligner = pocketsphinx_aligner.english(**options)
    failed, errors, out_of_order, far, cpu, audio_s = 0, [], 0, 0, 0.0, 0.0
    per_voice: dict[str, list[float]] = {}
    known, guessed = [], []
    for (voice, speed), spoken, audio in corpus:
        started = time.process_time()
        try:
            words = aligner.align(audio, RATE, spoken.words)
        except AlignmentFailed:
            failed += 1
            continue
        cpu += time.process_time() - started
        audio_s += len(audio) / RATE
        found, disorder, off = boundary_errors(words, spoken)
        errors += found
        out_of_order += disorder
        far += off
        per_voice.setdefault(f"{voice} {speed} wpm", []).extend(found)
        for index, word in enumerate(words):
            (guessed if word.approximate else known).extend(found[2 * index : 2 * index + 2])
    return {
        "failed": failed,
        "errors": errors,
        "out_of_order": out_of_order,
        "far": far,
        "cpu_per_audio_s": cpu / audio_s if audio_s else float("nan"),
        "per_voice": per_voice,
        "known": known,
        "guessed": guessed,
    }


def max_stall(work) -> float:
    """The longest gap between ticks of a thread that sleeps 1 ms a tick, while ``work`` runs."""
    gaps, done = [0.0], threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        work()
    finally:
        done.set()
        ticker.join()
    return max(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=1, help="repeat the cost measurement")
    args = parser.parse_args()
    if not espeak_available():
        sys.exit("espeak-ng is needed: apt-get install espeak-ng")
    corpus, resample_cpu = [], 0.0
    for seed, (voice, speed) in enumerate(VOICES):
        for index, passage in enumerate(PASSAGES):
            spoken = speak(passage.split(), voice, speed, seed=seed * 10 + index)
            codecs.resample(spoken.audio[:100], spoken.rate, RATE)  # the first call loads torchaudio
            started = time.process_time()
            audio = codecs.resample(spoken.audio, spoken.rate, RATE)
            resample_cpu += time.process_time() - started
            corpus.append(((voice, speed), spoken, audio))
    words = sum(len(spoken.words) for _, spoken, _ in corpus)
    audio_s = sum(len(spoken.audio) / spoken.rate for _, spoken, _ in corpus)
    print(f"speech: {len(corpus)} passages, {words} words, {audio_s:.0f} s, voices {VOICES}")

    results = {name: accuracy(corpus, options) for name, options in ALIGNERS.items()}
    print("\n| aligner | passages failed | median error ms | p95 ms | max ms | out of order | off > 0.25 s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        aligned = len(r["errors"]) // 2
        print(
            f"| {name} | {r['failed']} of {len(corpus)} | {ms(r['errors'])} | {ms(r['errors'], 95)} | "
            f"{ms(r['errors'], 100)} | {r['out_of_order']} | {r['far']} of {aligned} |"
        )
    chosen = results["worker's aligner"]
    print("\n| worker's aligner on | boundaries | median ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for voice, found in chosen["per_voice"].items():
        print(f"| {voice} | {len(found)} | {ms(found)} | {ms(found, 95)} | {ms(found, 100)} |")
    for label, found in (("dictionary words", chosen["known"]), ("guessed words (approximate)", chosen["guessed"])):
        print(f"| {label} | {len(found)} | {ms(found)} | {ms(found, 95)} | {ms(found, 100)} |")

    cpu = [chosen["cpu_per_audio_s"]]
    for _ in range(args.passes - 1):
        cpu.append(accuracy(corpus, {})["cpu_per_audio_s"])
    service = AlignmentService(processes=1)
    walls = []
    for _, spoken, audio in corpus:
        started = time.perf_counter()
        service.align(audio, RATE, spoken.words)
        walls.append((time.perf_counter() - started, len(audio) / RATE))
    first_wall = walls[0][0]
    steady = sum(w for w, _ in walls[1:]) / sum(a for _, a in walls[1:])
    print(
        f"\ncost: {statistics.median(cpu) * 100:.1f} % of the audio's duration in CPU time on one core "
        f"(in-process, median of {len(cpu)}); through a helper process {steady * 100:.1f} % wall "
        f"(the first piece {first_wall:.2f} s with the helper's start); resampling to 16 kHz in the job's "
        f"thread {resample_cpu / audio_s * 100:.2f} % (CPU time, torchaudio)"
    )

    _, long, long_audio = max(corpus, key=lambda item: len(item[2]))
    in_process = pocketsphinx_aligner.english()
    idle = max_stall(lambda: time.sleep(1.0))
    inside = max_stall(lambda: in_process.align(long_audio, RATE, long.words))
    helper = max_stall(lambda: service.align(long_audio, RATE, long.words))
    service.close()
    seconds = len(long_audio) / RATE
    print(
        f"another thread's longest stall while {seconds:.0f} s of speech is aligned: in the same process "
        f"{inside * 1000:.0f} ms, in the helper process {helper * 1000:.0f} ms (idle: {idle * 1000:.0f} ms)"
    )
    summary = {
        name: {"failed": r["failed"], "median_ms": ms(r["errors"]), "p95_ms": ms(r["errors"], 95)}
        for name, r in results.items()
    }
    summary["cost_percent_one_core"] = round(statistics.median(cpu) * 100, 2)
    summary["stall_ms"] = {"same_process": round(inside * 1000), "helper": round(helper * 1000)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
