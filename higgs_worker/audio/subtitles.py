"""SRT and WebVTT subtitles from timed segments.

A segment that would run longer than ``MAX_CUE_S`` seconds or ``MAX_CUE_CHARS``
characters is split at sentence ends, then at clause marks (, ; : and dashes), then
between words, and the pieces are packed back into cues within both limits. Without
word times, times inside a segment are shared out in proportion to characters: they are
estimates; cue boundaries that are segment boundaries are exact. With word times
(``word_timestamps``), the same cuts are made on the segment's words, and each cue
starts when its first word starts and ends when its last word ends.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from ..text.chunking import SENTENCE_END
from .segments import Segment, Word

MAX_CUE_S = 6.0
MAX_CUE_CHARS = 84  # two lines of 42, the usual subtitle line length
LINE_CHARS = 42
CLAUSE_END = re.compile(r"(?<=[,;:，；：])\s+|\s+(?=[—–-]\s)")
CONTENT_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str
    speaker: str | None


def _units(text: str, seconds_per_char: float) -> list[str]:
    """``text`` cut at sentence, then clause, then word boundaries, until each piece fits
    a cue (a single word may still be longer)."""

    def fits(piece: str) -> bool:
        return len(piece) <= MAX_CUE_CHARS and len(piece) * seconds_per_char <= MAX_CUE_S

    out: list[str] = []
    for sentence in (s.strip() for s in SENTENCE_END.split(text)):
        if not sentence:
            continue
        if fits(sentence):
            out.append(sentence)
            continue
        for clause in (c.strip() for c in CLAUSE_END.split(sentence)):
            if clause:
                out += [clause] if fits(clause) else clause.split()
    return out


def _pack(units: list[str], seconds_per_char: float) -> list[str]:
    """Consecutive units joined into cue texts that stay within the limits."""
    cues: list[str] = []
    for unit in units:
        joined = f"{cues[-1]} {unit}" if cues else unit
        if cues and len(joined) <= MAX_CUE_CHARS and len(joined) * seconds_per_char <= MAX_CUE_S:
            cues[-1] = joined
        else:
            cues.append(unit)
    return cues


def segment_cues(segment: Segment, rate: int) -> list[Cue]:
    start, end = segment.start / rate, segment.end / rate
    text = " ".join(segment.text.split())
    if not text:
        return []
    seconds_per_char = (end - start) / len(text)
    pieces = _pack(_units(text, seconds_per_char), seconds_per_char)
    weights = [len(piece) for piece in pieces]
    total, running, cues = sum(weights), 0, []
    for piece, weight in zip(pieces, weights, strict=True):
        a = start + (end - start) * running / total
        running += weight
        b = start + (end - start) * running / total
        cues.append(Cue(round(a * 1000), round(b * 1000), piece, segment.speaker))
    return cues


def _word_units(words: Sequence[Word], rate: int) -> list[list[Word]]:
    """Runs of words cut at sentence ends, then clause marks, then between words, until
    each run fits a cue by its characters and its aligned duration."""

    def fits(run: list[Word]) -> bool:
        chars = len(" ".join(w.text for w in run))
        return chars <= MAX_CUE_CHARS and (run[-1].end - run[0].start) / rate <= MAX_CUE_S

    def cut(run: list[Word], ends: re.Pattern, before_dash: bool) -> list[list[Word]]:
        pieces: list[list[Word]] = [[]]
        for index, word in enumerate(run):
            pieces[-1].append(word)
            following = run[index + 1].text if index + 1 < len(run) else ""
            if ends.search(word.text + " ") or (before_dash and following[:1] in ("—", "–", "-")):
                pieces.append([])
        return [piece for piece in pieces if piece]

    out: list[list[Word]] = []
    for sentence in cut(list(words), SENTENCE_END, False):
        if fits(sentence):
            out.append(sentence)
            continue
        for clause in cut(sentence, CLAUSE_END, True):
            out += [clause] if fits(clause) else [[word] for word in clause]
    return out


def word_cues(segment: Segment, rate: int) -> list[Cue]:
    """Cues on the segment's word times: units packed while they fit."""
    assert segment.words is not None
    runs: list[list[Word]] = []
    for unit in _word_units(segment.words, rate):
        joined = runs[-1] + unit if runs else unit
        chars = len(" ".join(w.text for w in joined))
        if runs and chars <= MAX_CUE_CHARS and (joined[-1].end - joined[0].start) / rate <= MAX_CUE_S:
            runs[-1] = joined
        else:
            runs.append(unit)
    return [
        Cue(
            round(run[0].start * 1000 / rate),
            round(run[-1].end * 1000 / rate),
            " ".join(w.text for w in run),
            segment.speaker,
        )
        for run in runs
    ]


def build_cues(segments: Sequence[Segment], rate: int) -> list[Cue]:
    """Cues in order; a cue that rounds to no time gives its text to its neighbour."""
    cues: list[Cue] = []
    pending = ""
    for cue in (c for segment in segments for c in (word_cues if segment.words else segment_cues)(segment, rate)):
        if cue.end_ms <= cue.start_ms:
            pending = f"{pending} {cue.text}".strip()
            continue
        if pending:
            cue = Cue(cue.start_ms, cue.end_ms, f"{pending} {cue.text}", cue.speaker)
            pending = ""
        cues.append(cue)
    if pending and cues:
        last = cues[-1]
        cues[-1] = Cue(last.start_ms, last.end_ms, f"{last.text} {pending}", last.speaker)
    return cues


def _timestamp(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _lines(text: str) -> str:
    return "\n".join(textwrap.wrap(text, LINE_CHARS)) or text


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip; a dialogue line starts with its speaker as ``[SPEAKERn]``."""
    blocks = []
    for number, cue in enumerate(cues, 1):
        text = f"[{cue.speaker}] {cue.text}" if cue.speaker else cue.text
        times = f"{_timestamp(cue.start_ms, ',')} --> {_timestamp(cue.end_ms, ',')}"
        blocks.append(f"{number}\n{times}\n{_lines(text)}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT; a dialogue cue carries its speaker as a voice span ``<v SPEAKERn>``."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = _lines(_vtt_escape(cue.text))
        if cue.speaker:
            text = f"<v {cue.speaker}>{text}"
        blocks.append(f"{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}\n{text}\n")
    return "\n".join(blocks)


def render(fmt: str, segments: Sequence[Segment], rate: int) -> str:
    cues = build_cues(segments, rate)
    return to_srt(cues) if fmt == "srt" else to_vtt(cues)
