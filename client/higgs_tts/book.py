"""A book file to an audiobook: read, cut, fan out, check, assemble; resumable in OUTDIR.

    from higgs_tts import BookOptions, QueueEndpoint, make_book
    summary = make_book("mybook.epub", "mybook/", QueueEndpoint("ENDPOINT_ID", api_key), BookOptions())

Order of work, so that a bad input or endpoint never leaves anything a rerun would trust:
read and check the book (empty, binary, unspeakable chapters) -> plan the pieces ->
``/health`` (401 / 404 stop here) -> OUTDIR/manifest.json (created, or loaded and checked
against this command's text and settings) -> voice (upload, or the voice sample) ->
every piece -> chapters, book file, subtitles.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .assemble import Assembly, assemble
from .book_source import Book, read_book
from .endpoint import QueueEndpoint
from .errors import BookFailed, InputError
from .fanout import FanOut, FanOutSettings
from .formats import CHAPTER_FORMATS, PIECE_FORMAT, listing
from .manifest import DONE, PENDING, Manifest, PieceRecord, file_sha256, fingerprint
from .pieces import DEFAULT_PIECE_WORDS, Piece, plan_pieces
from .voice import S3Target, read_reference, reference_fields, sample_text

SAMPLE_INDEX = -1  # the voice sample's place in the manifest (chapter -1: not in the book)


@dataclass
class BookOptions:
    voice: str | None = None
    reference_audio: str | None = None
    reference_text: str | None = None
    scene: str | None = None
    seed: int | None = None
    audio_format: str = "mp3"  # chapter files; the book file is always MP3 with ID3 chapters
    subtitles: str | None = "srt"
    loudness_lufs: float | None = -18.0
    sample_rate: int = 24000
    piece_words: int = DEFAULT_PIECE_WORDS
    title: str | None = None
    skip_empty_chapters: bool = False
    job_options: dict = field(default_factory=dict)  # any other job input field, sent with every piece
    assemble: bool = True  # False: stop once every piece is on disk (a later run assembles)
    s3_bucket: str | None = None
    fanout: FanOutSettings = field(default_factory=FanOutSettings)


@dataclass(frozen=True)
class BookSummary:
    outdir: Path
    wall_s: float
    audio_s: float
    pieces: int
    jobs_submitted: int  # in this run
    retries: int  # in this run
    resumed: int  # jobs of an earlier run collected in this run
    jobs_total: int  # every job the manifest records, all runs
    billed_gpu_s: float  # all runs: RunPod executionTime of every job
    throttled: int  # 429s answered in this run
    answers_lost: int  # /run answers lost in this run: jobs that may have run unseen (and been billed)
    assembly: Assembly | None  # None with BookOptions(assemble=False)
    notices: tuple[str, ...]

    def lines(self) -> list[str]:
        a = self.assembly
        if a is None:
            lines = [f"pieces: {self.outdir / 'pieces'} ({self.pieces} pieces, {_clock(self.audio_s)} of audio)"]
        else:
            lines = [f"book: {self.outdir / a.book_file} ({len(a.chapters)} chapters, {_clock(a.duration_s)} of audio)"]
        lines += [
            f"wall time {_clock(self.wall_s)}; {self.pieces} pieces; jobs this run {self.jobs_submitted}"
            f" (retries {self.retries}, resumed {self.resumed}); all runs {self.jobs_total} jobs",
            f"GPU time billed (the jobs' executionTime, all runs): {self.billed_gpu_s:.1f} s",
        ]
        if a is not None and a.subtitles_file:
            lines.append(f"subtitles: {self.outdir / a.subtitles_file}")
        if a is not None and a.loudness_lufs is not None:
            lines.append(f"loudness: {a.loudness_lufs:.1f} LUFS (pieces normalised by the worker)")
        if self.throttled:
            lines.append(f"the endpoint answered 429 Too Many Requests {self.throttled} time(s); the client waited")
        if self.answers_lost:
            lines.append(
                f"{self.answers_lost} /run answer(s) were lost (read timeout or cut connection): those jobs may"
                " also have run and been billed (RunPod's /run has no idempotency key); the endpoint's Requests"
                " tab in the RunPod console lists them"
            )
        return lines + [f"note: {notice}" for notice in self.notices]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def make_book(
    input_path: str | Path,
    outdir: str | Path,
    endpoint: QueueEndpoint,
    options: BookOptions,
    on_start: Callable[[Manifest, list[PieceRecord]], None] | None = None,
    on_piece: Callable[[PieceRecord], None] | None = None,
) -> BookSummary:
    started = time.monotonic()
    if options.audio_format not in CHAPTER_FORMATS:
        raise InputError(f"--format {options.audio_format}: use {listing(CHAPTER_FORMATS)}")
    if options.subtitles not in (None, "srt", "vtt"):
        raise InputError(f"--subtitles {options.subtitles}: use srt, vtt or none")
    if options.voice and options.reference_audio:
        raise InputError("give --voice or --reference-audio, not both")
    book = read_book(input_path, options.title, options.skip_empty_chapters)
    plan = plan_pieces(book, options.piece_words)
    reference = read_reference(options.reference_audio) if options.reference_audio else None
    endpoint.health()  # a wrong key or endpoint stops here, before anything is written
    outdir = Path(outdir)
    settings = _settings(book, plan, options, reference)
    manifest = _open_manifest(outdir, book, plan, settings, options)
    try:
        return _produce(book, plan, reference, endpoint, options, manifest, outdir, started, on_start, on_piece)
    finally:
        manifest.save()  # the journal folded into one snapshot, whatever stopped the run
        manifest.close()


def _produce(
    book: Book,
    plan: list[Piece],
    reference: bytes | None,
    endpoint: QueueEndpoint,
    options: BookOptions,
    manifest: Manifest,
    outdir: Path,
    started: float,
    on_start: Callable[[Manifest, list[PieceRecord]], None] | None,
    on_piece: Callable[[PieceRecord], None] | None,
) -> BookSummary:
    """The voice, every piece, the assembly (the manifest is open)."""
    texts = {piece.index: piece.text for piece in plan}
    notices = list(book.notices)
    s3 = S3Target.from_env(options.s3_bucket)
    pieces = [p for p in manifest.pieces if p.index != SAMPLE_INDEX]
    if on_start:
        on_start(manifest, pieces)
    base = _base_job(options)
    voice_fields: dict = {}
    fanout_kwargs = dict(
        endpoint=endpoint,
        manifest=manifest,
        outdir=outdir,
        texts=texts,
        settings=options.fanout,
        audio_suffix=PIECE_FORMAT,
        want_subtitles=options.subtitles is not None,
    )
    counters = []
    if options.voice:
        voice_fields = {"voice": options.voice}
    elif reference is not None:
        suffix = Path(options.reference_audio).suffix.lower() or ".wav"
        ref, how = reference_fields(reference, suffix, options.reference_text, s3)
        voice_fields = {"reference_audio": ref}
        notices.append(f"reference audio: {how}")
    else:
        sample = next(p for p in manifest.pieces if p.index == SAMPLE_INDEX)
        texts[SAMPLE_INDEX] = manifest.data["voice_sample_text"]

        def sample_job(piece: PieceRecord, seed: int | None) -> dict:
            return {**base, "text": texts[SAMPLE_INDEX], "seed": seed, "output_format": PIECE_FORMAT}

        if sample.state != DONE:
            fanout = FanOut(job_input_for=sample_job, **{**fanout_kwargs, "want_subtitles": False})
            failed = fanout.run([sample])
            counters.append(fanout)
            if failed:
                raise BookFailed(failed, str(manifest.path))
        ref, how = reference_fields((outdir / sample.file).read_bytes(), f".{PIECE_FORMAT}", texts[SAMPLE_INDEX], s3)
        voice_fields = {"reference_audio": ref}
        notices.append(f"voice: the model's pick for the first words, kept for every piece as reference ({how})")

    def piece_job(piece: PieceRecord, seed: int | None) -> dict:
        job = {**base, **voice_fields, "text": texts[piece.index], "output_format": PIECE_FORMAT, "seed": seed}
        if options.subtitles:
            job["subtitles"] = "srt"
        if options.loudness_lufs is not None:
            job["loudness_lufs"] = options.loudness_lufs
        return job

    fanout = FanOut(job_input_for=piece_job, on_done=on_piece, **fanout_kwargs)
    counters.append(fanout)
    failed = fanout.run(pieces)
    if failed:
        raise BookFailed(failed, str(manifest.path))
    assembly = None
    if options.assemble:
        titles = [c.title for c in book.chapters]
        assembly = assemble(outdir, manifest, book.title, titles, options.audio_format, options.subtitles)
    return BookSummary(
        outdir=outdir,
        wall_s=time.monotonic() - started,
        audio_s=sum(p.duration_s or 0.0 for p in pieces),
        pieces=len(pieces),
        jobs_submitted=sum(f.counters.submitted for f in counters),
        retries=sum(f.counters.retries for f in counters),
        resumed=sum(f.counters.resumed for f in counters),
        jobs_total=len(manifest.jobs()),
        billed_gpu_s=manifest.billed_seconds(),
        throttled=endpoint.pacer.throttled_count,
        answers_lost=sum(f.counters.answers_lost for f in counters),
        assembly=assembly,
        notices=tuple(notices),
    )


def _base_job(options: BookOptions) -> dict:
    job = dict(options.job_options)
    if options.scene is not None:
        job["scene_description"] = options.scene
    if options.sample_rate != 24000:
        job["sample_rate"] = options.sample_rate
    return job


def _settings(book: Book, plan: list[Piece], options: BookOptions, reference: bytes | None) -> dict:
    """What makes a book's pieces what they are: a manifest made with other settings is not reused."""
    chosen = asdict(options)
    chosen.pop("fanout")
    chosen.pop("s3_bucket")
    chosen.pop("skip_empty_chapters")
    chosen.pop("audio_format")  # only the assembly depends on these
    chosen.pop("title")
    chosen.pop("assemble")
    chosen["reference_audio"] = hashlib.sha256(reference).hexdigest() if reference else None
    chosen["pieces"] = hashlib.sha256("\n".join(p.text_sha256 for p in plan).encode()).hexdigest()
    chosen["chapters"] = [c.title for c in book.chapters]
    return chosen


def _open_manifest(outdir: Path, book: Book, plan: list[Piece], settings: dict, options: BookOptions) -> Manifest:
    path = outdir / "manifest.json"
    if path.exists():
        try:
            manifest = Manifest.load(path)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a manifest this client can read ({exc}); use another -o folder") from None
        if manifest.data.get("fingerprint") != fingerprint(settings):
            old = manifest.data.get("settings", {}).get("chosen", {})
            differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise InputError(
                f"{outdir} holds a book made from other text or settings (they differ in: {', '.join(differ)});"
                " use another -o folder, or delete it to start over"
            )
        _check_done_files(outdir, manifest)
        manifest.save()  # fold the last run's journal into the snapshot
        return manifest
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise InputError(f"{outdir} is not an empty folder and has no manifest.json; choose an empty or new folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {outdir}: {exc.strerror or exc}") from None
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    records = [PieceRecord(p.index, p.chapter, p.words, p.text_sha256, p.ends_paragraph) for p in plan]
    data = {
        "fingerprint": fingerprint(settings),
        "settings": {"seed": seed, "chosen": settings},
        "book": {
            "title": book.title,
            "chapters": [
                {"title": c.title, "pieces": [p.index for p in plan if p.chapter == n]}
                for n, c in enumerate(book.chapters)
            ],
        },
    }
    if not options.voice and not options.reference_audio:
        text = sample_text(list(book.chapters[0].paragraphs))
        data["voice_sample_text"] = text
        records.insert(0, PieceRecord(SAMPLE_INDEX, -1, len(text.split()), "", True))
    return Manifest.create(path, data, records)


def _check_done_files(outdir: Path, manifest: Manifest) -> None:
    """A done piece whose file is missing or changed is made again (said so, not trusted)."""
    for piece in manifest.pieces:
        if piece.state != DONE:
            continue
        path = outdir / (piece.file or "")
        if not piece.file or not path.is_file() or file_sha256(path) != piece.sha256:
            manifest.update(piece, state=PENDING, file=None, sha256=None, job_id=None)
