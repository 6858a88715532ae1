"""Numbers in Chinese text, read by WeTextProcessing's Chinese grammar (``wetext``,
Apache-2.0: precompiled FSTs run by kaldifst, no pynini).

A run of digits written against Chinese characters ("2026年12月7日", "增长了25%",
"电话13812345678") is read in its context: dates digit by digit for the year, amounts as
numbers, phone numbers as digits, "3:30" as a time. Each run is one replaced piece.
"""

from __future__ import annotations

import logging
import re
import threading

log = logging.getLogger(__name__)

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NUMERIC = r"0-9０-９.．:：/%％\-+~～"
# a run of Chinese characters and number marks that holds a digit and touches a Chinese character
RUN = re.compile(
    rf"[{_CJK}{_NUMERIC}]*[{_CJK}][{_CJK}{_NUMERIC}]*[0-9０-９][{_CJK}{_NUMERIC}]*"
    rf"|[{_NUMERIC}]*[0-9０-９][{_NUMERIC}]*[{_CJK}][{_CJK}{_NUMERIC}]*"
)

_lock = threading.Lock()
_normalizer = None


def _read(text: str) -> str:
    global _normalizer
    with _lock:  # one grammar, loaded on first use (about 0.1 s), one caller at a time
        if _normalizer is None:
            from wetext import Normalizer

            _normalizer = Normalizer(lang="zh", operator="tn")
        return str(_normalizer.normalize(text))


def replacements(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, spoken)`` for each run of digits in Chinese context; a run the grammar
    cannot read (it raises on some inputs) is left as written."""
    out = []
    for match in RUN.finditer(text):
        try:
            spoken = _read(match.group())
        except Exception:  # noqa: BLE001 - the library's own assertion: read it as written
            log.warning("Chinese normalisation failed on a run of %d characters; read as written", len(match.group()))
            continue
        if spoken and spoken != match.group():
            out.append((match.start(), match.end(), spoken))
    return out
