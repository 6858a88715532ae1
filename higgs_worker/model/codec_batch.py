"""One audio-tokenizer decode call for the jobs' windows that are due at the same time.

Each job decodes its own audio (the streaming decoder's windows, a chunk's windows) on its own
thread. One decode runs at a time (on CUDA the memory plan reserves one call's workspace, and
calls from many threads would queue on the one stream anyway); while it runs, the windows other
jobs ask for wait, and the next call decodes all of them that have the same number of frames
(the streaming windows of jobs in their steady state do: ``left_context + later_frames + hold``)
as one batch, up to ``max_frames`` frames in all. A window alone is decoded as before, at once;
under load the calls get fewer and larger, not more: no waiting is added to make a batch.

The caller that finds the codec free decodes for everyone in its batch (its own window first)
and hands each its audio; an error fails the windows of that call only. Batched decoding is not
bit-identical to one window at a time (CPU fp32: differences about 1e-9, far below 16-bit audio),
so a job's audio can differ in the last bits depending on what was decoded beside it; its codes
do not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(eq=False)
class _Window:
    codes: torch.Tensor  # (num_codebooks, frames)
    done: bool = False
    audio: np.ndarray | None = None
    error: BaseException | None = None
    waiting: threading.Event = field(default_factory=threading.Event)


class CodecBatcher:
    def __init__(self, decode_batch: Callable[[torch.Tensor], np.ndarray], max_frames: int):
        """``decode_batch``: codes (batch, num_codebooks, frames) -> audio (batch, samples)."""
        self.decode_batch = decode_batch
        self.max_frames = max_frames
        self._lock = threading.Lock()
        self._pending: list[_Window] = []
        self._busy = False
        self.calls = 0  # decode calls made (for tests and figures)
        self.windows = 0  # windows decoded

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (num_codebooks, frames) -> mono float32 audio, decoded with any windows of the
        same length that wait at the same time."""
        window = _Window(codes)
        with self._lock:
            self._pending.append(window)
        while True:
            with self._lock:
                if window.done:
                    break
                if self._busy:
                    window.waiting.clear()
                    lead = False
                else:
                    self._busy = True
                    batch = self._take(window)
                    lead = True
            if lead:
                self._run(batch)
            else:
                window.waiting.wait()
        if window.error is not None:
            raise window.error
        return window.audio

    def _take(self, first: _Window) -> list[_Window]:
        """``first`` and the waiting windows of its length, oldest first, within ``max_frames``."""
        frames = first.codes.shape[1]
        batch = [first]
        for window in self._pending:
            if window is first or window.codes.shape[1] != frames or window.codes.shape[0] != first.codes.shape[0]:
                continue
            if (len(batch) + 1) * frames > self.max_frames:
                break
            batch.append(window)
        for window in batch:
            self._pending.remove(window)
        return batch

    def _run(self, batch: list[_Window]) -> None:
        try:
            audio = self.decode_batch(torch.stack([window.codes for window in batch]))
            for window, samples in zip(batch, audio, strict=True):
                window.audio = samples
        except BaseException as exc:  # every window of this call gets the error, no other
            for window in batch:
                window.error = exc
        with self._lock:
            self.calls += 1
            self.windows += len(batch)
            self._busy = False
            for window in batch:
                window.done = True
            for window in [*batch, *self._pending]:  # the decoded return; one waiting leads next
                window.waiting.set()
