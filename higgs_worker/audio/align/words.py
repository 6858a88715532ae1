"""The words of a text as a read-along shows them, and times shared out by characters.

A word is a run of non-space characters as written, punctuation included (``"Hello,"``),
so joining the words with spaces gives the text back; a run without any letter or digit
(a lone dash, an ellipsis) is no word of its own and joins the word before it. In Chinese
and Japanese, written without spaces, each character is a word (with the punctuation
that follows it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# CJK ideographs (with extension A and compatibility ideographs), kana and Hangul syllables
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}][^\s{_CJK}\w]*|[^\s{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")


def has_letters(token: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in token)


def split_words(text: str) -> list[str]:
    """The words of ``text`` in order, each as written (so every character of ``text``
    but its white space is in exactly one word, in order)."""
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if has_letters(token) or not words:
            words.append(token)
        else:
            words[-1] = f"{words[-1]} {token}"
    if len(words) > 1 and not has_letters(words[0]):
        words[1] = f"{words[0]} {words[1]}"
        del words[0]
    return words


def word_spans(text: str) -> list[tuple[int, int]]:
    """Where each of ``split_words(text)`` lies in ``text``: ``(start, end)`` offsets."""
    spans: list[tuple[int, int]] = []
    for match in _TOKEN.finditer(text):
        if has_letters(match.group()) or not spans:
            spans.append(match.span())
        else:
            spans[-1] = (spans[-1][0], match.end())
    if len(spans) > 1 and not has_letters(text[spans[0][0] : spans[0][1]]):
        spans[1] = (spans[0][0], spans[1][1])
        del spans[0]
    return spans


def script_of(text: str) -> str:
    """``"cjk"`` when most letters are CJK characters, ``"latin"`` when most are Latin
    (English first), else ``"other"``."""
    letters = [ch for ch in text if unicodedata.category(ch)[0] == "L"]
    if not letters:
        return "latin"
    cjk = sum(1 for ch in letters if _CJK_CHAR.match(ch))
    latin = sum(1 for ch in letters if "LATIN" in unicodedata.name(ch, ""))
    if cjk * 2 > len(letters):
        return "cjk"
    return "latin" if latin * 2 > len(letters) else "other"


def share_by_characters(words: Sequence[str], start: float, end: float) -> list[tuple[float, float]]:
    """``[start, end)`` cut into consecutive spans, one per word, in proportion to each
    word's letters and digits (at least one)."""
    weights = [max(1, sum(1 for ch in word if unicodedata.category(ch)[0] in "LN")) for word in words]
    total = sum(weights)
    spans, running = [], 0
    for weight in weights:
        a = start + (end - start) * running / total
        running += weight
        spans.append((a, start + (end - start) * running / total))
    return spans
