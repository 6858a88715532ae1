"""English text as read aloud: where each rule matches and what it reads.

One pattern of named alternatives is scanned left to right; at a position the first
alternative that matches wins, so the more specific ones (e-mail before URL, a date before
a number) come first. Each rule returns the replaced stretches of its match as
``(start, end, spoken)`` relative to the match, so a date's words map back one by one
("Dec." -> "December", "7," -> "seventh,", "2026" -> "twenty twenty-six").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .numbers import cardinal, decade, decimal, digit_by_digit, ordinal, plural_noun, year

Replacement = tuple[int, int, str]  # (start, end, spoken), relative to the match

MONTHS = {
    "jan": "January", "feb": "February", "mar": "March", "apr": "April", "may": "May", "jun": "June",
    "jul": "July", "aug": "August", "sep": "September", "sept": "September", "oct": "October",
    "nov": "November", "dec": "December",
}  # fmt: skip
MONTH_NAMES = [name for key, name in MONTHS.items() if key != "sept"]
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
)
CURRENCIES = {  # symbol: (unit, units, subunit, subunits)
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
SCALES = {"thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
          "k": "thousand", "m": "million", "bn": "billion", "b": "billion"}  # fmt: skip
UNITS = {  # as written after a number: (singular, plural)
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "m/s": ("meter per second", "meters per second"),
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"), "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "g": ("gram", "grams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"), "l": ("liter", "liters"),
    "L": ("liter", "liters"), "TB": ("terabyte", "terabytes"), "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"), "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"), "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"), "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "W": ("watt", "watts"), "V": ("volt", "volts"), "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "°": ("degree", "degrees"),
    "ms": ("millisecond", "milliseconds"), "s": ("second", "seconds"), "sec": ("second", "seconds"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
}  # fmt: skip
_UNIT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
# Abbreviations read as words: those before a name lose their period; those that can end a
# sentence keep it there (followed by the end, or by a capital after white space).
TITLES = {"mr": "Mister", "mrs": "Missus", "ms": "Miz", "prof": "Professor", "capt": "Captain",
          "gen": "General", "lt": "Lieutenant", "sgt": "Sergeant", "col": "Colonel", "rev": "Reverend",
          "mt": "Mount", "hon": "Honorable", "gov": "Governor", "sen": "Senator", "rep": "Representative"}  # fmt: skip
TRAILING = {"jr": "Junior", "sr": "Senior", "ave": "Avenue", "blvd": "Boulevard", "rd": "Road",
            "etc": "et cetera", "inc": "Incorporated", "ltd": "Limited", "corp": "Corporation",
            "dept": "Department", "approx": "approximately", "vs": "versus", "est": "established",
            "fig": "figure", "vol": "volume", "e.g": "for example", "i.e": "that is"}  # fmt: skip
INLINE = {"vs", "e.g", "i.e", "approx", "fig", "vol", "est"}  # read inside a sentence: no period kept
FRACTIONS = {(1, 2): "one half", (1, 4): "one quarter", (3, 4): "three quarters"}

_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
PATTERN = re.compile(
    r"(?P<email>(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    r"|(?P<url>(?:https?://|www\.)[^\s<>\"\[\]]*[^\s<>\"\[\].,;:!?)'’]"
    r"|(?<![\w@.])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|org|net|edu|gov|io|ai|dev|app|info|co\.uk|uk|de|fr)"
    r"(?:/[^\s<>\"\[\]]*[^\s<>\"\[\].,;:!?)'’])?(?![\w]))"
    r"|(?P<phone>(?<![\w+])(?:\+1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\d)"
    r"|\+\d{1,3}(?:[\s.-]\d{1,4}){2,5}(?!\d))"
    rf"|(?P<mdy>\b(?P<mdy_m>{_MONTH})(?P<mdy_dot>\.?)\s+(?P<mdy_d>\d{{1,2}})(?:st|nd|rd|th)?\b"
    r"(?:(?P<mdy_c>,?)\s+(?P<mdy_y>\d{4})\b)?)"
    rf"|(?P<dmy>\b(?P<dmy_d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<dmy_m>{_MONTH})(?P<dmy_dot>\.?)"
    r"(?:(?P<dmy_c>,?)\s+(?P<dmy_y>\d{4})\b)?(?!\w))"
    r"|(?P<iso>\b(?P<iso_y>\d{4})-(?P<iso_m>0[1-9]|1[0-2])-(?P<iso_d>0[1-9]|[12]\d|3[01])\b)"
    r"|(?P<slash>\b(?P<sl_m>0?[1-9]|1[0-2])/(?P<sl_d>0?[1-9]|[12]\d|3[01])/(?P<sl_y>\d{4})\b)"
    r"|(?P<time>\b(?P<t_h>[01]?\d|2[0-3]):(?P<t_m>[0-5]\d)(?::(?P<t_s>[0-5]\d))?(?!\d)"
    r"(?:(?P<t_sp>\s?)(?P<t_ap>[AaPp]\.?[Mm])\b)?)"
    r"|(?P<hour>\b(?P<h_h>1[0-2]|0?[1-9])(?P<h_sp>\s?)(?P<h_ap>[AaPp]\.?[Mm])\b)"
    rf"|(?P<money>(?P<m_neg>(?<![\w])-)?(?P<m_cur>[$€£¥₹])\s?(?P<m_int>{_NUMBER})(?:\.(?P<m_frac>\d+))?"
    r"(?:(?P<m_sp>\s?)(?P<m_scale>thousand|million|billion|trillion|bn|[kKmMbB])\b)?)"
    rf"|(?P<percent>(?<![\w.])(?P<p_sign>[-+])?(?P<p_int>{_NUMBER})(?:\.(?P<p_frac>\d+))?\s?%)"
    r"|(?P<ordinal>\b(?P<o_n>\d+)(?:st|nd|rd|th)\b)"
    r"|(?P<decade>(?:\b|')(?P<dc_n>\d{2}|\d{3}0)'?s\b)"
    rf"|(?P<measure>(?<![\w.])(?P<u_sign>-)?(?P<u_int>{_NUMBER})(?:\.(?P<u_frac>\d+))?"
    rf"(?P<u_sp>\s?)(?P<u_unit>{_UNIT})(?![\w]))"
    r"|(?P<fraction>(?<![\w/.])(?P<f_a>\d{1,3})/(?P<f_b>\d{1,3})(?![\w/]))"
    r"|(?P<range>(?<![\w.])(?P<r_a>\d+)\s?[-–]\s?(?P<r_b>\d+)(?![\w.]))"
    rf"|(?P<number>(?<![\w.])(?P<n_sign>[-−+](?=\d))?(?P<n_int>{_NUMBER})(?:\.(?P<n_frac>\d+))?(?![\w]))"
    r"|(?P<hash>#(?=\d))"
    r"|(?P<abbr>\b(?P<a_w>Dr|St|No|Mr|Mrs|Ms|Prof|Capt|Gen|Lt|Sgt|Col|Rev|Mt|Hon|Gov|Sen|Rep|Jr|Sr|Ave|Blvd|Rd"
    r"|etc|Inc|Ltd|Corp|Dept|approx|vs|est|Fig|fig|Vol|vol|e\.g|i\.e)\.(?:(?=(?P<a_next>\s+\S+|\s*$))|(?=.)))"
    r"|(?P<amp>(?<=\s)&(?=\s))"
)


def _money(m: re.Match) -> list[Replacement]:
    unit, units, sub, subs = CURRENCIES[m["m_cur"]]
    digits = m["m_int"].replace(",", "")
    frac = m["m_frac"] or ""
    scale = SCALES.get((m["m_scale"] or "").lower())
    if scale:
        words = f"{decimal(digits, frac.rstrip('0'))} {scale} {units}"
    elif sub is None or len(frac) not in (0, 1, 2):
        amount = decimal(digits, frac)
        words = f"{amount} {unit if amount == 'one' else units}"
    else:
        cents = int(frac.ljust(2, "0")) if frac else 0
        parts = []
        if int(digits) or not cents:
            parts.append(f"{cardinal(digits)} {unit if int(digits) == 1 else units}")
        if cents:
            parts.append(f"{cardinal(str(cents))} {sub if cents == 1 else subs}")
        words = " and ".join(parts)
    if m["m_neg"]:
        words = f"minus {words}"
    return [(0, len(m[0]), words)]


def _number_words(integer: str, fraction: str | None, sign: str | None = None) -> str:
    digits = integer.replace(",", "")
    words = decimal(digits, fraction or "")
    return f"minus {words}" if sign in ("-", "−") else (f"plus {words}" if sign == "+" else words)


def _date(m: re.Match, prefix: str) -> list[Replacement]:
    out: list[Replacement] = []
    base = m.start()
    month_end = m.end(f"{prefix}_dot") if m[f"{prefix}_dot"] else m.end(f"{prefix}_m")
    month = MONTHS[m[f"{prefix}_m"][:3].lower()]
    out.append((m.start(f"{prefix}_m") - base, month_end - base, month))
    day_start = m.start(f"{prefix}_d") - base
    day_text = m[0][day_start:]
    day_token = re.match(r"\d+(?:st|nd|rd|th)?", day_text)
    assert day_token is not None
    day_words = ordinal(m[f"{prefix}_d"])
    if prefix == "dmy":  # "7 December 2026": "the seventh of December twenty twenty-six"
        day_words = f"the {day_words}" + ("" if re.search(r"\sof\s", m[0]) else " of")
    out.append((day_start, day_start + day_token.end(), day_words))
    if m[f"{prefix}_y"]:
        out.append((m.start(f"{prefix}_y") - base, m.end(f"{prefix}_y") - base, year(m[f"{prefix}_y"])))
    return sorted(out)


def _numeric_date(year_: str, month: str, day: str, length: int) -> list[Replacement]:
    words = f"{MONTH_NAMES[int(month) - 1]} {ordinal(day)}, {year(year_)}"
    return [(0, length, words)]


def _with_am_pm(m: re.Match, number_group: str, space: str, ap: str, words: str) -> list[Replacement]:
    """The number's words and "a m" / "p m" for its suffix: two pieces with the space between
    them, one when written together ("5pm")."""
    base = m.start()
    if not m[ap]:
        return [(0, m.end(number_group) - base, words)]
    if not m[space]:
        return [(0, m.end(ap) - base, f"{words} {_am_pm(m[ap])}")]
    return [(0, m.end(number_group) - base, words), (m.start(ap) - base, m.end(ap) - base, _am_pm(m[ap]))]


def _time(m: re.Match) -> list[Replacement]:
    hour, minute = int(m["t_h"]), m["t_m"]
    if m["t_ap"] is None and minute == "00" and hour > 12:
        words = f"{cardinal(str(hour))} hundred"
    elif minute == "00":
        words = f"{cardinal(str(hour))}" + ("" if m["t_ap"] else " o'clock")
    elif minute.startswith("0"):
        words = f"{cardinal(str(hour))} oh {cardinal(minute)}"
    else:
        words = f"{cardinal(str(hour))} {cardinal(minute)}"
    if m["t_s"]:
        words += f" and {cardinal(m['t_s'])} seconds"
    return _with_am_pm(m, "t_s" if m["t_s"] else "t_m", "t_sp", "t_ap", words)


def _am_pm(text: str) -> str:
    return f"{text[0].lower()} m"


def _hour(m: re.Match) -> list[Replacement]:
    return _with_am_pm(m, "h_h", "h_sp", "h_ap", cardinal(m["h_h"]))


def _measure(m: re.Match) -> list[Replacement]:
    amount = _number_words(m["u_int"], m["u_frac"], m["u_sign"])
    singular, plural = UNITS[m["u_unit"]]
    unit = singular if amount == "one" else plural
    return [(0, len(m[0]), f"{amount} {unit}")]


def _fraction(m: re.Match) -> list[Replacement]:
    a, b = int(m["f_a"]), int(m["f_b"])
    if (a, b) in FRACTIONS:
        words = FRACTIONS[(a, b)]
    elif b == 0 or b > 100:
        words = f"{cardinal(m['f_a'])} slash {cardinal(m['f_b'])}"
    else:
        denominator = "half" if b == 2 else ("quarter" if b == 4 else ordinal(m["f_b"]))
        if a != 1:
            denominator = plural_noun(denominator) if denominator != "half" else "halves"
        words = f"{cardinal(m['f_a'])} {denominator}"
    return [(0, len(m[0]), words)]


def _number(m: re.Match) -> list[Replacement]:
    integer, fraction, sign = m["n_int"], m["n_frac"], m["n_sign"]
    if not fraction and not sign and len(integer) == 4 and 1100 <= int(integer) <= 2099:
        return [(0, len(m[0]), year(integer))]
    if not fraction and len(integer) > 1 and integer.startswith("0"):  # "007", a code: digit by digit
        return [(0, len(m[0]), digit_by_digit(integer))]
    return [(0, len(m[0]), _number_words(integer, fraction, sign))]


def _spelled(text: str) -> str:
    """A URL's or address's characters as read: "." dot, "/" slash, "@" at; runs of letters
    as words, "www" as letters, digits one by one."""
    symbols = {".": "dot", "/": "slash", "@": "at", "-": "dash", "_": "underscore", ":": "colon",
               "?": "question mark", "=": "equals", "&": "and", "#": "hash", "+": "plus", "%": "percent",
               "~": "tilde"}  # fmt: skip
    words = []
    for token in re.findall(r"[A-Za-z]+|\d+|\S", text):
        if token.lower() == "www":
            words.append("w w w")
        elif token.isdigit():
            words.append(digit_by_digit(token) if len(token) > 2 else cardinal(token))
        elif token in symbols:
            words.append(symbols[token])
        elif token.isalpha():
            words.append(token)
    return " ".join(words)


def _url(m: re.Match) -> list[Replacement]:
    text = re.sub(r"^https?://", "", m[0])
    return [(0, len(m[0]), _spelled(text.rstrip("/")))]


def _phone(m: re.Match) -> list[Replacement]:
    groups = re.findall(r"\d+", m[0])
    words = ", ".join(digit_by_digit(g) for g in groups)
    if m[0].startswith("+"):
        words = f"plus {words}"
    return [(0, len(m[0]), words)]


def _abbreviation(m: re.Match, before: str) -> list[Replacement]:
    word = m["a_w"]
    key = word.lower()
    following = (m["a_next"] or "").strip()
    next_capital = bool(following) and following[0].isupper()
    previous = before.rstrip().rsplit(None, 1)[-1] if before.strip() else ""
    previous_capital = bool(previous) and previous[0].isupper()
    end = m.end("a_w") + 1 - m.start()
    sentence_end = not following or (next_capital and m["a_next"] and "\n" in m["a_next"])
    if key == "dr":
        if next_capital or not previous_capital:
            return [(0, end, "Doctor")]
        return [(0, end, "Drive" + ("." if sentence_end or next_capital else ""))]
    if key == "st":
        if next_capital and not previous_capital:
            return [(0, end, "Saint")]
        return [(0, end, "Street" + ("." if sentence_end or next_capital else ""))]
    if key == "no":
        if following[:1].isdigit():
            return [(0, end, "number")]
        return []
    if key in TITLES:
        return [(0, end, TITLES[key])]
    words = TRAILING[key]
    keeps_period = sentence_end or (next_capital and key not in INLINE)
    return [(0, end, words + ("." if keeps_period else ""))]


RULES: dict[str, Callable[[re.Match], list[Replacement]]] = {
    "email": lambda m: [(0, len(m[0]), _spelled(m[0]))],
    "url": _url,
    "phone": _phone,
    "mdy": lambda m: _date(m, "mdy"),
    "dmy": lambda m: _date(m, "dmy"),
    "iso": lambda m: _numeric_date(m["iso_y"], m["iso_m"], m["iso_d"], len(m[0])),
    "slash": lambda m: _numeric_date(m["sl_y"], m["sl_m"], m["sl_d"], len(m[0])),
    "time": _time,
    "hour": _hour,
    "money": _money,
    "percent": lambda m: [(0, len(m[0]), f"{_number_words(m['p_int'], m['p_frac'], m['p_sign'])} percent")],
    "ordinal": lambda m: [(0, len(m[0]), ordinal(m["o_n"]))],
    "decade": lambda m: [(0, len(m[0]), decade(m["dc_n"]))],
    "measure": _measure,
    "fraction": _fraction,
    "range": lambda m: [(0, len(m[0]), f"{cardinal(m['r_a'])} to {cardinal(m['r_b'])}")],
    "number": _number,
    "hash": lambda m: [(0, 1, "number ")],
    "amp": lambda m: [(0, 1, "and")],
}


def replacements(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, spoken)`` in ``text`` for each stretch read otherwise than written,
    in order, not overlapping."""
    out: list[tuple[int, int, str]] = []
    for match in PATTERN.finditer(text):
        kind = match.lastgroup
        assert kind is not None
        before = text[max(0, match.start() - 40) : match.start()]
        if kind == "abbr":
            found = _abbreviation(match, before)
        else:
            found = RULES[kind](match)
        if kind == "dmy" and re.search(r"\bthe\s+$", before, re.IGNORECASE):  # "the 7th of May": one "the"
            found = [(a, b, spoken.removeprefix("the ")) for a, b, spoken in found]
        out += [(match.start() + a, match.start() + b, spoken) for a, b, spoken in found]
    return out
