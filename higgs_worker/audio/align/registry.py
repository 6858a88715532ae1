"""Which aligner serves which language: the one place to add another.

What an aligner takes and gives (``WordAligner``) is in ``aligner``; another aligner is a
module beside ``pocketsphinx_aligner`` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from . import pocketsphinx_aligner
from .aligner import WordAligner

# language -> factory. Chinese: docs/narration.md (word timestamps) says how.
ALIGNERS: dict[str, Callable[[], WordAligner]] = {"en": pocketsphinx_aligner.english}
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "other": "this script's"}
