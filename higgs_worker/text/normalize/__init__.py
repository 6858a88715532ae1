"""Text normalisation: numbers, dates, times, money, units, abbreviations, URLs, e-mail
addresses and phone numbers read as words (English; numbers in Chinese), with the map from
the spoken form back to the text as written (``Normalized``), so that segments, word times
and subtitles show what the user wrote.

Tags pass through as written: ``[SPEAKER0]`` and any other bracketed tag of the model's
(``[laugh]``, ``<|...|>``, ``<SE>``). Chinese runs (digits against Chinese characters) are
read by ``chinese``, the rest by ``english``'s rules. See docs/text-normalization.md.
"""

from __future__ import annotations

import re

from . import chinese, english
from .mapping import Normalized, Piece, for_chunks

__all__ = ["Normalized", "Piece", "for_chunks", "normalize"]

# speaker tags and the model's own tags: never read differently
TAG = re.compile(r"\[[^\[\]\n]{1,64}\]|<\|[^<>\n]{0,64}\|>|<[^<>\s][^<>\n]{0,63}>")


def normalize(text: str) -> Normalized:
    """``text`` as read aloud, piece by piece (``Normalized.spoken``; ``.written == text``)."""
    pieces: list[Piece] = []
    position = 0
    for tag in TAG.finditer(text):
        pieces += _normalize_plain(text[position : tag.start()])
        pieces.append(Piece(tag.group(), tag.group()))
        position = tag.end()
    pieces += _normalize_plain(text[position:])
    return Normalized.of(pieces)


def _normalize_plain(text: str) -> list[Piece]:
    if not text:
        return []
    found = chinese.replacements(text) if chinese.RUN.search(text) else []
    pieces: list[Piece] = []
    position = 0
    for start, end, spoken in found:
        pieces += _english(text[position:start])
        pieces.append(Piece(text[start:end], spoken))
        position = end
    pieces += _english(text[position:])
    return pieces


def _english(text: str) -> list[Piece]:
    pieces: list[Piece] = []
    position = 0
    for start, end, spoken in english.replacements(text):
        pieces.append(Piece(text[position:start], text[position:start]))
        pieces.append(Piece(text[start:end], spoken))
        position = end
    pieces.append(Piece(text[position:], text[position:]))
    return pieces
