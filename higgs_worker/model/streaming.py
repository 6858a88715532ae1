"""Incremental decoding of generated audio rows into audio pieces for ``/stream``.

Rows arrive in the delay pattern (codebook k lags k steps). Frame f is complete once
row f + num_codebooks - 1 has arrived. Windows of complete frames are decoded with
``left_context`` earlier frames in front (the decoder's convolutions need them) and
the last ``hold`` frames held back until more frames give them their right context;
each new window is cross-faded with the held tail of the previous one. The first
window is small (time to first audio), later ones larger (fewer decoder calls).
Joined, the pieces equal the one-piece decode within a small tolerance
(tests/model/test_streaming.py measures it).

``decode_in_windows`` decodes a whole chunk the same way, in windows of a bounded number of
frames, so that no decoder call's workspace grows with the chunk's length (the GPU memory
plan reserves room for one window, higgs_worker/model/memory_plan.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch


class StreamingDecoder:
    def __init__(
        self,
        decode: Callable[[torch.Tensor], np.ndarray],
        undo_delay: Callable[[torch.Tensor], torch.Tensor],
        num_codebooks: int,
        samples_per_frame: int,
        bos_id: int,
        eos_id: int,
        first_frames: int = 10,
        later_frames: int = 40,
        left_context: int = 12,
        hold: int = 3,
        fade_frames: int = 1,
    ):
        self.decode, self.undo_delay = decode, undo_delay
        self.n = num_codebooks
        self.spf = samples_per_frame
        self.bos_id, self.eos_id = bos_id, eos_id
        self.first_frames, self.later_frames = first_frames, later_frames
        self.left_context, self.hold, self.fade = left_context, hold, fade_frames * samples_per_frame
        self.rows: list[torch.Tensor] = []  # generated rows after the opening all-bos row
        self.ended = False
        self.emitted_frames = 0  # frames whose audio has been handed out
        self.tail: np.ndarray | None = None  # previous window's audio for the held frames

    def complete_frames(self) -> int:
        """Frame f is complete once row f + num_codebooks - 1 has arrived."""
        return max(0, len(self.rows) - (self.n - 1))

    def frames(self) -> torch.Tensor:
        """All complete frames so far: codes (num_codebooks, frames)."""
        if not self.rows:
            return torch.zeros((self.n, 0), dtype=torch.long)
        return self.undo_delay(torch.stack(self.rows))

    def push(self, row: torch.Tensor) -> Iterator[np.ndarray]:
        """Add one generated row; yield audio pieces that are ready."""
        if self.ended:
            return
        if bool((row == self.eos_id).all()):
            self.ended = True
            return
        if not self.rows and bool((row == self.bos_id).all()):
            return  # the row that opens the stream carries no audio
        self.rows.append(row)
        target = self.first_frames if self.emitted_frames == 0 else self.later_frames
        if self.complete_frames() - self.hold - self.emitted_frames >= target:
            yield self._window(self.frames(), final=False)

    def finish(self) -> Iterator[np.ndarray]:
        """The stream ended: decode what is left (no frames held back)."""
        if self.complete_frames() > self.emitted_frames:
            yield self._window(self.frames(), final=True)

    def _window(self, codes: torch.Tensor, final: bool) -> np.ndarray:
        total = codes.shape[1]
        start = max(0, self.emitted_frames - self.left_context)
        audio = self.decode(codes[:, start:total])
        offset = (self.emitted_frames - start) * self.spf
        end_frame = total if final else total - self.hold
        piece = audio[offset : (end_frame - start) * self.spf].copy()
        if self.tail is not None and len(piece):
            fade = min(len(self.tail), len(piece), self.fade)
            weights = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
            piece[:fade] = self.tail[:fade] * (1.0 - weights) + piece[:fade] * weights
        self.tail = None if final else audio[(end_frame - start) * self.spf :].copy()
        self.emitted_frames = end_frame
        return piece


def decode_in_windows(
    decode: Callable[[torch.Tensor], np.ndarray],
    codes: torch.Tensor,
    samples_per_frame: int,
    window: int,
    left_context: int = 12,
    hold: int = 3,
    fade_frames: int = 1,
) -> np.ndarray:
    """Codes (num_codebooks, frames) -> audio, at most ``window`` new frames (plus context)
    per ``decode`` call, joined as the stream joins its pieces; one call when it fits."""
    total = codes.shape[1]
    if total <= window:
        return decode(codes)
    decoder = StreamingDecoder(
        decode,
        undo_delay=lambda rows: rows,  # unused: the windows are cut from undelayed codes
        num_codebooks=codes.shape[0],
        samples_per_frame=samples_per_frame,
        bos_id=-1,
        eos_id=-1,
        left_context=left_context,
        hold=hold,
        fade_frames=fade_frames,
    )
    pieces = []
    while decoder.emitted_frames < total:
        end = min(total, decoder.emitted_frames + window + hold)
        pieces.append(decoder._window(codes[:, :end], final=end == total))
    return np.concatenate(pieces)
