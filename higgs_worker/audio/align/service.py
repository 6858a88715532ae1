"""Word times for a piece of audio and its text, from helper processes; never raises.

Alignment is CPU work in C that holds Python's global lock for the whole call (measured:
a thread of the same process stalled 0.82 s while 26 s of speech were aligned; 5 ms through
a helper; benchmarks/word_alignment.py), and the
model's scheduler thread needs that lock for every decode step. So it runs in helper
processes (``helper``), started when the first job that asks for word times starts
(``prepare``, so the start overlaps its generation) and kept: each takes one piece at a
time; a job's thread hands its piece over and waits. At most ``processes`` run at once;
more requests wait their turn.

One deadline covers a request from its start: the wait for a free helper, the write of
the piece to the helper's pipe and the read of its reply (a helper that stops reading, a
``kill -STOP`` or a hang, cannot hold a job: its write stops at the deadline too).

Whatever goes wrong (no aligner for the text's language, no path through the audio, no
helper free in time, a helper that crashed or ran past its time, which is then ended and
replaced by the next request) gives the words shared out by characters over the piece,
each marked approximate, and the reason.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .aligner import WordTime
from .helper import pack_message, read_message
from .registry import ALIGNERS, LANGUAGE_NAMES
from .words import script_of, share_by_characters

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # a helper's start (imports, the dictionary) is part of its first request's time
BASE_TIMEOUT_S = 30.0  # plus one second per second of audio: alignment takes about 4 % of that


def default_processes() -> int:
    """Helpers at most: one core is left to the scheduler thread, and at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class AlignedWords:
    words: list[WordTime]
    error: str | None = None  # why the words are shared out by characters instead of aligned


def language_of(text: str) -> str:
    """``en`` for Latin script (aligned as English); for CJK ``ja`` with kana, ``ko`` with
    Hangul, else ``zh``; else ``other``."""
    script = script_of(text)
    if script == "cjk":
        if re.search(r"[\u3040-\u30ff]", text):
            return "ja"
        return "ko" if re.search(r"[\uac00-\ud7af]", text) else "zh"
    return "en" if script == "latin" else "other"


class HelperFailed(Exception):
    pass


class Helper:
    """One helper process and its pipes."""

    def __init__(self) -> None:
        path = os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "higgs_worker.audio.align.helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        self.fresh = True
        assert self.process.stdin is not None
        os.set_blocking(self.process.stdin.fileno(), False)  # writes wait in poll, up to the deadline

    def ask(self, request: tuple, deadline: float, timeout: float) -> tuple:
        """Send ``request`` and read the reply, both by ``deadline`` (a fresh helper's start
        adds START_TIMEOUT_S); ``HelperFailed`` otherwise."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if self.fresh:
            deadline += START_TIMEOUT_S
        try:
            sent = _write_by(self.process.stdin.fileno(), pack_message(request), deadline)
        except OSError:  # BrokenPipeError: it ended
            raise HelperFailed("the aligner process ended unexpectedly") from None
        if not sent:
            raise HelperFailed(f"the aligner took longer than {timeout:g} s")
        try:
            reply = read_message(_Deadline(self.process.stdout, deadline, timeout))
        except EOFError:
            raise HelperFailed("the aligner process ended unexpectedly") from None
        self.fresh = False
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class AlignmentService:
    """Aligns pieces of audio with their text in up to ``processes`` helper processes."""

    def __init__(self, processes: int | None = None):
        self.processes = processes or default_processes()
        self._idle: queue.LifoQueue[Helper] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._started = 0

    def align(self, audio: np.ndarray, rate: int, words: Sequence[str], timeout_s: float | None = None) -> AlignedWords:
        """``words`` (``words.split_words`` of the text) with their times in ``audio``,
        in seconds from its start."""
        words = list(words)
        duration = len(audio) / rate
        if not words:
            return AlignedWords([])
        language = language_of(" ".join(words))
        if language not in ALIGNERS:
            name = LANGUAGE_NAMES.get(language, language)
            return _shared(words, duration, f"no word aligner for {name} text on this worker")
        timeout = timeout_s if timeout_s is not None else BASE_TIMEOUT_S + duration
        deadline = time.monotonic() + timeout
        try:
            helper = self._take(deadline)
        except OSError as exc:
            log.warning("word alignment: could not start a helper process (%s)", exc)
            return _shared(words, duration, "the aligner process could not start")
        if helper is None:
            log.warning("word alignment: no helper was free within %g s", timeout)
            return _shared(words, duration, f"no aligner process was free within {timeout:g} s")
        try:
            request = (language, np.asarray(audio, dtype=np.float32), rate, words)
            status, value = helper.ask(request, deadline, timeout)
        except HelperFailed as exc:
            log.warning("word alignment: %s; that helper was ended", exc)
            self._discard(helper)
            return _shared(words, duration, str(exc))
        self._idle.put(helper)
        if status != "ok":
            return _shared(words, duration, value)
        return AlignedWords([WordTime(word, float(a), float(b), bool(approx)) for word, a, b, approx in value])

    def prepare(self) -> None:
        """Start a helper now if none is running, so that it has loaded (about a second)
        by the time the job that called this finishes generating."""
        with self._lock:
            if self._started > 0:
                return
            self._started += 1
        try:
            self._idle.put(Helper())
        except OSError as exc:  # align() tries again, and falls back if it fails there too
            log.warning("word alignment: could not start a helper process (%s)", exc)
            with self._lock:
                self._started -= 1

    def _take(self, deadline: float) -> Helper | None:
        """An idle helper, or a new one while fewer than ``processes`` run; else wait for
        either until ``deadline`` (None then)."""
        with self._lock:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            if self._started < self.processes:
                self._started += 1
                try:
                    return Helper()
                except Exception:
                    self._started -= 1
                    raise
        while True:  # all busy: wait for one, or for room to start one if one was ended
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return self._idle.get(timeout=min(1.0, remaining))
            except queue.Empty:
                with self._lock:
                    if self._started < self.processes:
                        self._started += 1
                        break
        try:
            return Helper()
        except Exception:
            with self._lock:
                self._started -= 1
            raise

    def _discard(self, helper: Helper) -> None:
        helper.close()
        with self._lock:
            self._started -= 1

    def close(self) -> None:
        while True:
            try:
                helper = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(helper)


def _shared(words: list[str], duration: float, why: str) -> AlignedWords:
    spans = share_by_characters(words, 0.0, duration)
    return AlignedWords([WordTime(w, a, b, approximate=True) for w, (a, b) in zip(words, spans, strict=True)], why)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _wait_for(fd: int, event: int, deadline: float) -> bool:
    """Whether ``fd`` is ready for ``event`` (select.POLLIN / POLLOUT) before ``deadline``;
    poll, not select: a busy HTTP worker's descriptors may pass select's 1024."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(remaining * 1000))


def _wait_readable(stream, deadline: float) -> bool:
    return _wait_for(stream.fileno(), select.POLLIN, deadline)


def _write_by(fd: int, data: bytes, deadline: float) -> bool:
    """Write all of ``data`` to the non-blocking ``fd`` before ``deadline``; False when the
    reader stopped taking it in time. A closed reader raises BrokenPipeError."""
    view = memoryview(data)
    while view:
        if not _wait_for(fd, select.POLLOUT, deadline):
            return False
        try:
            view = view[os.write(fd, view[: 1 << 16]) :]
        except BlockingIOError:
            continue
    return True


class _Deadline:
    """A reader of a pipe that waits for each read at most until ``deadline``."""

    def __init__(self, stream, deadline: float, timeout: float):
        self.stream, self.deadline, self.timeout = stream, deadline, timeout

    def read(self, size: int) -> bytes:
        if not _wait_readable(self.stream, self.deadline):
            raise HelperFailed(f"the aligner took longer than {self.timeout:g} s")
        return os.read(self.stream.fileno(), size)


_default: AlignmentService | None = None
_default_lock = threading.Lock()


def default_service() -> AlignmentService:
    """The worker's service, made on first use and closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = AlignmentService()
            atexit.register(_default.close)
        return _default
