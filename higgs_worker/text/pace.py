"""How long a text takes to say: the bound on a chunk's generation steps.

A chunk's ``max_new_tokens`` must cover its speech (a shorter bound cuts the audio) and should
not be much longer (the scheduler reserves prompt + bound positions: a chunk whose reservation
exceeds a KV slot leaves the batch for the solo lane). The estimate has two parts:

- ``spoken_units(text)``: the text's length in units of speaking time, about one letter each.
  Letters count 1; digits 5 (a digit is read as a word: "1969" is "nineteen sixty-nine");
  a sentence end 6 and a clause break 3 (the pauses); a CJK ideograph or Hangul syllable 4, a
  kana 2 (a syllable or mora each); ``$ % & @`` 5 (read as words). Measured on espeak-ng speech
  (16 English texts of prose, dialogue, numbers and lists; five voices and speeds from 140 to 210
  words a minute), duration / units varies by 6 % (coefficient of variation) against 25 % for
  duration / characters (``python benchmarks/token_estimate.py``).
- the pace, in seconds per unit: the voice's own when the job has shown it (``pace_from``: the
  slowest of its reference clip with its transcript and the chunks already generated, so a chunk
  that ended early does not shorten the next one's bound), else ``TYPICAL_UNITS_PER_SECOND``.

``bound_seconds``: with the voice's pace, ``EVIDENCE_SLACK`` times the units at that pace (on
espeak-ng, learning the pace from two texts predicts a third within x0.64 .. x1.25, p95 x1.10);
without it, ``PRIOR_SLACK`` times the typical duration, as before (14 characters a second, twice).
The pace is held within ``FASTEST_UNITS_PER_SECOND`` .. ``SLOWEST_UNITS_PER_SECOND`` so a
clip with long silences or a chunk that ended early cannot make the bound absurd. How this is
checked on real weights: ``benchmarks/token_estimate.py --model-dir ...`` (the real model on a GPU:
generated frames against the bound for each chunk, and how many chunks hit it).
"""

from __future__ import annotations

import re

TYPICAL_UNITS_PER_SECOND = 15.0  # espeak-ng en-us at 175 words a minute: 16.3; about 14 characters a second
FASTEST_UNITS_PER_SECOND = 25.0  # a pace faster than this is taken as this one
SLOWEST_UNITS_PER_SECOND = 6.0  # and slower as this one (2.5 x slower than typical)
PRIOR_SLACK = 2.0  # no evidence of the voice's pace: slow expressive reading
EVIDENCE_SLACK = 1.5  # the voice's pace known (its reference clip, the job's earlier chunks)
MIN_EVIDENCE_UNITS = 30.0  # less text than this says little about a pace

DIGIT_UNITS = 5.0
SENTENCE_UNITS = 6.0
CLAUSE_UNITS = 3.0
SYMBOL_UNITS = 5.0
IDEOGRAPH_UNITS = 4.0
KANA_UNITS = 2.0

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_TAG = re.compile(r"\[SPEAKER\d{1,2}\]")
_SENTENCE = set(".!?。！？…")
_CLAUSE = set(",;:，；：、—–")
_SYMBOLS = set("$%&@€£¥")


def _char_units(char: str) -> float:
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xAC00 <= code <= 0xD7AF:
        return IDEOGRAPH_UNITS
    if 0x3040 <= code <= 0x30FF:
        return KANA_UNITS
    if char.isalpha():
        return 1.0
    if char in _SENTENCE:
        return SENTENCE_UNITS
    if char in _CLAUSE:
        return CLAUSE_UNITS
    if char in _SYMBOLS:
        return SYMBOL_UNITS
    return 0.0


def spoken_units(text: str) -> float:
    """The text's speaking time in units (about one letter each); speaker tags do not count."""
    text = _TAG.sub(" ", text)
    units = sum(DIGIT_UNITS * sum(c.isdigit() for c in m.group()) for m in _NUMBER.finditer(text))
    return units + sum(_char_units(c) for c in _NUMBER.sub(" ", text))


def pace_from(examples: list[tuple[str, float]]) -> float | None:
    """The slowest pace, in seconds per unit, of (text, seconds of its audio) examples with at least
    ``MIN_EVIDENCE_UNITS`` of text; None when there is none."""
    paces = [seconds / units for text, seconds in examples if (units := spoken_units(text)) >= MIN_EVIDENCE_UNITS]
    paces = [pace for pace in paces if pace > 0]
    return max(paces) if paces else None


def bound_seconds(text: str, seconds_per_unit: float | None = None) -> float:
    """Seconds of speech ``text`` can take at most (at least one): from the voice's pace when
    known (``seconds_per_unit``), else from the typical one with more slack."""
    units = spoken_units(text)
    if seconds_per_unit is None:
        return max(1.0, PRIOR_SLACK * units / TYPICAL_UNITS_PER_SECOND)
    per_unit = min(max(seconds_per_unit, 1.0 / FASTEST_UNITS_PER_SECOND), 1.0 / SLOWEST_UNITS_PER_SECOND)
    return max(1.0, EVIDENCE_SLACK * units * per_unit)
