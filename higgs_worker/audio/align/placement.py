"""Aligned word times placed on the file's segments, at exact sample positions.

Each generated chunk is aligned once, on its own audio as joined (after trimming, before
the output's resampling and loudness, which move nothing; resampled to the aligner's
16 kHz), with the words of all its segments. A word at ``t`` seconds into its chunk lands at model sample
``chunk start + round(t * rate)`` and then where ``segments.output_position`` puts that
sample in the file. A chunk of several speaker turns then has its turn boundaries at
the start of each next turn's first word, no longer ``approximate``.

If a chunk's alignment failed, each of its segments keeps its times and shares them out
among its words by characters (every word ``approximate``), with ``alignment_error``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import groupby

import numpy as np

from .. import codecs
from ..segments import Segment, Word, output_position
from .pocketsphinx_aligner import ALIGN_RATE
from .service import AlignedWords, AlignmentService
from .words import share_by_characters, split_words


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
        words = [split_words(segment.text) for segment in group]
        start, end = spans[chunk]
        # resampled here (torchaudio is loaded already), so the helper needs no resampler of its own
        piece = codecs.resample(joined[start:end], source_rate, ALIGN_RATE)
        aligned = service.align(piece, ALIGN_RATE, [w for ws in words for w in ws])
        if aligned.error is not None or len(aligned.words) != sum(map(len, words)):
            out += [
                _shared(segment, ws, aligned.error or "the aligner lost words")
                for segment, ws in zip(group, words, strict=True)
            ]
            continue

        def position(seconds: float, start=start, end=end) -> int:
            return output_position(min(end, start + round(seconds * source_rate)), source_rate, target_rate)

        out += _placed(group, words, aligned, position)
    return out


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
