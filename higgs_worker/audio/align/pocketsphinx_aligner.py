"""Forced alignment with PocketSphinx 5 (BSD): where each known word plays in a piece of audio.

PocketSphinx's alignment search walks a chain of the text's words, with optional
silence between them, through the audio's 10 ms frames (MFCC, means subtracted over the
whole piece) and keeps the best path. Each alignment builds a decoder with a dictionary
of just this text's words, named by position (``w0``, ``w1``, ...), so every word maps
back to its place even when it repeats, and nothing lingers between calls.

Measured choices (benchmarks/word_alignment.py): a faint noise floor is added first,
because digital silence (``pause_s``, trimmed edges) gives the features ``log(0)`` and
the search then finds no path; wider beams than the defaults, so a word whose
pronunciation is guessed is not pruned away; a likelier silence between words, so a short
pause is not counted to a word; and each word's edges are then moved inwards past
frames that are silence (``refine_edges``).

The acoustic model comes from a folder laid out as PocketSphinx's (``mdef``, ``means``,
``feat.params``, ...); ``english()`` uses the US English model inside the pocketsphinx
wheel. Another language is another model folder and a ``pronounce`` for its words
(docs/narration.md, word timestamps).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .aligner import ALIGN_RATE, AlignmentFailed, WordTime
from .english import Pronouncer, Pronunciation

FRAME_S = 0.01  # PocketSphinx's frame shift
DITHER_RMS = 1e-4  # about -80 dBFS: no frame is digital silence
# wider beams than the defaults (1e-48, 7e-29, 1e-48) and a likelier optional silence
# between words (default silprob 0.005), chosen by benchmarks/word_alignment.py
SEARCH = {"beam": 1e-60, "wbeam": 1e-50, "pbeam": 1e-60, "silprob": 0.5}
WIDE_SEARCH = {"beam": 1e-100, "wbeam": 1e-100, "pbeam": 1e-100, "silprob": 0.5}  # when SEARCH finds no path


def to_align_rate(audio: np.ndarray, rate: int, dither_rms: float = DITHER_RMS) -> np.ndarray:
    """16 kHz 16-bit PCM of ``audio`` with a faint, fixed noise floor. The worker hands
    over 16 kHz already (scipy's resampler takes seconds to import)."""
    audio = np.asarray(audio, dtype=np.float32)
    if rate != ALIGN_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        divisor = gcd(rate, ALIGN_RATE)
        audio = resample_poly(audio, ALIGN_RATE // divisor, rate // divisor).astype(np.float32)
    if dither_rms > 0:
        audio = audio + np.random.default_rng(0).normal(0.0, dither_rms, len(audio)).astype(np.float32)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


class PocketSphinxAligner:
    """Word times for one language: an acoustic model folder and a way to pronounce words.
    ``searches`` (tried in order until one finds a path), ``dither_rms`` and ``refine`` are
    the measured choices above (the benchmark also runs PocketSphinx's defaults:
    ``searches=({},)``, ``dither_rms=0``, ``refine=False``)."""

    def __init__(
        self,
        model_dir: Path,
        pronounce: Callable[[str], Pronunciation | None],
        searches: Sequence[dict] = (SEARCH, WIDE_SEARCH),
        dither_rms: float = DITHER_RMS,
        refine: bool = True,
    ):
        self.model_dir = Path(model_dir)
        self.pronounce = pronounce
        self.searches = tuple(searches)
        self.dither_rms, self.refine = dither_rms, refine

    def align(self, audio: np.ndarray, rate: int, words: Sequence[str]) -> list[WordTime]:
        """One ``WordTime`` per word, in order; raises ``AlignmentFailed``."""
        if not words:
            return []
        prons = [self.pronounce(word) for word in words]
        spoken = [index for index, pron in enumerate(prons) if pron is not None]
        if not spoken:
            raise AlignmentFailed("no word of the text has a pronunciation this aligner knows")
        duration = len(audio) / rate
        pcm = to_align_rate(audio, rate, self.dither_rms)
        for attempt, search in enumerate(self.searches):
            try:
                segments = self._search(pcm, {index: prons[index] for index in spoken}, search)
                times = {int(name[1:]): (a * FRAME_S, min(duration, (b + 1) * FRAME_S)) for name, a, b in segments}
                if sorted(times) != spoken:
                    raise AlignmentFailed("the alignment lost words (no path through the whole text)")
                break
            except AlignmentFailed:
                if attempt == len(self.searches) - 1:
                    raise
        if self.refine:
            times = refine_edges(audio, rate, times)
        return _with_unspoken(words, prons, times, duration)

    def _search(self, pcm: np.ndarray, prons: dict[int, Pronunciation], search: dict) -> list[tuple[str, int, int]]:
        from pocketsphinx import Decoder

        with tempfile.TemporaryDirectory(prefix="align-") as folder:
            dictionary = Path(folder) / "words.dict"
            lines = []
            for index, pron in prons.items():
                for variant, phones in enumerate(pron.variants):
                    name = f"w{index}" if variant == 0 else f"w{index}({variant + 1})"
                    lines.append(f"{name} {' '.join(phones)}")
            dictionary.write_text("\n".join(lines) + "\n", encoding="utf-8")
            try:
                decoder = Decoder(hmm=str(self.model_dir), dict=str(dictionary), lm=None, loglevel="FATAL", **search)
                decoder.set_align_text(" ".join(f"w{index}" for index in prons))
            except (RuntimeError, ValueError) as exc:
                raise AlignmentFailed(f"the aligner refused the text ({exc})") from None
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is None:
            raise AlignmentFailed("no alignment path through the audio (does the speech match the text?)")
        return [(s.word.split("(", 1)[0], s.start_frame, s.end_frame) for s in decoder.seg() if s.word[:1] == "w"]


QUIET_DB = 40.0


def refine_edges(audio: np.ndarray, rate: int, times: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """Each word's edges moved inwards past 10 ms frames that are silence: ``QUIET_DB``
    under the loud level of the audio (its 99th-percentile frame). Never outwards, and a
    word without a loud frame keeps its times."""
    frame = max(1, round(rate * FRAME_S))
    count = len(audio) // frame
    if count == 0:
        return times
    frames = np.asarray(audio[: count * frame], dtype=np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    loud = rms > np.percentile(rms, 99) * 10 ** (-QUIET_DB / 20)
    step = frame / rate  # seconds a frame (not exactly FRAME_S at every rate)
    refined = {}
    for index, (start, end) in times.items():
        first, last = int(start / step), min(count, int(np.ceil(end / step)))
        inside = np.flatnonzero(loud[first:last])
        if inside.size == 0:
            refined[index] = (start, end)
        else:
            refined[index] = (max(start, (first + inside[0]) * step), min(end, (first + inside[-1] + 1) * step))
    return refined


def _with_unspoken(
    words: Sequence[str],
    prons: Sequence[Pronunciation | None],
    times: dict[int, tuple[float, float]],
    duration: float,
) -> list[WordTime]:
    """Aligned words as they are; words without phones (another script, a symbol) get the
    time between their aligned neighbours, shared by characters, marked approximate."""
    from .words import share_by_characters

    out: list[WordTime | None] = [None] * len(words)
    for index, (start, end) in times.items():
        pron = prons[index]
        out[index] = WordTime(words[index], start, end, approximate=bool(pron and pron.guessed))
    index = 0
    while index < len(words):
        if out[index] is not None:
            index += 1
            continue
        run_end = index
        while run_end < len(words) and out[run_end] is None:
            run_end += 1
        before = out[index - 1].end_s if index > 0 else 0.0
        after = out[run_end].start_s if run_end < len(words) else duration
        spans = share_by_characters(words[index:run_end], before, max(before, after))
        for offset, (start, end) in enumerate(spans):
            out[index + offset] = WordTime(words[index + offset], start, end, approximate=True)
        index = run_end
    return [word for word in out if word is not None]


def english_pronouncer() -> Pronouncer:
    """The CMU dictionary shipped inside the pocketsphinx wheel."""
    from pocketsphinx import get_model_path

    return Pronouncer(Path(get_model_path("en-us/cmudict-en-us.dict")))


def english(**options) -> PocketSphinxAligner:
    """US English: the acoustic model and CMU dictionary shipped inside the pocketsphinx wheel."""
    from pocketsphinx import get_model_path

    return PocketSphinxAligner(Path(get_model_path("en-us/en-us")), english_pronouncer().pronounce, **options)
