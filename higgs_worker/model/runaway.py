"""The runaway guard: a chunk that went silent after speech, or repeats one frame, is ended.

It reads the generated rows as they come (delay pattern: codebook k lags k steps, so
row r's first code is frame r's first code) and costs a few integer comparisons a row:

- **silence**: a frame is silent when its first-codebook code is one of the codes the
  audio tokenizer gives silence (``Engine.silence_codes``: learned at load by encoding
  digital silence and a -60 dBFS noise floor). After the chunk has spoken, more than
  ``silence_frames`` silent frames in a row end it.
- **repeat**: the same (non-silent) row ``repeat_frames`` times in a row ends it (a stuck
  decoder; speech never holds one frame of every codebook that long).

``push(row)`` answers the reason once the chunk must end ("silence" or "repeat"), else
None; ``keep`` is then how many of the rows pushed to keep: up to the last spoken frame
(plus a short natural tail and the delay pattern's rows that complete it), so the trailing
silence or the repeated frames are cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

TAIL_FRAMES = 5  # 0.2 s of the pause kept after the last spoken frame (a natural end, not a cut)


@dataclass
class RunawayGuard:
    silence_codes: frozenset[int]
    silence_frames: int  # 0: off
    repeat_frames: int  # 0: off
    num_codebooks: int
    bos_id: int
    eos_id: int
    rows: int = 0  # rows pushed (the stream-opening all-bos row included)
    keep: int | None = None  # rows to keep once ended
    reason: str | None = None
    _spoke_at: int | None = None  # index of the last row whose frame was speech
    _silent_run: int = 0
    _repeat_run: int = 0
    _repeat_from: int = 0
    _last: list[int] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.silence_frames > 0 or self.repeat_frames > 0

    def push(self, row: torch.Tensor) -> str | None:
        index = self.rows
        self.rows += 1
        if self.reason is not None:
            return self.reason
        codes = row.tolist()
        first = codes[0]
        if first in (self.bos_id, self.eos_id):  # the stream's opening or closing rows
            self._last = codes
            return None
        silent = first in self.silence_codes
        if silent:
            self._silent_run += 1
        else:
            self._silent_run = 0
            self._spoke_at = index
        if codes == self._last and not silent:
            self._repeat_run += 1
        else:
            self._repeat_run, self._repeat_from = 1, index
        self._last = codes
        if self.silence_frames and self._spoke_at is not None and self._silent_run > self.silence_frames:
            return self._end("silence", self._spoke_at + 1 + TAIL_FRAMES)
        if self.repeat_frames and self._repeat_run >= self.repeat_frames:
            return self._end("repeat", self._repeat_from + 1)
        return None

    def _end(self, reason: str, frames_to: int) -> str:
        """Keep the rows that complete every frame before ``frames_to`` (the delay pattern's
        last codebook lags ``num_codebooks - 1`` rows)."""
        self.reason = reason
        self.keep = min(self.rows, frames_to + self.num_codebooks - 1)
        return reason

    def cut_seconds(self, frames_per_second: float) -> float:
        """Seconds of generated audio the guard cut (the rows pushed past ``keep``)."""
        return 0.0 if self.keep is None else (self.rows - self.keep) / frames_per_second
