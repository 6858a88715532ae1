"""``higgs-tts``: ``say`` one text, or make a ``book`` from a .txt, .md or .epub file.

The endpoint is ``--endpoint ID`` or RUNPOD_ENDPOINT_ID, the key RUNPOD_API_KEY, the API
base RUNPOD_ENDPOINT_BASE_URL (the runpod SDK's own variable; a RunPod look-alike works
too). ``say --base-url URL`` talks to an HTTP-mode worker instead. Errors are one message
on stderr (exit 1; 2 for bad input; 130 after Ctrl-C), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

from .errors import ClientError

EPILOG = "docs/audiobook-client.md in the repository has the whole guide."


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except ClientError as exc:
        print(f"higgs-tts: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a file the client could not read or write (full disk, permissions)
        print(f"higgs-tts: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\nhiggs-tts: stopped. Every job already sent is recorded in the manifest; run the same command"
            " again to continue (jobs still running are collected, none is paid for twice).",
            file=sys.stderr,
        )
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="higgs-tts",
        description="Higgs Audio v2 on a RunPod endpoint: say one text, or make a book from a .txt, .md or .epub file.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(required=True, metavar="{say,book}")

    say = sub.add_parser("say", help="one text to one audio file", epilog=EPILOG)
    say.add_argument("text", help="the text to speak ('-' reads stdin)")
    say.add_argument("-o", "--out", required=True, help="output file; its extension picks the format (e.g. out.mp3)")
    say.add_argument("--base-url", help="an HTTP-mode worker's URL (POST /v1/synthesize) instead of a queue endpoint")
    say.add_argument("--format", help="wav, mp3, flac, ogg, opus or pcm (default: from --out)")
    say.add_argument("--subtitles", choices=("srt", "vtt"), help="also write subtitles beside the audio")
    say.add_argument("--loudness", type=float, metavar="LUFS", help="integrated loudness target, e.g. -16")
    say.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job (default 1800)")
    _common(say)
    say.set_defaults(run=_say)

    book = sub.add_parser("book", help="a .txt, .md or .epub file to chapters and one book file", epilog=EPILOG)
    book.add_argument("input", help="the book: .txt, .md or .epub")
    book.add_argument("-o", "--out", required=True, help="output folder (holds the manifest: rerun to resume)")
    book.add_argument(
        "--parallel",
        type=int,
        default=16,
        help="jobs in flight at once (default 16; about the endpoint's max workers + 25%%)",
    )
    book.add_argument("--format", default="mp3", choices=("mp3", "flac", "wav"), help="chapter files (default mp3)")
    book.add_argument("--subtitles", default="srt", choices=("srt", "vtt", "none"), help="default srt")
    book.add_argument(
        "--loudness", default="-18", metavar="LUFS", help="every piece to this loudness (default -18; 'off')"
    )
    book.add_argument("--piece-words", type=int, default=None, help="words per piece at most (default 200)")
    book.add_argument(
        "--max-attempts", type=int, default=3, help="attempts per piece before the book stops (default 3)"
    )
    book.add_argument(
        "--job-timeout", type=float, default=900, help="seconds a job may run before it is cancelled and retried"
    )
    book.add_argument("--title", help="the book's title (default: from the file)")
    book.add_argument("--skip-empty-chapters", action="store_true", help="leave out chapters with nothing to speak")
    book.add_argument("--no-progress", action="store_true", help="no progress bar")
    book.add_argument(
        "--no-length-check",
        action="store_true",
        help="accept any audio length for a piece's text (a model that does not speak at a person's rate)",
    )
    _common(book)
    book.set_defaults(run=_book)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", default=os.environ.get("RUNPOD_ENDPOINT_ID"), help="endpoint id (RUNPOD_ENDPOINT_ID)"
    )
    voice = parser.add_mutually_exclusive_group()
    voice.add_argument("--voice", help="a voice in the endpoint's library (VOICES_DIR)")
    voice.add_argument("--reference-audio", metavar="FILE", help="clone this voice (0.25-60 s of wav/flac/ogg/mp3)")
    parser.add_argument("--reference-text", help="what the reference audio says (better cloning)")
    parser.add_argument("--scene", help="scene description (default: the worker's quiet room)")
    parser.add_argument("--seed", type=int, help="one seed for every piece (default: one chosen and kept)")
    parser.add_argument("--s3-bucket", help="bucket to upload reference audio to once (default S3_BUCKET)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other job input field, VALUE as JSON (e.g. --option temperature=0.8 --option pause_s=0.3)",
    )


def _job_options(pairs: list[str]) -> dict:
    from .errors import InputError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--option {pair!r}: write KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _queue_endpoint(args, connections: int = 16):
    from .endpoint import QueueEndpoint

    return QueueEndpoint(args.endpoint, os.environ.get("RUNPOD_API_KEY", ""), connections=connections)


def _say(args) -> int:
    from .endpoint import HttpEndpoint
    from .errors import InputError
    from .say import job_input, say

    text = sys.stdin.read() if args.text == "-" else args.text
    audio_format = args.format or Path(args.out).suffix.lstrip(".").lower()
    if not audio_format:
        raise InputError("give --format, or an --out file name with an extension (e.g. out.mp3)")
    job = job_input(
        text,
        audio_format,
        args.voice,
        args.reference_audio,
        args.reference_text,
        args.scene,
        args.seed,
        args.subtitles,
        args.loudness,
        _job_options(args.option),
        args.s3_bucket,
    )
    if args.base_url:
        endpoint = HttpEndpoint(args.base_url, os.environ.get("RUNPOD_API_KEY") or os.environ.get("API_KEY"))
    else:
        endpoint = _queue_endpoint(args)
    result = say(job, args.out, endpoint, args.timeout)
    print(f"{args.out}: {result.get('duration_s', 0):.2f} s of {result.get('format')} (seed {result.get('seed')})")
    return 0


def _book(args) -> int:
    from .book import BookOptions, make_book
    from .errors import InputError
    from .fanout import FanOutSettings
    from .pieces import DEFAULT_PIECE_WORDS

    if args.parallel < 1 or args.parallel > 200:
        raise InputError("--parallel: 1..200 (RunPod allows 200 concurrent /run requests)")
    loudness = None if str(args.loudness).lower() == "off" else _number(args.loudness, "--loudness")
    options = BookOptions(
        voice=args.voice,
        reference_audio=args.reference_audio,
        reference_text=args.reference_text,
        scene=args.scene,
        seed=args.seed,
        audio_format=args.format,
        subtitles=None if args.subtitles == "none" else args.subtitles,
        loudness_lufs=loudness,
        piece_words=args.piece_words or DEFAULT_PIECE_WORDS,
        title=args.title,
        skip_empty_chapters=args.skip_empty_chapters,
        job_options=_job_options(args.option),
        s3_bucket=args.s3_bucket,
        fanout=FanOutSettings(
            parallel=args.parallel,
            max_attempts=args.max_attempts,
            job_timeout_s=args.job_timeout,
            check_length=not args.no_length_check,
        ),
    )
    progress = _Progress(disabled=args.no_progress)
    try:
        summary = make_book(
            args.input,
            args.out,
            _queue_endpoint(args, connections=args.parallel),
            options,
            on_start=progress.start,
            on_piece=progress.piece_done,
        )
    finally:
        progress.close()
    print("\n".join(summary.lines()))
    return 0


def _number(value: str, name: str) -> float:
    from .errors import InputError

    try:
        return float(value)
    except ValueError:
        raise InputError(f"{name} {value!r}: a number, or off") from None


class _Progress:
    """A tqdm bar: pieces done, minutes of audio made, ETA (stderr; off when not a terminal)."""

    def __init__(self, disabled: bool):
        self.disabled = disabled
        self.bar = None
        self.audio_s = 0.0
        self.lock = threading.Lock()

    def start(self, manifest, pieces) -> None:
        from tqdm import tqdm

        done = [p for p in pieces if p.state == "done"]
        self.audio_s = sum(p.duration_s or 0.0 for p in done)
        self.bar = tqdm(
            total=len(pieces),
            initial=len(done),
            unit="piece",
            disable=True if self.disabled else None,  # None: off when stderr is not a terminal
            dynamic_ncols=True,
        )
        self.bar.set_postfix_str(self._audio())

    def piece_done(self, piece) -> None:
        with self.lock:
            self.audio_s += piece.duration_s or 0.0
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix_str(self._audio(), refresh=False)

    def _audio(self) -> str:
        return f"{self.audio_s / 60:.1f} min of audio"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
