"""Queue-mode stream items (``/stream`` and the aggregated ``/run`` / ``/runsync`` output).

RunPod repeats every streamed item in a job's aggregated result, which has a size limit
(10 MB for ``/run``, 20 MB for ``/runsync``). So each item is small and bounded:

- a self-contained Ogg Opus file (about 36 kbit/s, mono, 24 kHz; ``lossy.OPUS_SPEECH``) of one
  generated piece:
  ``{"chunk": i, "format": "opus", "sample_rate": 24000, "audio_base64": "..."}``; every
  item decodes on its own (soundfile, ffmpeg, a browser), and the decoded items joined are
  the job's audio, sample for sample in length (Opus is lossy: not bit for bit);
- a budget: once the items' base64 would pass ``STREAM_BUDGET_BYTES`` (6 MB, about 15
  minutes of audio), no more audio items are sent; one ``{"notice": "..."}`` item says so
  and the job's result (last, as always) still carries the whole audio.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np

from ..contract.schema import MODEL_SAMPLE_RATE
from . import lossy

STREAM_SAMPLE_RATE = MODEL_SAMPLE_RATE  # stream items carry the model's own audio
STREAM_FORMAT = "opus"
STREAM_BUDGET_BYTES = 6_000_000  # base64 bytes of all items; the result's own audio is counted by jobs._deliver
MAX_ITEM_SECONDS = 30  # a piece longer than this (it never is today) is split over several items


def encode_item_audio(piece: np.ndarray, sample_rate: int = STREAM_SAMPLE_RATE) -> bytes:
    """One piece of float32 audio as a complete Ogg Opus file."""
    return lossy.encode(piece, sample_rate, lossy.OPUS_SPEECH)


class StreamItems:
    """Turns generated pieces into stream items for ``emit``, within ``budget`` base64 bytes.

    ``count`` (shared with jobs.py) keeps ``n`` (items sent) and ``bytes`` (their base64
    bytes): the inline-delivery check counts them, since the aggregate repeats them."""

    def __init__(self, emit: Callable[[dict], None], count: dict, budget: int = STREAM_BUDGET_BYTES):
        self.emit, self.count, self.budget = emit, count, budget
        self.stopped = False

    def __call__(self, piece: np.ndarray) -> None:
        step = MAX_ITEM_SECONDS * STREAM_SAMPLE_RATE
        for start in range(0, len(piece), step):
            if self.stopped:
                return
            encoded = base64.b64encode(encode_item_audio(piece[start : start + step])).decode("ascii")
            if self.count["bytes"] + len(encoded) > self.budget:
                self._stop()
                return
            self.emit(
                {
                    "chunk": self.count["n"],
                    "format": STREAM_FORMAT,
                    "sample_rate": STREAM_SAMPLE_RATE,
                    "audio_base64": encoded,
                }
            )
            self.count["n"] += 1
            self.count["bytes"] += len(encoded)

    def _stop(self) -> None:
        self.stopped = True
        notice = {
            "notice": f"stream_budget: the streamed items reached {self.budget} bytes; no more are sent for "
            "this job, whose result (the last item) carries the whole audio"
        }
        self.emit(notice)
        self.count["bytes"] += len(str(notice))
