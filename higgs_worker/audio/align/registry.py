"""Which aligner serves which language: the one place to add another.

A ``WordAligner`` takes a piece of audio and its words (as ``words.split_words`` gives
them) and returns one ``WordTime`` per word, in order, or raises ``AlignmentFailed``.
It runs inside the helper process (``helper``), built once by its factory here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from . import pocketsphinx_aligner
from .pocketsphinx_aligner import WordTime


class WordAligner(Protocol):
    def align(self, audio: np.ndarray, rate: int, words: Sequence[str]) -> list[WordTime]: ...


# language -> factory. Chinese: docs/narration.md (word timestamps) says how.
ALIGNERS: dict[str, Callable[[], WordAligner]] = {"en": pocketsphinx_aligner.english}
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "other": "this script's"}
