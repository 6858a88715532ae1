"""Join generated pieces into one waveform, and say where each part of the text plays.

Pieces (one per generated chunk, at the model's rate) are joined with ``pause_s`` of
silence between them (none given: joined as they are) and, with ``trim``, each
piece's leading and trailing silence cut first. The joined audio is resampled once;
a boundary at model sample ``b`` lands at output sample ``ceil(b * out / in)``, the
length torchaudio gives the resampled first ``b`` samples (``output_position``), so
segment boundaries are exact sample positions of the final file.

A chunk that holds several ``[SPEAKERn]`` turns (``chunk_method`` ``none`` or
``word`` on a dialogue) is one generation: its span is shared among its turns in
proportion to their characters, and those segments are marked ``approximate`` (with
word times, ``narration.add_words`` moves those boundaries to where the next turn's
first word starts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..text.chunking import SPEAKER_TAG
from ..text.normalize import Normalized

SILENCE_BELOW_PEAK_DB = 40.0  # a 10 ms frame this far below the piece's loudest one is silence
FRAME_S = 0.01
KEEP_S = 0.01  # silence kept next to the sound when trimming, so onsets are not clipped


def _times(start: int, end: int, rate: int) -> dict:
    return {"start_s": round(start / rate, 6), "end_s": round(end / rate, 6), "start_sample": start, "end_sample": end}


@dataclass(frozen=True)
class Word:
    text: str  # as written, with its punctuation
    start: int  # first sample, at the output rate
    end: int  # one past the last sample
    approximate: bool = False  # pronunciation guessed or times shared out, not aligned as written

    def as_output(self, rate: int) -> dict:
        out = {"word": self.text, **_times(self.start, self.end, rate)}
        if self.approximate:
            out["approximate"] = True
        return out


@dataclass(frozen=True)
class Segment:
    text: str
    speaker: str | None
    start: int  # first sample, at the output rate
    end: int  # one past the last sample
    approximate: bool = False  # times shared out by characters inside one generated chunk
    chunk: int = 0  # the generated chunk it belongs to
    words: tuple[Word, ...] | None = None  # with word_timestamps
    alignment_error: str | None = None  # why its words are shared out by characters
    reading: Normalized | None = None  # ``text`` as written and as read (None: read as written)

    @property
    def spoken(self) -> str:
        """The text as the model read it (after normalisation)."""
        return self.reading.spoken if self.reading is not None else self.text

    def as_output(self, rate: int) -> dict:
        out = {"text": self.text, "spoken": self.spoken, "speaker": self.speaker, **_times(self.start, self.end, rate)}
        if self.approximate:
            out["approximate"] = True
        if self.words is not None:
            out["words"] = [word.as_output(rate) for word in self.words]
        if self.alignment_error is not None:
            out["alignment_error"] = self.alignment_error
        return out


def trim_silence(audio: np.ndarray, rate: int, below_peak_db: float = SILENCE_BELOW_PEAK_DB) -> np.ndarray:
    """``audio`` without its leading and trailing silent 10 ms frames: frames whose RMS is
    ``below_peak_db`` under the loudest frame's (relative, as the level is not set yet),
    and digital silence. Nothing is left of audio that is all digital silence."""
    frame = max(1, int(rate * FRAME_S))
    count = len(audio) // frame + (1 if len(audio) % frame else 0)
    if count == 0:
        return audio
    padded = np.zeros(count * frame, dtype=np.float32)
    padded[: len(audio)] = audio
    rms = np.sqrt(np.mean(np.square(padded.reshape(count, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero((rms > 0) & (rms > rms.max() * 10 ** (-below_peak_db / 20)))
    if loud.size == 0:
        return audio[:0]
    keep = int(rate * KEEP_S)
    start = max(0, loud[0] * frame - keep)
    end = min(len(audio), (loud[-1] + 1) * frame + keep)
    return audio[start:end]


def join(
    pieces: Sequence[np.ndarray], rate: int, pause_s: float | None = None, trim: bool = False
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The joined audio and each piece's ``(start, end)`` in it (model samples)."""
    gap = np.zeros(round((pause_s or 0.0) * rate), dtype=np.float32)
    parts: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    position = 0
    for index, piece in enumerate(pieces):
        piece = np.asarray(piece, dtype=np.float32)
        if trim:
            piece = trim_silence(piece, rate)
        if index and gap.size:
            parts.append(gap)
            position += gap.size
        parts.append(piece)
        spans.append((position, position + len(piece)))
        position += len(piece)
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return audio, spans


def output_position(sample: int, source_rate: int, target_rate: int) -> int:
    """Where model sample ``sample`` lands after resampling: ``ceil(sample * target / source)``
    in the reduced ratio, torchaudio's length for the resampled first ``sample`` samples."""
    if source_rate == target_rate:
        return sample
    divisor = math.gcd(source_rate, target_rate)
    source, target = source_rate // divisor, target_rate // divisor
    return -(-sample * target // source)


def chunk_turns(text: str, speaker: str | None) -> tuple[list[tuple[str | None, str]], str | None]:
    """``(speaker, text)`` for each turn in a chunk's text, tags removed; text before the
    first tag belongs to ``speaker``. Also returns the speaker at the chunk's end."""
    turns: list[tuple[str | None, str]] = []
    position = 0
    for match in SPEAKER_TAG.finditer(text):
        before = text[position : match.start()].strip()
        if before:
            turns.append((speaker, before))
        speaker = match.group(0)[1:-1]
        position = match.end()
    rest = text[position:].strip()
    if rest or not turns:
        turns.append((speaker, rest))
    return turns, speaker


def reading_turns(reading: Normalized, speaker: str | None) -> tuple[list[tuple[str | None, Normalized]], str | None]:
    """``chunk_turns`` of a chunk's text as written and as read: each turn's map (tags removed,
    stripped). Tags are read as written, so they cut both texts at the same places."""
    spoken = reading.spoken
    turns: list[tuple[str | None, Normalized]] = []
    position = 0
    for match in SPEAKER_TAG.finditer(spoken):
        before = reading.slice(position, match.start()).strip()
        if before.spoken or before.written:
            turns.append((speaker, before))
        speaker = match.group(0)[1:-1]
        position = match.end()
    rest = reading.slice(position, len(spoken)).strip()
    if rest.spoken or rest.written or not turns:
        turns.append((speaker, rest))
    return turns, speaker


def split_span(start: int, end: int, weights: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` cut into consecutive spans in proportion to ``weights``."""
    total = sum(weights)
    if total <= 0:
        weights, total = [1] * len(weights), len(weights)
    bounds, running = [start], 0
    for weight in weights:
        running += weight
        bounds.append(start + round((end - start) * running / total))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def build(
    chunks: Sequence[tuple[str | Normalized, str | None]],
    spans: Sequence[tuple[int, int]],
    source_rate: int,
    target_rate: int,
) -> list[Segment]:
    """Segments in play order from each chunk's ``(text, speaker)`` and its span in the
    joined audio at ``source_rate``; positions at ``target_rate``. A chunk's text is a
    ``Normalized`` (as written and as read) or a plain string (read as written)."""
    segments: list[Segment] = []
    speaker: str | None = None
    for index, ((text, chunk_speaker), (start, end)) in enumerate(zip(chunks, spans, strict=True)):
        reading = text if isinstance(text, Normalized) else Normalized.unchanged(text)
        turns, speaker = reading_turns(reading, chunk_speaker or speaker)
        first, last = output_position(start, source_rate, target_rate), output_position(end, source_rate, target_rate)
        weights = [len(turn.spoken) for _, turn in turns]
        pieces = split_span(first, last, weights) if len(turns) > 1 else [(first, last)]
        for (who, turn), (a, b) in zip(turns, pieces, strict=True):
            kept = turn if turn.changed else None
            segments.append(
                Segment(turn.written.strip(), who, a, b, approximate=len(turns) > 1, chunk=index, reading=kept)
            )
    return segments
