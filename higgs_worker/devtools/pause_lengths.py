"""The longest pauses in synthetic read speech: the measurement behind the runaway guard's
default (``RUNAWAY_SILENCE_SECONDS``).

espeak-ng reads a passage of several paragraphs (sentence ends, commas, colons, dashes,
ellipses, quoted speech, paragraph breaks) at a slow and a normal rate; every pause is a
run of 40 ms frames more than ``QUIET_DB`` below the loudest frame (the cue ``trim_silence``
uses). It prints the pauses' percentiles and the longest.

    python -m higgs_worker.devtools.pause_lengths
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf

QUIET_DB = 40.0
FRAME_S = 0.04

PASSAGE = """\
It was late in the evening when the letter arrived. Nobody expected it; nobody wanted it.

"Read it aloud," she said... and then, after a long breath: "No. Wait."

He folded the page twice — slowly, carefully — and put it in his coat. Outside, the rain had stopped.
The street was empty: no cars, no people, only the lamps.

Chapter two. The next morning, at seven o'clock, the telephone rang three times.
Then silence. Then it rang again!

Why now? Why, after all these years, would anyone write to them?
"""


def pauses(audio: np.ndarray, rate: int) -> list[float]:
    """Lengths in seconds of the quiet runs between the first and the last audible frame."""
    size = int(rate * FRAME_S)
    frames = audio[: len(audio) // size * size].reshape(-1, size)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    quiet = level < level.max() - QUIET_DB
    loud = np.flatnonzero(~quiet)
    runs, run = [], 0
    for is_quiet in quiet[loud[0] : loud[-1] + 1]:
        if is_quiet:
            run += 1
        elif run:
            runs.append(run * FRAME_S)
            run = 0
    return runs


def speak(text: str, words_per_minute: int) -> tuple[np.ndarray, int]:
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(words_per_minute), "--stdout", text], capture_output=True, check=True
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, rate


def main() -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    print("| rate (wpm) | pauses | median s | p95 s | longest s |")
    print("|---|---|---|---|---|")
    for wpm in (120, 175):
        found = pauses(*speak(PASSAGE, wpm))
        print(f"| {wpm} | {len(found)} | {np.median(found):.2f} | {np.percentile(found, 95):.2f} | {max(found):.2f} |")


if __name__ == "__main__":
    main()
