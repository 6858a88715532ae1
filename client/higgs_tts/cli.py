"""``higgs-tts``: ``say`` one text, or make a ``book`` from a .txt, .md or .epub file.

The endpoint is ``--endpoint ID`` or RUNPOD_ENDPOINT_ID, the key RUNPOD_API_KEY, the API
base RUNPOD_ENDPOINT_BASE_URL (a RunPod look-alike works too). ``say --base-url URL`` talks
to an HTTP-mode worker instead, with its own key HIGGS_TTS_API_KEY (RUNPOD_API_KEY only for a
RunPod load-balancing URL: see keys.py). Errors are one message on stderr (exit 1; 2 for
bad input or setup, a missing key included; 130 after Ctrl-C), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

from .errors import ClientError
from .formats import CHAPTER_FORMATS, OUTPUT_FORMATS, listing

# workers.max 10 x (MAX_CONCURRENCY 8 + IO_JOBS 4), and a few queued (benchmarks/book_client.py --scaling)
DEFAULT_PARALLEL = 128
EPILOG = """environment:
  RUNPOD_API_KEY            RunPod API key (console > Settings > API Keys); sent only to RunPod's
                            API (or the base below), never to --base-url unless that is RunPod's
  RUNPOD_ENDPOINT_ID        the queue endpoint's id (or --endpoint)
  RUNPOD_ENDPOINT_BASE_URL  API base (default https://api.runpod.ai/v2)
  HIGGS_TTS_API_KEY         say --base-url: the HTTP-mode worker's own API_KEY
exit codes: 0 done, 1 the endpoint or a job failed, 2 bad input or setup (e.g. no key),
  130 stopped by Ctrl-C.
docs/audiobook-client.md in the repository has the whole guide."""


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
        if getattr(args, "run", None) is _book:
            print(
                "\nhiggs-tts: stopped. Every job already sent is recorded in the manifest; run the same command"
                " again to continue: jobs still running are collected, not sent again (RunPod keeps a result"
                " 30 minutes).",
                file=sys.stderr,
            )
        else:
            print("\nhiggs-tts: stopped.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="higgs-tts",
        description="Higgs Audio v2 on a RunPod endpoint: say one text, or make a book from a .txt, .md or .epub file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"higgs-tts {_version()}")
    sub = parser.add_subparsers(required=True, metavar="{say,book,cancel}")

    say = sub.add_parser(
        "say",
        help="one text to one audio file",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="One job: the job id and its progress on stderr; Ctrl-C offers to cancel it.",
    )
    say.add_argument("text", help="the text to speak ('-' reads stdin)")
    say.add_argument("-o", "--out", required=True, help="output file; its extension picks the format (e.g. out.mp3)")
    say.add_argument(
        "--base-url",
        help="an HTTP-mode worker's URL (POST /v1/synthesize) instead of a queue endpoint; its key is"
        " HIGGS_TTS_API_KEY (RUNPOD_API_KEY only for a RunPod https://ID.api.runpod.ai URL)",
    )
    say.add_argument("--format", help=f"{listing(OUTPUT_FORMATS)} (default: from --out)")
    say.add_argument("--subtitles", choices=("srt", "vtt"), help="also write subtitles beside the audio")
    say.add_argument("--loudness", type=float, metavar="LUFS", help="integrated loudness target, e.g. -16")
    say.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job (default 1800)")
    say.add_argument("--quiet", action="store_true", help="no job id or progress on stderr")
    _common(say)
    say.set_defaults(run=_say)

    book = sub.add_parser(
        "book",
        help="a .txt, .md or .epub file to chapters and one book file",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    book.add_argument("input", help="the book: .txt, .md or .epub")
    book.add_argument("-o", "--out", required=True, help="output folder (holds the manifest: rerun to resume)")
    book.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        help=f"jobs in flight at once (default {DEFAULT_PARALLEL}): at least the endpoint's max workers x"
        " (MAX_CONCURRENCY + IO_JOBS), so that jobs wait in RunPod's queue and its scaler adds workers"
        " (docs/audiobook-client.md, 'Choosing --parallel')",
    )
    book.add_argument("--format", default="mp3", choices=tuple(CHAPTER_FORMATS), help="chapter files (default mp3)")
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

    cancel = sub.add_parser(
        "cancel",
        help="cancel a job on the queue endpoint (the id say printed)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cancel.add_argument("job_id", help="the job's id")
    _endpoint_options(cancel)
    cancel.set_defaults(run=_cancel)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", default=os.environ.get("RUNPOD_ENDPOINT_ID"), help="endpoint id (RUNPOD_ENDPOINT_ID)"
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a key to go over plain http:// to another machine (never needed for RunPod; warns)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    _endpoint_options(parser)
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

    return QueueEndpoint(
        args.endpoint,
        os.environ.get("RUNPOD_API_KEY", ""),
        connections=connections,
        allow_insecure_http=args.allow_insecure_http,
    )


def _say(args) -> int:
    from .endpoint import HttpEndpoint
    from .errors import InputError
    from .say import JobInterrupted, SayProgress, job_input, say

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
        endpoint = HttpEndpoint.for_url(args.base_url, os.environ, args.allow_insecure_http, args.timeout)
    else:
        endpoint = _queue_endpoint(args)
    try:
        result = say(job, args.out, endpoint, args.timeout, SayProgress(quiet=args.quiet))
    except JobInterrupted as stopped:
        return _offer_cancel(endpoint, stopped.job_id)
    print(f"{args.out}: {result.get('duration_s', 0):.2f} s of {result.get('format')} (seed {result.get('seed')})")
    return 0


def _offer_cancel(endpoint, job_id: str) -> int:
    """Ctrl-C during ``say``: the job still runs (and bills). Ask to cancel it on a terminal;
    otherwise, or on a second Ctrl-C, say exactly how."""
    how = (
        f"higgs-tts cancel {job_id} --endpoint {endpoint.endpoint_id}"
        f"  (or: curl -X POST -H 'Authorization: Bearer $RUNPOD_API_KEY' {endpoint.url('cancel/' + job_id)})"
    )
    print(
        f"\nhiggs-tts: stopped waiting; job {job_id} is still on the endpoint and is billed while it runs.",
        file=sys.stderr,
    )
    answer = ""
    if sys.stdin.isatty() and sys.stderr.isatty():
        try:
            print("Cancel it now? [Y/n] ", end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline().strip().lower() or "y"
        except (KeyboardInterrupt, EOFError):
            answer = "n"
    if answer in ("y", "yes"):
        state = (endpoint.cancel(job_id) or {}).get("status")
        if state:
            print(f"higgs-tts: job {job_id}: {state}", file=sys.stderr)
            return 130
        print(f"higgs-tts: the cancel did not go through; to cancel it: {how}", file=sys.stderr)
        return 130
    print(f"higgs-tts: to cancel it: {how}", file=sys.stderr)
    return 130


def _cancel(args) -> int:
    answer = _queue_endpoint(args).cancel(args.job_id, best_effort=False) or {}
    print(f"job {args.job_id}: {answer.get('status', 'cancel sent')}")
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
