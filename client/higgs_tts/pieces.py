"""Chapters cut into pieces (one job each) at paragraph, then sentence, then word boundaries.

A piece holds whole paragraphs up to ``max_words`` words; a longer paragraph is cut
between sentences, and a sentence longer than ``max_words`` between words. A chapter's
spoken title always goes with the text after it (that piece may run over by its words). The worker
then splits each piece into its own chunks (``chunk_max_words``, 100 by default) and keeps
the voice across them, so a piece of one to three chunks gets that continuity, and a
book of a few hundred pieces spreads over tens of workers (``docs/audiobook-client.md``
gives the measurement behind the default).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .book_source import Book

DEFAULT_PIECE_WORDS = 200
SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+")


@dataclass(frozen=True)
class Piece:
    index: int  # play order in the book
    chapter: int
    text: str
    ends_paragraph: bool  # the pause after it is a paragraph's (else a sentence's)

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def plan_pieces(book: Book, max_words: int = DEFAULT_PIECE_WORDS) -> list[Piece]:
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    pieces: list[Piece] = []
    for number, chapter in enumerate(book.chapters):
        units = [unit for paragraph in chapter.paragraphs for unit in _units(paragraph, max_words)]
        announced = bool(chapter.paragraphs) and chapter.paragraphs[0] == chapter.title
        text: list[str] = []
        words = 0
        last_ends_paragraph = True  # of the last unit in ``text``
        for position, (unit_text, ends_paragraph) in enumerate(units):
            unit_words = len(unit_text.split())
            title_alone = announced and position == 1  # a heading is never a piece (a job) of its own
            if text and words + unit_words > max_words and not title_alone:
                pieces.append(Piece(len(pieces), number, _join(text), last_ends_paragraph))
                text, words = [], 0
            text.append(unit_text + ("\n\n" if ends_paragraph else " "))
            words += unit_words
            last_ends_paragraph = ends_paragraph
        if text:
            pieces.append(Piece(len(pieces), number, _join(text), True))
    return pieces


def _join(parts: list[str]) -> str:
    return "".join(parts).strip()


def _units(paragraph: str, max_words: int) -> list[tuple[str, bool]]:
    """A paragraph as (text, ends_paragraph) units of at most ``max_words`` words."""
    if len(paragraph.split()) <= max_words:
        return [(paragraph, True)]
    units: list[tuple[str, bool]] = []
    group: list[str] = []
    for sentence in SENTENCE_END.split(paragraph):
        sentence_words = sentence.split()
        while len(sentence_words) > max_words:  # a sentence longer than a piece: cut between words
            if group:
                units.append((" ".join(group), False))
                group = []
            units.append((" ".join(sentence_words[:max_words]), False))
            sentence_words = sentence_words[max_words:]
        if group and len(group) + len(sentence_words) > max_words:
            units.append((" ".join(group), False))
            group = []
        group += sentence_words
    if group:
        units.append((" ".join(group), False))
    units[-1] = (units[-1][0], True)
    return units
