"""What every word aligner takes and gives, whatever its engine: the seam where another aligner
plugs in (``registry`` says which serves which language).

A ``WordAligner`` takes a piece of audio at ``ALIGN_RATE`` and its words (as
``words.split_words`` gives them) and returns one ``WordTime`` per word, in order, or raises
``AlignmentFailed``. It runs inside a helper process (``helper``), built once by its factory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

ALIGN_RATE = 16_000  # the rate pieces are aligned at (PocketSphinx's acoustic models')


class AlignmentFailed(Exception):
    """The aligner found no path through the audio for the text; the message says why."""


@dataclass(frozen=True)
class WordTime:
    word: str
    start_s: float  # from the start of the aligned audio
    end_s: float
    approximate: bool = False  # pronunciation guessed, or times interpolated


class WordAligner(Protocol):
    def align(self, audio: np.ndarray, rate: int, words: Sequence[str]) -> list[WordTime]: ...
