"""English pronunciations for the aligner: each written word to the phones it is said with.

The CMU Pronouncing Dictionary (134,000 words, the one PocketSphinx ships) gives most
words, with their variants. What it lacks still gets phones, marked ``guessed`` (the
word's times are then ``approximate``):

- numbers are read out: ``42`` -> forty two, ``1984`` -> nineteen eighty four (a year),
  ``3.5`` -> three point five, ``2nd``, ``$5``, ``10%``, ``&`` -> and;
- a word in capitals that the dictionary lacks (``GPU``) is spelled letter by letter;
- any other word is pieced together from the fewest dictionary words that spell it
  (``runpod`` -> run + pod), single letters sounded out where no piece fits.

Words made of parts (``co-op``, ``and/or``, ``runpod's``) are looked up whole first,
then part by part. A word with no Latin letter or digit has no English phones (None).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
ONES += "seventeen eighteen nineteen"
ONES_WORDS = ONES.split()
TENS_WORDS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth"}
ORDINAL_ENDINGS |= {"nine": "ninth", "twelve": "twelfth"}
SYMBOLS = {"&": "and", "+": "plus", "%": "percent", "@": "at", "=": "equals"}
CURRENCIES = {"$": "dollars", "€": "euros", "£": "pounds", "¥": "yen"}
# how single letters sound inside a word the dictionary lacks (not their names)
LETTER_SOUNDS = {
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH",
    "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R",
    "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "IY", "z": "Z",
}  # fmt: skip
POSSESSIVE = "'s"  # said as Z after the word (the dictionary's "'s" is the letter's name)
MAX_SPELLED = 6  # capitals up to this long, not in the dictionary, are spelled (GPU, HTTPS)
NUMBER = re.compile(r"^([$€£¥]?)(\d[\d,]*)(?:\.(\d+))?(st|nd|rd|th|s|%)?$")
PART_SEPARATORS = re.compile(r"[-/_.:+&]+")


@dataclass(frozen=True)
class Pronunciation:
    variants: tuple[tuple[str, ...], ...]  # each a sequence of phones; the aligner picks
    guessed: bool  # not every part came from the dictionary as written


def number_words(n: int) -> list[str]:
    """``n`` (0 <= n < 10**15) read as a cardinal: 1200 -> one thousand two hundred."""
    if n < 20:
        return [ONES_WORDS[n]]
    if n < 100:
        tens, rest = divmod(n, 10)
        return [TENS_WORDS[tens]] + ([ONES_WORDS[rest]] if rest else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [ONES_WORDS[hundreds], "hundred"] + (number_words(rest) if rest else [])
    for scale, name in SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return number_words(high) + [name] + (number_words(rest) if rest else [])
    raise ValueError(n)


def year_words(n: int) -> list[str]:
    """A four-digit year as said: 1984 -> nineteen eighty four, 2024 -> twenty twenty four,
    1905 -> nineteen oh five, 2005 -> two thousand five."""
    high, low = divmod(n, 100)
    if 2000 <= n < 2010 or low == 0 and n % 1000 == 0:
        return number_words(n)
    tail = ["hundred"] if low == 0 else (["oh", ONES_WORDS[low]] if low < 10 else number_words(low))
    return number_words(high) + tail


def ordinal(words: list[str]) -> list[str]:
    last = words[-1]
    if last in ORDINAL_ENDINGS:
        last = ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return words[:-1] + [last]


def with_and(words: list[str]) -> list[str]:
    """The British reading: "and" after the last hundred/thousand/... that has words after it."""
    scales = [i for i, w in enumerate(words[:-1]) if w in ("hundred", "thousand", "million", "billion", "trillion")]
    return words[: scales[-1] + 1] + ["and"] + words[scales[-1] + 1 :] if scales else words


def number_readings(token: str) -> list[list[str]] | None:
    """The ways a number is read, the likeliest first (``read_number``): a year is also
    read as a cardinal, and a cardinal also with "and" (two thousand and five)."""
    first = read_number(token)
    if first is None:
        return None
    readings = [first]
    match = NUMBER.match(token)
    assert match is not None
    currency, whole, fraction, suffix = match.groups()
    digits = whole.replace(",", "")
    if not (currency or fraction or suffix) and len(digits) <= 15:
        for reading in (number_words(int(digits)), with_and(number_words(int(digits))), with_and(first)):
            if reading not in readings:
                readings.append(reading)
    return readings


def read_number(token: str) -> list[str] | None:
    """The words a number is read with, or None when ``token`` is no number."""
    match = NUMBER.match(token)
    if not match:
        return None
    currency, whole, fraction, suffix = match.groups()
    digits = whole.replace(",", "")
    if len(digits) > 15:
        return [ONES_WORDS[int(d)] for d in digits]
    value = int(digits)
    is_year = len(digits) == 4 and "," not in whole and 1100 <= value < 2100 and not currency and not fraction
    words = year_words(value) if is_year and suffix in (None, "s") else number_words(value)
    if fraction:
        words += ["point"] + [ONES_WORDS[int(d)] for d in fraction]
    if suffix in ("st", "nd", "rd", "th"):
        words = ordinal(words)
    elif suffix == "s":  # the 1990s
        words = words[:-1] + [words[-1][:-1] + "ies" if words[-1].endswith("y") else words[-1] + "s"]
    elif suffix == "%":
        words.append("percent")
    if currency:
        words.append(CURRENCIES[currency])
    return words


def plain(token: str) -> str:
    """Lower case, accents and typographic quotes gone, outer punctuation stripped."""
    text = unicodedata.normalize("NFKD", token.replace("’", "'").replace("‘", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"^[^\w$€£¥&+@=]+|[^\w%&+@=]+$", "", text)


class Pronouncer:
    """Phones for English words from a CMU-format dictionary (``word PH PH ...`` lines,
    variants as ``word(2)``)."""

    def __init__(self, dictionary: Path):
        self.entries: dict[str, list[tuple[str, ...]]] = {}
        with open(dictionary, encoding="utf-8") as lines:
            for line in lines:
                word, _, phones = line.strip().partition(" ")
                if phones:
                    word = word.split("(", 1)[0]
                    self.entries.setdefault(word, []).append(tuple(phones.split()))

    def pronounce(self, token: str) -> Pronunciation | None:
        """The phones of one written word, or None when it has nothing English to say."""
        word = plain(token)
        if not word:
            return None
        if word in self.entries:
            return Pronunciation(tuple(self.entries[word]), guessed=False)
        readings = number_readings(word)
        if readings is not None:
            variants = tuple(tuple(p for w in reading for p in self.word_phones(w)) for reading in readings)
            return Pronunciation(variants, guessed=True)
        parts = self.spoken_parts(word, token)
        if not parts:
            return None
        guessed = False
        sequence: list[str] = []
        for part in parts:
            known = self.entries.get(part)
            if part == POSSESSIVE:
                sequence.append("Z")
            elif known:
                sequence += known[0]
            else:
                sequence += self.guess(part, spell=part.upper() == part and len(part) <= MAX_SPELLED)
                guessed = True
        guessed = guessed or any(ch.isdigit() or ch in SYMBOLS or ch in CURRENCIES for ch in word)
        return Pronunciation((tuple(sequence),), guessed=guessed) if sequence else None

    def word_phones(self, word: str) -> tuple[str, ...]:
        """A plain word's first dictionary pronunciation, else its guess."""
        known = self.entries.get(word)
        return known[0] if known else tuple(self.guess(word))

    def spoken_parts(self, word: str, token: str) -> list[str]:
        """``word`` (already plain) as the words it is said with; capitals kept from
        ``token`` for the parts to spell."""
        number = read_number(word)
        if number is not None:
            return number
        token = token.replace("’", "'")
        if word.endswith(POSSESSIVE) and len(word) > 2:
            return self.spoken_parts(word[:-2], token[: token.rfind("'")]) + [POSSESSIVE]
        parts: list[str] = []
        raw = re.sub(r"^[^\w$€£¥&+@=]+|[^\w%&+@=]+$", "", unicodedata.normalize("NFKD", token))
        raw_parts = [p for p in PART_SEPARATORS.split(raw) if p]
        for index, piece in enumerate(p for p in PART_SEPARATORS.split(word) if p):
            number = read_number(piece)
            if number is not None:
                parts += number
            elif piece.isascii():
                original = raw_parts[index] if index < len(raw_parts) else piece
                spell = original.isupper() and piece not in self.entries and len(piece) <= MAX_SPELLED
                parts.append(piece.upper() if spell else piece)
        for symbol, said in SYMBOLS.items():
            if symbol in word and symbol != "%":
                parts.append(said)
        return parts

    def guess(self, word: str, spell: bool = False) -> list[str]:
        """Phones for a word the dictionary lacks: spelled (``spell``, capitals), or
        the fewest dictionary pieces that spell it, with single letters sounded out."""
        letters = [ch for ch in word.lower() if ch.isalnum()]
        if spell:
            return [phone for ch in letters for phone in self._letter_name(ch)]
        return list(self._pieces("".join(letters)))

    def _letter_name(self, ch: str) -> tuple[str, ...]:
        if ch.isdigit():
            return self.entries[ONES_WORDS[int(ch)]][0]
        return self.entries.get(ch, [tuple(LETTER_SOUNDS.get(ch, "").split())])[-1]

    def _pieces(self, word: str) -> tuple[str, ...]:
        return _cheapest_pieces(word, self.entries)


def _cheapest_pieces(word: str, entries: dict[str, list[tuple[str, ...]]]) -> tuple[str, ...]:
    """Dynamic programming over ``word``'s letters (from its end): a dictionary piece of
    three letters or more costs 1, of two letters 1.5, a letter sounded out 2; the
    cheapest phones."""
    best: list[tuple[float, tuple[str, ...]]] = [(0.0, ())] * (len(word) + 1)
    for start in range(len(word) - 1, -1, -1):
        letter = word[start]
        if letter.isdigit():
            sound = entries[ONES_WORDS[int(letter)]][0]
        else:
            sound = tuple(LETTER_SOUNDS.get(letter, "").split())
        options = [(best[start + 1][0] + 2.0, sound + best[start + 1][1])]
        for end in range(start + 2, min(len(word), start + 16) + 1):
            piece = entries.get(word[start:end])
            if piece:
                options.append((best[end][0] + (1.0 if end - start >= 3 else 1.5), piece[0] + best[end][1]))
        best[start] = min(options, key=lambda option: option[0])
    return best[0][1]
