"""The helper process that aligns: ``python -m higgs_worker.audio.align.helper``.

It reads requests from stdin and writes replies to what was stdout (its own prints and
PocketSphinx's messages go to stderr), each a pickled message behind a 4-byte length:
``(language, audio, rate, words)`` -> ``("ok", [(word, start_s, end_s, approximate)])``
or ``("failed", why)``. Only the worker that started it talks to it; it ends when its
stdin closes. English is built at its start (the worker starts it while the job that
will need it is still generating); other aligners on their language's first request.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import Any, BinaryIO

from .aligner import AlignmentFailed
from .registry import ALIGNERS

HEADER = struct.Struct(">I")


def pack_message(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def write_message(stream: BinaryIO, message: Any) -> None:
    stream.write(pack_message(message))
    stream.flush()


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            raise EOFError
        data += part
    return data


def read_message(stream: BinaryIO) -> Any:
    (size,) = HEADER.unpack(read_exactly(stream, HEADER.size))
    return pickle.loads(read_exactly(stream, size))  # noqa: S301 - from the worker that started us


def serve(requests: BinaryIO, replies: BinaryIO, preload: tuple[str, ...] = ("en",)) -> None:
    aligners: dict[str, Any] = {language: ALIGNERS[language]() for language in preload}
    while True:
        try:
            language, audio, rate, words = read_message(requests)
        except EOFError:
            return
        try:
            if language not in aligners:
                aligners[language] = ALIGNERS[language]()
            times = aligners[language].align(audio, rate, words)
            reply = ("ok", [(w.word, w.start_s, w.end_s, w.approximate) for w in times])
        except AlignmentFailed as exc:
            reply = ("failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the worker, which falls back
            reply = ("failed", f"the aligner failed ({type(exc).__name__}: {exc})")
        write_message(replies, reply)


def main() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray output must not corrupt the replies
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
