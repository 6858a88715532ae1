"""Numbers as English words: cardinals, ordinals, years, decimals and digit strings.

The words come from ``inflect`` (MIT): American style, no "and" inside a number
("one hundred twenty-three"), so "and" is left to money ("three dollars and fifty cents").
"""

from __future__ import annotations

import functools

import inflect

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@functools.lru_cache(maxsize=1)
def _engine() -> inflect.engine:
    return inflect.engine()


@functools.lru_cache(maxsize=4096)
def cardinal(digits: str) -> str:
    """``"1234"`` -> "one thousand two hundred thirty-four" (digits only, any length)."""
    digits = digits.lstrip("0") or "0"
    return str(_engine().number_to_words(digits, andword="", comma="")).strip()


@functools.lru_cache(maxsize=4096)
def ordinal(digits: str) -> str:
    """``"21"`` -> "twenty-first"."""
    return str(_engine().ordinal(cardinal(digits)))


def digit_by_digit(digits: str) -> str:
    """``"0958"`` -> "zero nine five eight"."""
    return " ".join(ONES[int(d)] for d in digits if d.isdigit())


def decimal(integer: str, fraction: str) -> str:
    """``"3", "14"`` -> "three point one four"."""
    whole = cardinal(integer) if integer else "zero"
    return f"{whole} point {digit_by_digit(fraction)}" if fraction else whole


def year(digits: str) -> str:
    """A year as people say it: 1969 "nineteen sixty-nine", 1900 "nineteen hundred",
    2000 "two thousand", 2005 "two thousand five", 2026 "twenty twenty-six", 1805
    "eighteen oh five"; other lengths as cardinals."""
    if len(digits) != 4 or digits[0] == "0":
        return cardinal(digits)
    value = int(digits)
    high, low = digits[:2], digits[2:]
    if 2000 <= value <= 2009 or value % 1000 == 0:
        return cardinal(digits)
    if low == "00":
        return f"{cardinal(high)} hundred"
    if low[0] == "0":
        return f"{cardinal(high)} oh {ONES[int(low[1])]}"
    return f"{cardinal(high)} {cardinal(low)}"


def decade(digits: str) -> str:
    """``"1990"`` -> "nineteen nineties", ``"90"`` -> "nineties", ``"2000"`` -> "two thousands"."""
    words = year(digits) if len(digits) == 4 else cardinal(digits)
    return plural(words)


def plural(words: str) -> str:
    """The last word of ``words`` in the plural: "twenty" -> "twenties", "six" -> "sixes"."""
    head, _, last = words.rpartition(" ")
    if "-" in last:
        first, _, tail = last.rpartition("-")
        last = f"{first}-{_engine().plural_noun(tail)}"
    else:
        last = str(_engine().plural_noun(last))
    return f"{head} {last}" if head else last


def plural_noun(noun: str) -> str:
    """ "kilometer" -> "kilometers", "foot" -> "feet"."""
    return str(_engine().plural_noun(noun))
