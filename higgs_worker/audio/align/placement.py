"""Aligned word times placed on the file's segments, at exact sample positions.

Each generated chunk is aligned once, on its own audio as joined (after trimming, before
the output's resampling and loudness, which move nothing; resampled to the aligner's
16 kHz), with the words of all its segments. A word at ``t`` seconds into its chunk lands at model sample
``chunk start + round(t * rate)`` and then where ``segments.output_position`` puts that
sample in the file. A chunk of several speaker turns then has its turn boundaries at
the start of each next turn's first word, no longer ``approximate``.

A normalised segment (``Segment.reading``: "$3.50" read "three dollars and fifty cents") is
aligned as read, and its words are given back as written (``written_words``): a written
word takes the times of the spoken words read from it, from the first one's start to the
last one's end; written words read together as one stretch share its time by characters
(``approximate``), and one read as nothing gets no time at the previous word's end.

If a chunk's alignment failed, each of its segments keeps its times and shares them out
among its words by characters (every word ``approximate``), with ``alignment_error``.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from itertools import groupby

import numpy as np

from ...text.normalize import Normalized
from .. import codecs
from ..segments import Segment, Word, output_position
from .aligner import ALIGN_RATE
from .service import AlignedWords, AlignmentService
from .words import share_by_characters, split_words, word_spans


def with_words(
    segments: Sequence[Segment],
    joined: np.ndarray,
    spans: Sequence[tuple[int, int]],
    source_rate: int,
    target_rate: int,
    service: AlignmentService,
) -> list[Segment]:
    """``segments`` with their ``words``; ``joined`` and ``spans`` at ``source_rate``."""
    out: list[Segment] = []
    for chunk, group in groupby(segments, key=lambda segment: segment.chunk):
        group = list(group)
        words = [split_words(segment.spoken) for segment in group]
        start, end = spans[chunk]
        # resampled here (torchaudio is loaded already), so the helper needs no resampler of its own
        piece = codecs.resample(joined[start:end], source_rate, ALIGN_RATE)
        aligned = service.align(piece, ALIGN_RATE, [w for ws in words for w in ws])
        if aligned.error is not None or len(aligned.words) != sum(map(len, words)):
            out += [
                _shared(segment, split_words(segment.text), aligned.error or "the aligner lost words")
                for segment in group
            ]
            continue

        def position(seconds: float, start=start, end=end) -> int:
            return output_position(min(end, start + round(seconds * source_rate)), source_rate, target_rate)

        out += [
            dataclasses.replace(segment, words=written_words(segment.reading, segment.words))
            if segment.reading is not None and segment.words is not None
            else segment
            for segment in _placed(group, words, aligned, position)
        ]
    return out


def written_words(reading: Normalized, spoken: Sequence[Word]) -> tuple[Word, ...]:
    """The written words of ``reading`` timed from its ``spoken`` words (``split_words`` of
    ``reading.spoken``, in order)."""
    written_text = reading.written
    written = split_words(written_text)
    written_at = word_spans(written_text)
    spoken_at = word_spans(reading.spoken)
    starts, ends = [a for a, _ in written_at], [b for _, b in written_at]
    # each spoken word: the range of written words it was read from (monotone, as both texts run in order)
    ranges: list[tuple[int, int]] = []
    for a, b in spoken_at:
        wa, wb = reading.written_range(a, b)
        first, last = bisect.bisect_right(ends, wa), bisect.bisect_left(starts, wb) - 1
        if wb <= wa or first > last:  # read from nothing written (a reading cut in two): with the word before
            first = last = ranges[-1][1] if ranges else 0
        ranges.append((first, last))
    out: list[Word] = []
    index = 0  # spoken words taken
    next_written = 0
    while next_written < len(written):
        while index < len(spoken) and ranges[index][1] < next_written:  # belongs to words already given
            index += 1
        if index >= len(spoken) or ranges[index][0] > next_written:  # no spoken word was read from it
            at = out[-1].end if out else (spoken[0].start if spoken else 0)
            out.append(Word(written[next_written], at, at, approximate=True))
            next_written += 1
            continue
        first, last_written = index, ranges[index][1]
        while index < len(spoken) and ranges[index][0] <= last_written:  # the whole run read together
            last_written = max(last_written, ranges[index][1])
            index += 1
        group = range(first, index)
        start, end = spoken[group[0]].start, max(spoken[i].end for i in group)
        names = written[next_written : last_written + 1]
        if len(names) == 1:
            out.append(Word(names[0], start, end, any(spoken[i].approximate for i in group)))
        else:
            shares = share_by_characters(names, start, end)
            out += [Word(n, round(a), round(b), approximate=True) for n, (a, b) in zip(names, shares, strict=True)]
        next_written = last_written + 1
    return tuple(out)


def _placed(group: list[Segment], words: list[list[str]], aligned: AlignedWords, position) -> list[Segment]:
    placed = [Word(w.word, position(w.start_s), position(w.end_s), w.approximate) for w in aligned.words]
    per_segment: list[list[Word]] = []
    for count in map(len, words):
        per_segment.append(placed[:count])
        placed = placed[count:]
    bounds = [group[0].start]
    for index in range(1, len(group)):
        previous, following = per_segment[index - 1], per_segment[index]
        if following:
            floor = previous[-1].end if previous else bounds[-1]
            bounds.append(min(group[-1].end, max(floor, following[0].start)))
        else:
            bounds.append(max(bounds[-1], previous[-1].end if previous else bounds[-1]))
    bounds.append(group[-1].end)
    result = []
    for index, segment in enumerate(group):
        a, b = bounds[index], bounds[index + 1]
        clipped = tuple(
            dataclasses.replace(w, start=min(max(w.start, a), b), end=min(max(w.end, a), b)) for w in per_segment[index]
        )
        result.append(dataclasses.replace(segment, start=a, end=b, approximate=False, words=clipped))
    return result


def _shared(segment: Segment, words: list[str], why: str) -> Segment:
    spans = share_by_characters(words, segment.start, segment.end)
    shared = tuple(Word(w, round(a), round(b), approximate=True) for w, (a, b) in zip(words, spans, strict=True))
    return dataclasses.replace(segment, words=shared, alignment_error=why)
