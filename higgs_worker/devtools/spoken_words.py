"""Speech whose every word's time is known: espeak-ng speaks each word alone, and the
words are joined with chosen silences, for the word-alignment tests and benchmark.

espeak-ng (Debian's ``espeak-ng`` package; ``.ci/run`` installs it) pads each word
with silence, and some of its voices (``+f3``) let a word fade out for a third of a
second; the word is cut to its audible part (5 ms frames within ``AUDIBLE_DB`` of its
loudest, the rule ``trim_silence`` uses), so its start and end in the joined audio are
exact. Between words: nothing (the
words touch, as in running speech), a short gap, or a sentence pause after ``.!?``;
the gaps are drawn from ``seed``. A quiet noise floor (``noise``, RMS) covers the whole
file so no part of it is digital silence, as in generated speech.

    python -m higgs_worker.devtools.spoken_words "Hello there." --voice en-us --out hello.wav
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf

AUDIBLE_DB = 40.0
AUDIBLE_FRAME_S = 0.005
LEAD_S = 0.3  # silence before the first word and after the last
TOUCH_SHARE = 0.35  # share of word boundaries without any gap
GAP_S = (0.02, 0.15)
SENTENCE_PAUSE_S = (0.3, 0.6)


@dataclass(frozen=True)
class SpokenWords:
    audio: np.ndarray  # float32 mono
    rate: int
    words: list[str]
    spans: list[tuple[int, int]]  # each word's [start, end) in samples


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak_word(word: str, voice: str = "en-us", speed: int = 175) -> tuple[np.ndarray, int]:
    """One word spoken alone, cut to its audible part."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", word], capture_output=True, check=True, timeout=30
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    frame = round(rate * AUDIBLE_FRAME_S)
    count = len(audio) // frame
    rms = np.sqrt(np.mean(np.square(audio[: count * frame].reshape(count, frame), dtype=np.float64), axis=1))
    audible = np.flatnonzero(rms > rms.max() * 10 ** (-AUDIBLE_DB / 20)) if count else np.zeros(0, int)
    if audible.size == 0 or rms.max() == 0:
        raise ValueError(f"espeak-ng said nothing for {word!r}")
    return audio[audible[0] * frame : (audible[-1] + 1) * frame], rate


def speak(
    words: Sequence[str], voice: str = "en-us", speed: int = 175, seed: int = 0, noise: float = 3e-4
) -> SpokenWords:
    """``words`` spoken one by one and joined; see the module's docstring."""
    rng = random.Random(seed)
    parts: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    rate = 22050
    position = 0
    for index, word in enumerate(words):
        audio, rate = speak_word(word, voice, speed)
        if index == 0:
            parts.append(np.zeros(round(LEAD_S * rate), dtype=np.float32))
            position += len(parts[-1])
        spans.append((position, position + len(audio)))
        parts.append(audio)
        position += len(audio)
        if word[-1] in ".!?" or index == len(words) - 1:
            gap = rng.uniform(*SENTENCE_PAUSE_S) if index < len(words) - 1 else LEAD_S
        else:
            gap = 0.0 if rng.random() < TOUCH_SHARE else rng.uniform(*GAP_S)
        parts.append(np.zeros(round(gap * rate), dtype=np.float32))
        position += len(parts[-1])
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if noise > 0:
        joined = joined + np.random.default_rng(seed).normal(0.0, noise, len(joined)).astype(np.float32)
    return SpokenWords(joined.astype(np.float32), rate, list(words), spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--speed", type=int, default=175)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    spoken = speak(args.text.split(), args.voice, args.speed)
    sf.write(args.out, spoken.audio, spoken.rate)
    for word, (start, end) in zip(spoken.words, spoken.spans, strict=True):
        print(f"{start / spoken.rate:8.3f} {end / spoken.rate:8.3f}  {word}")


if __name__ == "__main__":
    main()
