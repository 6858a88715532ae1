"""What a job costs on the CPU after generation, per second of speech (figures, no asserts).

    python benchmarks/post_generation.py [--seconds 60] [--rate 300] [--repeat 3]
    python benchmarks/post_generation.py --code /tmp/main      # the same table for other code

Speech is made here by Debian's espeak-ng (``apt-get install espeak-ng``): sentences in two
voices, one generated chunk each, resampled to the model's 24 kHz and cut into the pieces the
streaming decoder hands out (0.4 s, then 1.6 s at a time). The tiny model's noise would
understate the cost: codecs and the limiter work harder on speech.

Each step is timed as this process's CPU time (torch on one thread: one core), the best of
``--repeat`` runs, in ms per second of audio. Lossy outputs also get their bitrate and a
quality figure: the spectral distance of the decoded audio to the source (mean log-mel
distance in dB over the frames that hold speech; 0 = identical, lower = closer).

- steps: the streaming codec decode on the CPU (a GPU worker runs it on the GPU; the full-size
  audio tokenizer with random weights), joins, segments and subtitles, resampling, loudness,
  every output format, the queue's stream items, the HTTP door's streamed formats, base64;
- jobs: the same functions in the order jobs.py runs them (default mp3 job, streamed job,
  narration job with pauses, trimming, loudness -16 and srt subtitles, both streamed, the HTTP
  door's mp3), each with the cores it needs at ``--rate`` audio-seconds per second;
- scaling: the streamed narration job on 2 threads at once against 1 (the same jobs; wall
  time, in rounds where two cores were free), and how each thread's time on 2 threads splits
  into running, waiting for a CPU and waiting for the GIL (the kernel's accounting).

``--code DIR`` measures the ``higgs_worker`` package found in DIR instead of this checkout
(e.g. ``git archive main higgs_worker | tar -x -C /tmp/main``): the baseline, on the same
speech, in the same table. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
RATE = 24000
FIRST_PIECE, LATER_PIECE = 10 * 960, 40 * 960  # the streaming decoder's first and later windows
SENTENCES = (
    "The sun rises in the east and sets in the west.",
    "This simple fact has been observed for ages, and yet it still surprises us on a clear morning.",
    "Sailors once steered by the stars, reading the sky like a map.",
    "Today a small device in a pocket does the same work, but the sky has not changed.",
    "Listen closely: the wind carries the sound of the harbour, gulls, ropes and the slow creak of wooden hulls.",
    "Is that thunder in the distance, or only a truck crossing the old iron bridge?",
    "Numbers help too: twelve boats, forty-two sails and three thousand five hundred fish before noon.",
    "By evening the market is quiet again, and the lamps come on one by one along the quay.",
)
VOICES = ("en-us", "en-gb")


# -- speech and its quality ------------------------------------------------------------


def espeak(text: str, voice: str) -> np.ndarray:
    from higgs_worker.audio.codecs import resample

    binary = shutil.which("espeak-ng")
    if binary is None:
        sys.exit("post_generation: espeak-ng is not installed (apt-get install -y espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run([binary, "-v", voice, "-s", "165", "-w", str(path), text], check=True, capture_output=True)
        audio, rate = sf.read(path, dtype="float32")
    return resample(audio, rate, RATE)


def speech_chunks(seconds: float) -> list[tuple[str, np.ndarray]]:
    """``(text, audio)``: one sentence a chunk, cycling through the sentences and voices."""
    chunks: list[tuple[str, np.ndarray]] = []
    while sum(len(audio) for _, audio in chunks) < seconds * RATE:
        index = len(chunks)
        text = SENTENCES[index % len(SENTENCES)]
        chunks.append((text, espeak(text, VOICES[index % len(VOICES)])))
    return chunks


def stream_pieces(chunks: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """Each chunk cut as the streaming decoder hands it out."""
    pieces = []
    for _, audio in chunks:
        start, size = 0, FIRST_PIECE
        while start < len(audio):
            pieces.append(audio[start : start + size])
            start, size = start + size, LATER_PIECE
    return pieces


def _mel_filters(rate: int, n_fft: int, bands: int = 64) -> np.ndarray:
    def mel(hz):
        return 2595 * np.log10(1 + hz / 700)

    edges = 700 * (10 ** (np.linspace(mel(50.0), mel(rate / 2), bands + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    return np.clip(np.minimum(rising, falling), 0, None)


def _mel_power(audio: np.ndarray, rate: int, n_fft: int = 1024, hop: int = 240) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop] * np.hanning(n_fft)
    return np.square(np.abs(np.fft.rfft(frames, axis=1))) @ _mel_filters(rate, n_fft).T


def spectral_distance(reference: np.ndarray, decoded: np.ndarray, rate: int = RATE) -> float:
    """Mean log-mel distance in dB (64 bands, 1024-point frames every 10 ms) over the frames
    within 40 dB of the loudest, after lining the two up (a codec may add a delay); powers
    more than 60 dB under the reference's loudest band count as that floor."""
    window, most = min(len(reference), 2 * rate), rate // 5
    if len(decoded) >= window + most:
        decoded = decoded[int(np.argmax(np.correlate(decoded[: window + most], reference[:window], "valid"))) :]
    length = min(len(reference), len(decoded))
    a, b = _mel_power(reference[:length], rate), _mel_power(decoded[:length], rate)
    floor = a.max() * 1e-6
    a, b = 10 * np.log10(np.maximum(a, floor)), 10 * np.log10(np.maximum(b, floor))
    speech = a.max(axis=1) > a.max() - 40
    return float(np.sqrt(np.mean(np.square(a[speech] - b[speech]), axis=1)).mean())


def decoded(files: list[bytes]) -> np.ndarray:
    return np.concatenate([sf.read(io.BytesIO(data), dtype="float32")[0] for data in files])


# -- timing ---------------------------------------------------------------------------


def cpu_ms(work: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The least CPU time (ms) of ``repeat`` runs of ``work`` after one untimed run (caches,
    imports), and its last result."""
    best, result = float("inf"), work()
    for _ in range(repeat):
        start = time.process_time()
        result = work()
        best = min(best, time.process_time() - start)
    return best * 1000, result


class Bench:
    def __init__(self, chunks, repeat: int, rate: float):
        from higgs_worker.contract.config import Settings

        self.chunks, self.repeat, self.rate = chunks, repeat, rate
        self.audio = np.concatenate([audio for _, audio in chunks])
        self.seconds = len(self.audio) / RATE
        self.pieces = stream_pieces(chunks)
        self.settings = Settings.from_env({})
        self.rows: list[dict] = []

    def row(self, group: str, name: str, work: Callable[[], object], seconds: float | None = None, **extra) -> object:
        ms, result = cpu_ms(work, self.repeat)
        per_second = ms / (seconds or self.seconds)
        self.rows.append({"group": group, "step": name, "ms_per_audio_s": round(per_second, 3), **extra})
        return result

    def lossy_row(self, group: str, name: str, work: Callable[[], list[bytes]], reference: np.ndarray) -> None:
        """A step whose result is encoded files (joined, they are ``reference``)."""
        ms, files = cpu_ms(work, self.repeat)
        self.rows.append(
            {
                "group": group,
                "step": name,
                "ms_per_audio_s": round(ms / self.seconds, 3),
                "kbit_s": round(sum(len(f) for f in files) * 8 / self.seconds / 1000, 1),
                "distance_db": round(spectral_distance(reference, decoded(files)), 2),
            }
        )

    # -- the pieces of a job ----------------------------------------------------------

    def request(self, **fields):
        from higgs_worker.contract.schema import parse_request

        return parse_request({"text": "benchmark", **fields}, self.settings)

    def synthesis(self):
        import torch

        from higgs_worker.synthesis import ChunkAudio, Synthesis

        chunks = [ChunkAudio(i, text, audio, torch.zeros((8, 0))) for i, (text, audio) in enumerate(self.chunks)]
        return Synthesis(audio=self.audio, sample_rate=RATE, num_chunks=len(chunks), seed=0, chunks=chunks)

    def stream_items(self) -> list[dict]:
        from higgs_worker.audio.stream_items import StreamItems

        items: list[dict] = []
        send = StreamItems(items.append, {"n": 0, "bytes": 0}, budget=10**12)
        for piece in self.pieces:
            send(piece)
        return items

    def job(self, request, streamed: bool = False) -> bytes:
        """jobs.py's path after generation: stream items (while generating), then render
        (narration.py), encode, base64 for inline delivery."""
        from higgs_worker import narration
        from higgs_worker.audio import codecs

        if streamed:
            self.stream_items()
        rendered = narration.render(self.synthesis(), request)
        data = codecs.encode(rendered.waveform, request.sample_rate, request.output_format.value)
        return base64.b64encode(data)

    def http_speech(self, fmt: str) -> list[bytes]:
        """The HTTP door: the body encoded piece by piece, plus the job's own whole-file output
        (raw PCM, inline)."""
        from higgs_worker import narration
        from higgs_worker.audio import codecs
        from higgs_worker.http.openai_speech import AudioEncoder

        encoder = AudioEncoder(fmt)
        body = [encoder.feed(piece) for piece in self.pieces] + [encoder.finish()]
        rendered = narration.render(self.synthesis(), self.request(output_format="pcm", delivery="base64"))
        base64.b64encode(codecs.to_pcm16(rendered.waveform))
        return body

    # -- the table ----------------------------------------------------------------------

    def steps(self, codec_decode: bool) -> None:
        from higgs_worker.audio import codecs, loudness, segments, subtitles

        if codec_decode:
            self.codec_decode()
        spans = segments.join([audio for _, audio in self.chunks], RATE, 0.3, True)[1]
        texts = [(text, None) for text, _ in self.chunks]
        self.row(
            "step",
            "join: trim silence + 0.3 s pauses",
            lambda: segments.join([a for _, a in self.chunks], RATE, 0.3, True),
        )
        self.row(
            "step",
            "segments + srt subtitles",
            lambda: subtitles.render("srt", segments.build(texts, spans, RATE, RATE), RATE),
        )
        for target in (44100, 16000):
            self.row(
                "step", f"resample 24 -> {target / 1000:g} kHz", lambda t=target: codecs.resample(self.audio, RATE, t)
            )
        for target in (-16.0, -23.0):
            self.row(
                "step",
                f"loudness {target:g} LUFS (true-peak ceiling -1 dBTP)",
                lambda t=target: loudness.normalize(self.audio, RATE, t),
            )
        for fmt in ("wav", "flac", "pcm", "ogg", "opus", "mp3"):
            work = lambda f=fmt: [codecs.encode(self.audio, RATE, f)]  # noqa: E731
            if fmt in ("ogg", "opus", "mp3"):
                self.lossy_row("format", f"file: {fmt}", work, self.audio)
            else:
                self.row("format", f"file: {fmt}", work)
        self.lossy_row(
            "format",
            "stream items (queue /stream, Ogg Opus + base64)",
            lambda: [base64.b64decode(item["audio_base64"]) for item in self.stream_items()],
            self.audio,
        )
        for fmt in ("mp3", "opus", "wav", "flac"):
            work = lambda f=fmt: [b"".join(self.http_body(f))]  # noqa: E731
            if fmt in ("mp3", "opus"):
                self.lossy_row("format", f"HTTP streamed body: {fmt}", work, self.audio)
            else:
                self.row("format", f"HTTP streamed body: {fmt}", work)
        mp3 = codecs.encode(self.audio, RATE, "mp3")
        self.row("step", "base64 of the mp3 (inline delivery)", lambda: base64.b64encode(mp3))

    def http_body(self, fmt: str) -> list[bytes]:
        from higgs_worker.http.openai_speech import AudioEncoder

        encoder = AudioEncoder(fmt)
        return [encoder.feed(piece) for piece in self.pieces] + [encoder.finish()]

    def codec_decode(self) -> None:
        """The audio tokenizer's decode on the CPU: the streaming windows (12 frames of left
        context + 40 new + 3 held back) and the one-piece decode of a chunk."""
        import torch
        from transformers import HiggsAudioV2TokenizerConfig, HiggsAudioV2TokenizerModel

        from higgs_worker.devtools.bench import full_size_tokenizer_config

        torch.manual_seed(0)
        model = HiggsAudioV2TokenizerModel(full_size_tokenizer_config(HiggsAudioV2TokenizerConfig)).eval()
        window, new, windows = 12 + 40 + 3, 40, 3
        codes = torch.randint(0, 1024, (1, 8, window))

        @torch.inference_mode()
        def decode(frames: int) -> None:
            model.decode(codes[:, :, :frames] if frames <= window else torch.randint(0, 1024, (1, 8, frames)))

        self.row(
            "decode",
            "codec decode on the CPU, streaming windows",
            lambda: [decode(window) for _ in range(windows)],
            seconds=windows * new / 25,
        )
        self.row("decode", "codec decode on the CPU, one 10 s chunk", lambda: decode(250), seconds=10.0)

    def jobs(self) -> None:
        default = self.request(output_format="mp3")
        narration_job = self.request(
            output_format="mp3", pause_s=0.3, trim_silence=True, loudness_lufs=-16.0, subtitles="srt"
        )
        for name, work in (
            ("default job: mp3", lambda: self.job(default)),
            ("streamed job: stream items + mp3", lambda: self.job(default, streamed=True)),
            ("narration job: pauses, trim, loudness -16, srt, mp3", lambda: self.job(narration_job)),
            ("streamed narration job", lambda: self.job(narration_job, streamed=True)),
            ("HTTP speech: mp3 body + the job's pcm", lambda: self.http_speech("mp3")),
        ):
            self.row("job", name, work)
            self.rows[-1]["cores_needed"] = round(self.rows[-1]["ms_per_audio_s"] * self.rate / 1000, 2)

    def scaling(self, jobs: int = 4, rounds: int = 6) -> dict:
        """The streamed narration job on 1 and on 2 threads.

        Other processes share this machine, so the wall-clock ratio counts only rounds in
        which a control that never holds the GIL (hashing a fixed amount) reached 1.85x just
        before and after (two cores were free). The kernel's per-thread accounting
        (``/proc/thread-self/schedstat``) splits each thread's wall time on 2 threads into
        running, waiting for a CPU (other processes) and blocked, which for these threads
        (no I/O, no sleep) is waiting for the GIL: ``2 x (1 - blocked share)`` estimates the
        ratio on two free cores."""
        request = self.request(
            output_format="mp3", pause_s=0.3, trim_silence=True, loudness_lufs=-16.0, subtitles="srt"
        )

        def work(_=None):
            return self.job(request, streamed=True)

        def speedup(job) -> tuple[float, float]:
            one, two = wall(job, 1, jobs), wall(job, 2, jobs)
            return one, one / two

        counted: list[tuple[float, float]] = []
        for _ in range(rounds):
            before = speedup(lambda _=None: hashing(64))[1]
            one, ratio = speedup(work)
            if min(before, speedup(lambda _=None: hashing(64))[1]) >= 1.85:
                counted.append((one, ratio))
        run, queued, blocked = thread_times(work, 2, jobs)
        result = {
            "jobs": jobs,
            "rounds_with_free_cores": f"{len(counted)}/{rounds}",
            "measured_speedup": round(max(ratio for _, ratio in counted), 2) if counted else None,
            "running_share": round(run, 3),
            "cpu_wait_share": round(queued, 3),
            "gil_wait_share": round(blocked, 3),
            "estimated_speedup": round(2 * (1 - blocked / (run + blocked)), 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        return result


def wall(work: Callable[[object], object], threads: int, jobs: int) -> float:
    """Wall seconds for ``jobs`` runs of ``work`` on ``threads`` threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(jobs)))
    return time.perf_counter() - start


def thread_times(work: Callable[[object], object], threads: int, jobs: int) -> tuple[float, float, float]:
    """Shares of the threads' wall time spent running, waiting for a CPU and blocked,
    from the kernel's accounting of each thread (Linux)."""

    def timed(_=None) -> tuple[float, float, float]:
        with open("/proc/thread-self/schedstat") as stats:
            run0, queue0 = map(int, stats.read().split()[:2])
        start = time.perf_counter()
        work()
        elapsed = time.perf_counter() - start
        with open("/proc/thread-self/schedstat") as stats:
            run1, queue1 = map(int, stats.read().split()[:2])
        return elapsed, (run1 - run0) / 1e9, (queue1 - queue0) / 1e9

    with ThreadPoolExecutor(threads) as pool:
        times = list(pool.map(timed, range(jobs)))
    total, run, queued = (sum(column) for column in zip(*times, strict=True))
    return run / total, queued / total, max(0.0, total - run - queued) / total


_BUFFER = bytes(8 << 20)


def hashing(megabytes: int) -> None:
    """CPU work that never holds the GIL: hashlib releases it for large buffers."""
    for _ in range(megabytes // 8):
        hashlib.sha256(_BUFFER).digest()


def print_table(result: dict) -> None:
    print(f"post-generation CPU cost on {result['audio_s']:.1f} s of espeak-ng speech ({result['code']}), one core")
    print(f"{'step':<58}{'ms/audio-s':>11}{'kbit/s':>8}{'dist dB':>8}{'cores@' + str(result['rate']):>10}")
    group = None
    for row in result["rows"]:
        if row["group"] != group:
            group = row["group"]
            print(f"-- {group}")
        kbit = f"{row['kbit_s']:.1f}" if "kbit_s" in row else ""
        dist = f"{row['distance_db']:.2f}" if "distance_db" in row else ""
        cores = (
            f"{row['cores_needed']:.2f}"
            if "cores_needed" in row
            else f"{row['ms_per_audio_s'] * result['rate'] / 1000:.2f}"
        )
        print(f"{row['step']:<58}{row['ms_per_audio_s']:>11.2f}{kbit:>8}{dist:>8}{cores:>10}")
    scaling = result.get("scaling")
    if scaling:
        measured = scaling["measured_speedup"]
        print(
            f"-- 2 threads vs 1, streamed narration job x{scaling['jobs']}: measured "
            f"{f'{measured}x' if measured else 'n/a'} (rounds with two free cores: "
            f"{scaling['rounds_with_free_cores']}); on 2 threads each thread ran "
            f"{scaling['running_share'] * 100:.0f} %, waited for a CPU {scaling['cpu_wait_share'] * 100:.0f} % "
            f"and for the GIL {scaling['gil_wait_share'] * 100:.0f} % of its time: about "
            f"{scaling['estimated_speedup']}x on two free cores; load average {scaling['load_average']}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="CPU cost after generation, per second of speech")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of speech (default 60)")
    parser.add_argument("--rate", type=float, default=300.0, help="audio-seconds per second to size cores for")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the least CPU time counts")
    parser.add_argument("--code", default=None, help="a folder holding the higgs_worker package to measure")
    parser.add_argument("--no-codec-decode", action="store_true", help="skip the codec decode rows (slow on a CPU)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1-vs-2-thread run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.code).resolve()) if args.code else str(ROOT))
    import torch

    torch.set_num_threads(1)
    import higgs_worker

    bench = Bench(speech_chunks(args.seconds), args.repeat, args.rate)
    bench.steps(codec_decode=not args.no_codec_decode)
    bench.jobs()
    result = {
        "code": str(Path(higgs_worker.__file__).resolve().parents[1]),
        "audio_s": round(bench.seconds, 2),
        "rate": args.rate,
        "rows": bench.rows,
    }
    if not args.no_scaling:
        result["scaling"] = bench.scaling()
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
