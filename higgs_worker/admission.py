"""How many jobs a worker takes at once, and the generation slots they share.

A job goes through four phases: checked (at once, no waiting), inputs (reference audio
downloaded from a URL or S3, clips decoded), generating (clips encoded, every chunk through
the scheduler's batched decode steps, codes decoded to audio), delivering (narration,
encoding, S3 upload). Only generating needs the model, so only generating holds a
**generation slot**: ``MAX_CONCURRENCY`` of them (default 16 on CUDA, 1 on the CPU), one per
KV-cache slot of the batch. A job waiting on the network holds none.

The worker **takes** ``MAX_CONCURRENCY + IO_JOBS`` jobs at once (the SDK's
``concurrency_modifier``; the HTTP door's admission, beyond which requests wait, checked,
in arrival order). The ``IO_JOBS`` beyond the slots are the jobs that may fetch or deliver
while the batch is full, so a stalled URL or a hanging S3 takes one of them instead of a
place in the batch, and the next job's inputs are fetched while the batch runs. It is
bounded because each of those jobs holds host memory: a reference download (up to
MAX_REFERENCE_BYTES), decoded clips (MAX_REFERENCE_SECONDS x 24 kHz x 4 bytes each), or a
finished result being encoded and uploaded. Default IO_JOBS: half of MAX_CONCURRENCY,
rounded up, at least 2 (docs/tuning.md and benchmarks/RESULTS.md have the measured figures).

The HTTP door lets at most ``HTTP_QUEUE_LIMIT`` more requests wait for one of those places
(``queue_limit_for``; default: as many as it takes at once) and answers 429 beyond: a waiting
request holds its body, so the line is what bounds the memory of a burst (docs/security.md).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .contract.errors import Cancelled

MIN_IO_JOBS = 2
POLL_SECONDS = 0.1  # how often a waiting job looks at its stop flag


def io_jobs_for(setting: int | None, generation_slots: int) -> int:
    """IO_JOBS, or auto: half the generation slots, rounded up, at least ``MIN_IO_JOBS``."""
    if setting is not None:
        return max(0, int(setting))
    return max(MIN_IO_JOBS, -(-generation_slots // 2))


def queue_limit_for(setting: int | None, jobs_at_once: int) -> int:
    """HTTP_QUEUE_LIMIT, or auto: as many waiting as the worker takes at once. A request then
    waits at most about one job's time before it starts, and the memory of the line stays
    that of ``jobs_at_once`` bodies; a longer line only makes callers wait on one worker while
    RunPod's balancer (or the caller, told by 429's Retry-After) could use another."""
    if setting is not None:
        return max(0, int(setting))
    return max(1, jobs_at_once)


class GenerationSlots:
    """``size`` slots handed out in arrival order; a waiting job can be stopped while it waits."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.busy = 0
        self._queue: collections.deque[object] = collections.deque()
        self._cond = threading.Condition()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @contextmanager
    def held(self, should_stop: Callable[[], bool] | None = None) -> Iterator[None]:
        """Wait for a slot (``Cancelled`` if ``should_stop`` says so meanwhile), hold it inside."""
        self.acquire(should_stop)
        try:
            yield
        finally:
            self.release()

    def acquire(self, should_stop: Callable[[], bool] | None = None) -> None:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self.busy >= self.size:
                    if should_stop is not None and should_stop():
                        raise Cancelled()
                    self._cond.wait(POLL_SECONDS)
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.popleft()
            self.busy += 1
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self.busy -= 1
            self._cond.notify_all()
