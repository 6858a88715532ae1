"""Written text and its spoken form, piece by piece: the map between the two.

A ``Normalized`` text is a sequence of ``Piece``s: each is a stretch of the text as written
and the same stretch as read. A piece that normalisation left alone has ``written ==
spoken``; a replaced one ("$3.50" -> "three dollars and fifty cents") is one piece, so any
position in its spoken form maps back to the whole written form. Joining the pieces gives
both texts, so offsets in either are a walk over the pieces.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class Piece:
    written: str
    spoken: str

    @property
    def changed(self) -> bool:
        return self.written != self.spoken


@dataclass(frozen=True)
class Normalized:
    pieces: tuple[Piece, ...]

    @classmethod
    def unchanged(cls, text: str) -> Normalized:
        return cls((Piece(text, text),) if text else ())

    @classmethod
    def of(cls, pieces: Sequence[Piece]) -> Normalized:
        """The pieces with empty ones dropped and neighbouring unchanged ones merged."""
        out: list[Piece] = []
        for piece in pieces:
            if not piece.written and not piece.spoken:
                continue
            if out and not piece.changed and not out[-1].changed:
                out[-1] = Piece(out[-1].written + piece.written, out[-1].spoken + piece.spoken)
            else:
                out.append(piece)
        return cls(tuple(out))

    @property
    def written(self) -> str:
        return "".join(piece.written for piece in self.pieces)

    @property
    def spoken(self) -> str:
        return "".join(piece.spoken for piece in self.pieces)

    @property
    def changed(self) -> bool:
        return any(piece.changed for piece in self.pieces)

    def replacements(self) -> list[tuple[str, str]]:
        """``(written, spoken)`` of each replaced piece, in order."""
        return [(p.written, p.spoken) for p in self.pieces if p.changed]

    @functools.cached_property
    def _starts(self) -> tuple[list[int], list[int]]:
        """Where each piece starts in the written and in the spoken text."""
        written, spoken, w, s = [], [], 0, 0
        for piece in self.pieces:
            written.append(w)
            spoken.append(s)
            w += len(piece.written)
            s += len(piece.spoken)
        return written, spoken

    @functools.cached_property
    def _replaced(self) -> tuple[list[int], list[int]]:
        """The spoken ``[start, end)`` of each replaced piece."""
        starts, ends = [], []
        for piece, _, s in self._spans():
            if piece.changed:
                starts.append(s)
                ends.append(s + len(piece.spoken))
        return starts, ends

    def _spans(self, spoken_from: int = 0):
        """Each piece with its ``(written_start, spoken_start)``, from the first piece that
        may reach spoken position ``spoken_from``."""
        written, spoken = self._starts
        first = max(0, bisect.bisect_left(spoken, spoken_from) - 1)
        while first > 0 and spoken[first - 1] == spoken[first]:
            first -= 1
        for index in range(first, len(self.pieces)):
            yield self.pieces[index], written[index], spoken[index]

    def inside_replacement(self, start: int, end: int) -> bool:
        """Whether spoken ``[start, end)`` overlaps the reading of a replaced piece."""
        starts, ends = self._replaced
        index = bisect.bisect_left(starts, end) - 1
        return index >= 0 and ends[index] > start

    def written_range(self, start: int, end: int) -> tuple[int, int]:
        """The stretch of the written text that spoken ``[start, end)`` was read from: exact
        inside unchanged pieces, the whole written form of a replaced piece it touches."""
        first = last = None
        for piece, w, s in self._spans(start):
            s_end = s + len(piece.spoken)
            if s > end or (s == end and first is not None):
                break
            if s_end <= start or s >= end:
                continue
            if piece.changed:
                a, b = w, w + len(piece.written)
            else:
                a, b = w + max(start, s) - s, w + min(end, s_end) - s
            first = a if first is None else first
            last = b
        if first is None:  # nothing spoken there: where it would be in the written text
            position = self._written_position(start)
            return position, position
        return first, last

    def _written_position(self, spoken: int) -> int:
        for piece, w, s in self._spans(spoken):
            if spoken <= s + len(piece.spoken):
                return w + (min(spoken - s, len(piece.written)) if not piece.changed else 0)
        return len(self.written)

    def slice(self, start: int, end: int) -> Normalized:
        """The part read as spoken ``[start, end)``. Unchanged pieces are cut where asked; a
        replaced piece cut in two keeps its written form in the part where its reading starts."""
        out: list[Piece] = []
        for piece, _, s in self._spans(start):
            if s > end:
                break
            s_end = s + len(piece.spoken)
            if s_end <= start or s >= end:
                if not piece.spoken and start <= s < end:
                    out.append(piece)  # written text read as nothing
                continue
            a, b = max(start, s) - s, min(end, s_end) - s
            if piece.changed:
                out.append(Piece(piece.written if s >= start else "", piece.spoken[a:b]))
            else:
                out.append(Piece(piece.written[a:b], piece.spoken[a:b]))
        return Normalized.of(out)

    def strip(self) -> Normalized:
        """Without the white space at either end of the spoken text (and its written part)."""
        spoken = self.spoken
        start = len(spoken) - len(spoken.lstrip())
        end = len(spoken.rstrip())
        part = self.slice(start, end) if (start, end) != (0, len(spoken)) else self
        pieces = list(part.pieces)
        if pieces and not pieces[0].changed:
            pieces[0] = Piece(pieces[0].written.lstrip(), pieces[0].spoken)
        if pieces and not pieces[-1].changed:
            pieces[-1] = Piece(pieces[-1].written.rstrip(), pieces[-1].spoken)
        return Normalized.of(pieces)


def for_chunks(text: Normalized, chunks: Sequence[str]) -> list[Normalized]:
    """The map of each chunk that ``text.spoken`` was split into (``text/chunking``). Chunks
    are runs of the spoken text's tokens, in order, with white space rejoined and a speaker
    tag repeated at the start of a piece of a long turn: each chunk's map reads exactly as
    the chunk (``result.spoken == chunk``), its written side from ``text``."""
    spoken = text.spoken
    cursor = 0
    out: list[Normalized] = []
    for chunk in chunks:
        pieces: list[Piece] = []
        previous_end = 0
        group: list[tuple[int, int, int, int]] = []  # (chunk start, chunk end, text start, text end)

        for match in _TOKEN.finditer(chunk):
            token = match.group()
            found = _find_token(spoken, token, cursor)
            if found is None:  # a repeated speaker tag: read as written
                _flush(text, chunk, group, pieces)
                pieces.append(Piece(chunk[previous_end : match.end()], chunk[previous_end : match.end()]))
                previous_end = match.end()
                continue
            a, b = found
            cursor = b
            if group and text.inside_replacement(group[-1][3], a):
                group.append((match.start(), match.end(), a, b))
            else:
                _flush(text, chunk, group, pieces)
                gap = chunk[previous_end : match.start()]
                pieces.append(Piece(gap, gap))
                group.append((match.start(), match.end(), a, b))
            previous_end = match.end()
        _flush(text, chunk, group, pieces)
        tail = chunk[previous_end:]
        pieces.append(Piece(tail, tail))
        out.append(Normalized.of(pieces))
    return out


def _flush(text: Normalized, chunk: str, group: list[tuple[int, int, int, int]], pieces: list[Piece]) -> None:
    """The pieces of a run of chunk tokens read from one stretch of ``text`` (``group``:
    each token's chunk start, chunk end, text start, text end); empties ``group``."""
    if not group:
        return
    c_start, c_end = group[0][0], group[-1][1]
    part = text.slice(group[0][2], group[-1][3])
    said = chunk[c_start:c_end]
    if part.spoken == said:
        pieces.extend(part.pieces)
    else:  # white space inside was rejoined: one piece for the run
        pieces.append(Piece(part.written, said))
    group.clear()


def _find_token(spoken: str, token: str, cursor: int) -> tuple[int, int] | None:
    position = cursor
    while position < len(spoken) and spoken[position].isspace():
        position += 1
    if spoken.startswith(token, position):
        return position, position + len(token)
    return None
