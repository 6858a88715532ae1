"""The finished pieces as chapter files, one book file with chapter marks, and subtitles.

- ``chapters/NN Title.<format>``: each chapter's pieces in order, with a pause between
  them (a paragraph's where a piece ends a paragraph, else a sentence's) and a longer one
  at the chapter's end; each with its own ``.srt``/``.vtt`` beside it.
- ``book.mp3``: the chapters one after another (MP3 through soundfile's libsndfile/LAME)
  with ID3v2 chapter frames (``CTOC`` + one ``CHAP`` per chapter, titled, at exact
  millisecond offsets; mutagen), which podcast and audiobook players show as chapters.
- ``book.srt`` (or ``.vtt``): every piece's subtitle cues (cut by the worker) moved by
  the piece's offset in the book, so each chapter's cues start at its chapter mark.

The layout (every piece's place, the chapter marks, the cues) comes from the pieces' file
headers; then the book file and the chapter files are encoded at once, one thread each
(MP3 encoding is the slow part, about 80x real time a core: an 11-hour book is minutes
of CPU), each holding one piece in memory at a time. Everything is
written under OUTDIR/.assembling/ first and moved into place when complete, book file
last, so no half-written output is ever where a finished one would be.

Loudness: every piece was normalised by the worker to the same target (``loudness_lufs``,
BS.1770 integrated loudness under a -1 dBTP true-peak ceiling); silence sits below the
measurement's gate, so each chapter and the book measure at that target too. The report
gives the book's loudness from the pieces' own figures (energy-weighted by duration).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from .formats import CHAPTER_FORMATS
from .manifest import Manifest, PieceRecord

PAUSE_PARAGRAPH_S = 0.8
PAUSE_SENTENCE_S = 0.35
CHAPTER_END_S = 1.5


@dataclass(frozen=True)
class ChapterFile:
    title: str
    file: str  # relative to OUTDIR
    start_s: float  # in the book file
    duration_s: float
    pieces: int


@dataclass(frozen=True)
class Assembly:
    chapters: tuple[ChapterFile, ...]
    book_file: str
    subtitles_file: str | None
    duration_s: float
    sample_rate: int
    loudness_lufs: float | None


def assemble(
    outdir: Path,
    manifest: Manifest,
    book_title: str,
    chapter_titles: list[str],
    audio_format: str = "mp3",
    subtitles: str | None = "srt",
) -> Assembly:
    import soundfile

    outdir = Path(outdir)
    work = outdir / ".assembling"
    shutil.rmtree(work, ignore_errors=True)
    (work / "chapters").mkdir(parents=True)
    by_chapter: dict[int, list[PieceRecord]] = {}
    for piece in sorted(manifest.pieces, key=lambda p: p.index):
        if piece.chapter >= 0:
            by_chapter.setdefault(piece.chapter, []).append(piece)
    frames = {p.index: soundfile.info(outdir / p.file).frames for pieces in by_chapter.values() for p in pieces}
    rates = {p.sample_rate for pieces in by_chapter.values() for p in pieces}
    if len(rates) != 1:
        raise ValueError(f"the pieces have different sample rates: {sorted(rates)}")
    rate = rates.pop()

    # the layout first (from the files' headers): every piece's place, every chapter's start
    layout: list[tuple[str, list[tuple[PieceRecord, int]]]] = []  # (file name, [(piece, gap samples)])
    chapters, book_cues, moves = [], [], []
    book_pos = 0
    for number in sorted(by_chapter):
        title = chapter_titles[number]
        name = f"chapters/{number + 1:02d} {_safe(title)}"
        pieces = by_chapter[number]
        placed, chapter_cues, chapter_pos = [], [], 0
        for i, piece in enumerate(pieces):
            gap = (
                CHAPTER_END_S
                if i == len(pieces) - 1
                else PAUSE_PARAGRAPH_S
                if piece.ends_paragraph
                else PAUSE_SENTENCE_S
            )
            gap_frames = int(round(gap * rate))
            cues = _piece_cues(outdir, piece)
            chapter_cues += _shifted(cues, chapter_pos / rate)
            book_cues += _shifted(cues, (book_pos + chapter_pos) / rate)
            placed.append((piece, gap_frames))
            chapter_pos += frames[piece.index] + gap_frames
        layout.append((f"{name}.{audio_format}", placed))
        chapters.append(ChapterFile(title, f"{name}.{audio_format}", book_pos / rate, chapter_pos / rate, len(pieces)))
        if subtitles:
            _write_subtitles(work / f"{name}.{subtitles}", chapter_cues, subtitles)
            moves.append(f"{name}.{subtitles}")
        moves.append(f"{name}.{audio_format}")
        book_pos += chapter_pos

    # then the audio: the book file and every chapter file at once (libsndfile's encoders
    # run outside the GIL, so MP3 encoding, the slow part, uses every core)
    everything = [placement for _, placed in layout for placement in placed]
    jobs = [(work / "book.mp3", everything, "mp3")] + [(work / name, placed, audio_format) for name, placed in layout]
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for future in [pool.submit(_write_audio, outdir, path, placed, rate, fmt) for path, placed, fmt in jobs]:
            future.result()
    _tag_chapters(work / "book.mp3", book_title, chapters)
    subtitles_file = None
    if subtitles:
        subtitles_file = f"book.{subtitles}"
        _write_subtitles(work / subtitles_file, book_cues, subtitles)
        moves.append(subtitles_file)
    (outdir / "chapters").mkdir(exist_ok=True)
    for relative in [*moves, "book.mp3"]:  # the book file last: its presence means the rest is there
        os.replace(work / relative, outdir / relative)
    shutil.rmtree(work, ignore_errors=True)
    return Assembly(tuple(chapters), "book.mp3", subtitles_file, book_pos / rate, rate, book_loudness(manifest))


def _write_audio(outdir: Path, path: Path, placed: list[tuple[PieceRecord, int]], rate: int, fmt: str) -> None:
    """Pieces one after another, each followed by its silence; one piece in memory at a time."""
    import soundfile

    container, subtype = CHAPTER_FORMATS[fmt]
    with soundfile.SoundFile(path, "w", rate, 1, format=container, subtype=subtype) as writer:
        for piece, gap_frames in placed:
            audio, _ = soundfile.read(outdir / piece.file, dtype="float32", always_2d=True)
            writer.write(audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0])
            writer.write(np.zeros(gap_frames, dtype=np.float32))


def _safe(title: str) -> str:
    cleaned = re.sub(r"[^\w\- ]+", "", title, flags=re.UNICODE)
    return " ".join(cleaned.split())[:60] or "chapter"


# -- subtitles -------------------------------------------------------------------------


def _piece_cues(outdir: Path, piece: PieceRecord) -> list:
    import srt

    if not piece.subtitles or not (outdir / piece.subtitles).is_file():
        return []
    return list(srt.parse((outdir / piece.subtitles).read_text(encoding="utf-8")))


def _shifted(cues: list, seconds: float) -> list:
    import srt

    offset = timedelta(seconds=seconds)
    return [srt.Subtitle(0, cue.start + offset, cue.end + offset, cue.content) for cue in cues]


def _write_subtitles(path: Path, cues: list, kind: str) -> None:
    import srt

    if kind == "srt":
        path.write_text(srt.compose(cues, reindex=True), encoding="utf-8")
        return

    def stamp(delta: timedelta) -> str:
        ms = int(round(delta.total_seconds() * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    blocks = ["WEBVTT", ""]
    for cue in cues:
        blocks += [f"{stamp(cue.start)} --> {stamp(cue.end)}", cue.content, ""]
    path.write_text("\n".join(blocks), encoding="utf-8")


# -- chapter marks -----------------------------------------------------------------------


def _tag_chapters(path: Path, book_title: str, chapters: list[ChapterFile]) -> None:
    from mutagen.id3 import CHAP, CTOC, ID3, TALB, TIT2, CTOCFlags

    tags = ID3()
    ids = [f"chp{n}" for n in range(len(chapters))]
    tags.add(TIT2(encoding=3, text=[book_title]))
    tags.add(TALB(encoding=3, text=[book_title]))
    tags.add(
        CTOC(
            element_id="toc",
            flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
            child_element_ids=ids,
            sub_frames=[TIT2(encoding=3, text=["Chapters"])],
        )
    )
    for element_id, chapter in zip(ids, chapters, strict=True):
        start_ms = int(round(chapter.start_s * 1000))
        end_ms = int(round((chapter.start_s + chapter.duration_s) * 1000))
        tags.add(
            CHAP(
                element_id=element_id,
                start_time=start_ms,
                end_time=end_ms,
                start_offset=0xFFFFFFFF,  # "use the times"
                end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=3, text=[chapter.title])],
            )
        )
    tags.save(path)


def read_chapter_marks(path: Path) -> list[tuple[str, float, float]]:
    """(title, start_s, end_s) of a book file's ID3 chapters, in order (for checks and tests)."""
    from mutagen.id3 import ID3

    tags = ID3(path)
    toc = tags.getall("CTOC")[0]
    marks = []
    for element_id in toc.child_element_ids:
        chap = tags[f"CHAP:{element_id}"]
        title = str(chap.sub_frames["TIT2"].text[0]) if "TIT2" in chap.sub_frames else element_id
        marks.append((title, chap.start_time / 1000, chap.end_time / 1000))
    return marks


def book_loudness(manifest: Manifest) -> float | None:
    """Integrated loudness of all pieces together, from each piece's own (energy mean by duration)."""
    energy = seconds = 0.0
    for piece in manifest.pieces:
        if piece.chapter >= 0 and piece.loudness_lufs is not None and piece.duration_s:
            energy += piece.duration_s * 10 ** (piece.loudness_lufs / 10)
            seconds += piece.duration_s
    return round(10 * math.log10(energy / seconds), 2) if seconds and energy > 0 else None
