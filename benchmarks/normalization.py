"""How well text normalisation (higgs_worker/text/normalize) reads, and what it costs.

    python benchmarks/normalization.py            # a few seconds, CPU
    python benchmarks/normalization.py --misses   # also list every case read wrongly

A table of cases written by hand (input, the reading a person expects), per category:
numbers, ordinals, years, dates, times, money, percentages, units, abbreviations, URLs and
e-mail addresses, phone numbers, Chinese numbers, and text that must pass through untouched
(tags, plain words). Printed: the share read exactly as expected per category and overall;
then the cost in ms per 1,000 characters of the whole table's text (repeated), against the
baseline of the same text passed through unchanged (``Normalized.unchanged``) in the same run,
its chunking (``split_text``, for scale), and the English and Chinese cases apart.

The cases were written by the author of the rules, so the shares say what the rules cover,
not how they fare on text nobody has looked at.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from higgs_worker.text.chunking import split_text  # noqa: E402
from higgs_worker.text.normalize import Normalized, normalize  # noqa: E402

CASES: dict[str, list[tuple[str, str]]] = {
    "numbers": [
        ("I have 3 cats.", "I have three cats."),
        ("There were 12 of them.", "There were twelve of them."),
        ("It took 45 minutes", "It took forty-five minutes"),
        ("about 100 people", "about one hundred people"),
        ("a 101 dalmatians", "a one hundred one dalmatians"),
        ("He sold 1,234 copies.", "He sold one thousand two hundred thirty-four copies."),
        ("a population of 1,000,000", "a population of one million"),
        ("Pi is 3.14.", "Pi is three point one four."),
        ("It dropped to -5 overnight.", "It dropped to minus five overnight."),
        ("a score of 0", "a score of zero"),
        ("0.5 is a half", "zero point five is a half"),
        ("agent 007", "agent zero zero seven"),
        ("Add 1/2 cup of milk.", "Add one half cup of milk."),
        ("3/4 of the way", "three quarters of the way"),
        ("2/3 of voters", "two thirds of voters"),
        ("pages 10-20", "pages ten to twenty"),
        ("the #1 song", "the number one song"),
        ("No. 5 is mine", "number five is mine"),
        ("He is 42 years old.", "He is forty-two years old."),
        ("999 red balloons", "nine hundred ninety-nine red balloons"),
        ("raised 250,000 for charity", "raised two hundred fifty thousand for charity"),
        ("17 and 18", "seventeen and eighteen"),
        ("a 3 to 2 win", "a three to two win"),
        ("version 2.5", "version two point five"),
    ],
    "ordinals": [
        ("She came 3rd.", "She came third."),
        ("the 1st time", "the first time"),
        ("his 2nd try", "his second try"),
        ("the 21st century", "the twenty-first century"),
        ("on the 100th day", "on the one hundredth day"),
        ("my 11th birthday", "my eleventh birthday"),
        ("the 12th man", "the twelfth man"),
        ("the 13th floor", "the thirteenth floor"),
        ("a 22nd attempt", "a twenty-second attempt"),
        ("the 33rd state", "the thirty-third state"),
        ("her 50th year", "her fiftieth year"),
        ("the 4th of July", "the fourth of July"),
        ("in 5th place", "in fifth place"),
        ("the 101st airborne", "the one hundred first airborne"),
        ("the 90th minute", "the ninetieth minute"),
        ("the 8th wonder", "the eighth wonder"),
    ],
    "years": [
        ("In 1969 we flew.", "In nineteen sixty-nine we flew."),
        ("Born in 2005.", "Born in two thousand five."),
        ("the year 2000", "the year two thousand"),
        ("by 2026", "by twenty twenty-six"),
        ("since 1900", "since nineteen hundred"),
        ("in 1805", "in eighteen oh five"),
        ("the 1990s", "the nineteen nineties"),
        ("the 80s", "the eighties"),
        ("in 2010", "in twenty ten"),
        ("from 1492", "from fourteen ninety-two"),
        ("in 1776,", "in seventeen seventy-six,"),
        ("the 2020s", "the twenty twenties"),
        ("back in 1999.", "back in nineteen ninety-nine."),
        ("the 1800s", "the eighteen hundreds"),
        ("until 2050", "until twenty fifty"),
        ("the summer of 1984", "the summer of nineteen eighty-four"),
    ],
    "dates": [
        ("Dec. 7, 2026", "December seventh, twenty twenty-six"),
        ("on January 1, 2000", "on January first, two thousand"),
        ("March 15", "March fifteenth"),
        ("Sept. 11, 2001", "September eleventh, two thousand one"),
        ("Feb 29, 2024", "February twenty-ninth, twenty twenty-four"),
        ("on Oct. 3rd", "on October third"),
        ("the 7th of December 2026", "the seventh of December twenty twenty-six"),
        ("7 December 2026", "the seventh of December twenty twenty-six"),
        ("On 2026-12-07 it rained.", "On December seventh, twenty twenty-six it rained."),
        ("due 12/25/2026", "due December twenty-fifth, twenty twenty-six"),
        ("July 4, 1776", "July fourth, seventeen seventy-six"),
        ("Aug. 6 and Aug. 9", "August sixth and August ninth"),
        ("Nov 22, 1963", "November twenty-second, nineteen sixty-three"),
        ("1 May 2025", "the first of May twenty twenty-five"),
        ("on 2000-01-01", "on January first, two thousand"),
        ("Apr. 30, 1975", "April thirtieth, nineteen seventy-five"),
        ("due 1/5/2027", "due January fifth, twenty twenty-seven"),
        ("June 21st, 2026", "June twenty-first, twenty twenty-six"),
    ],
    "times": [
        ("See you at 10:30 pm.", "See you at ten thirty p m."),
        ("at 7:05 am", "at seven oh five a m"),
        ("at 5pm", "at five p m"),
        ("by 9 a.m.", "by nine a m."),
        ("at 12:00", "at twelve o'clock"),
        ("at 3:45", "at three forty-five"),
        ("the 11:15 train", "the eleven fifteen train"),
        ("at 6:00 PM", "at six p m"),
        ("from 9:00 to 17:00", "from nine o'clock to seventeen hundred"),
        ("at 23:30", "at twenty-three thirty"),
        ("at 1:01:30", "at one oh one and thirty seconds"),
        ("wake at 6 AM", "wake at six a m"),
        ("at 4:20 p.m.", "at four twenty p m."),
        ("at 10:10", "at ten ten"),
        ("lunch at 12:30pm", "lunch at twelve thirty p m"),
        ("at 8:09", "at eight oh nine"),
    ],
    "money": [
        ("It costs $3.50.", "It costs three dollars and fifty cents."),
        ("$1", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("$1.01", "one dollar and one cent"),
        ("$20", "twenty dollars"),
        ("$5 million", "five million dollars"),
        ("$1.5 billion", "one point five billion dollars"),
        ("€20", "twenty euros"),
        ("£5.99", "five pounds and ninety-nine pence"),
        ("¥100", "one hundred yen"),
        ("$1,250", "one thousand two hundred fifty dollars"),
        ("$10k", "ten thousand dollars"),
        ("a $3 coffee", "a three dollars coffee"),
        ("€2.50", "two euros and fifty cents"),
        ("$100.00", "one hundred dollars"),
        ("-$5", "minus five dollars"),
        ("£1", "one pound"),
        ("$2.5", "two dollars and fifty cents"),
    ],
    "percentages": [
        ("Up 25% this year.", "Up twenty-five percent this year."),
        ("100%", "one hundred percent"),
        ("0.5%", "zero point five percent"),
        ("a 3.2% rise", "a three point two percent rise"),
        ("-2%", "minus two percent"),
        ("50 %", "fifty percent"),
        ("99.9% pure", "ninety-nine point nine percent pure"),
        ("1%", "one percent"),
        ("a 12% tip", "a twelve percent tip"),
        ("+4%", "plus four percent"),
        ("70% of people", "seventy percent of people"),
        ("from 10% to 20%", "from ten percent to twenty percent"),
    ],
    "units": [
        ("It is 5 km away.", "It is five kilometers away."),
        ("It weighs 12 kg.", "It weighs twelve kilograms."),
        ("1 km", "one kilometer"),
        ("72°F outside", "seventy-two degrees Fahrenheit outside"),
        ("-3°C tonight", "minus three degrees Celsius tonight"),
        ("a 90° turn", "a ninety degrees turn"),
        ("60 mph", "sixty miles per hour"),
        ("100 km/h", "one hundred kilometers per hour"),
        ("5 ft tall", "five feet tall"),
        ("2.5 kg", "two point five kilograms"),
        ("500 mg", "five hundred milligrams"),
        ("16 GB of RAM", "sixteen gigabytes of RAM"),
        ("3 GHz", "three gigahertz"),
        ("250 ml", "two hundred fifty milliliters"),
        ("10 min", "ten minutes"),
        ("30 s", "thirty seconds"),
        ("2 hrs", "two hours"),
        ("100 W bulb", "one hundred watts bulb"),
        ("12 V battery", "twelve volts battery"),
        ("200 ms", "two hundred milliseconds"),
        ("5km", "five kilometers"),
        ("1 lb", "one pound"),
        ("8 oz", "eight ounces"),
        ("3 cm", "three centimeters"),
    ],
    "abbreviations": [
        ("Dr. Smith", "Doctor Smith"),
        ("on Main St.", "on Main Street."),
        ("St. Louis", "Saint Louis"),
        ("Mr. and Mrs. Jones", "Mister and Missus Jones"),
        ("Ms. Lee", "Miz Lee"),
        ("Prof. Adams", "Professor Adams"),
        ("Martin Luther King Jr.", "Martin Luther King Junior."),
        ("salt, pepper, etc.", "salt, pepper, et cetera."),
        ("fruit, e.g. apples", "fruit, for example apples"),
        ("one thing, i.e. this", "one thing, that is this"),
        ("Ali vs. Frazier", "Ali versus Frazier"),
        ("approx. ten", "approximately ten"),
        ("Acme Inc.", "Acme Incorporated."),
        ("Mt. Everest", "Mount Everest"),
        ("5th Ave.", "fifth Avenue."),
        ("cats & dogs", "cats and dogs"),
        ("Capt. Hook", "Captain Hook"),
        ("Elm Dr. is closed", "Elm Drive is closed"),
        ("see Fig. 3", "see figure three"),
        ("Sgt. Pepper", "Sergeant Pepper"),
    ],
    "urls and e-mail": [
        ("Visit www.example.com now.", "Visit w w w dot example dot com now."),
        ("example.com", "example dot com"),
        ("https://example.org/docs", "example dot org slash docs"),
        ("Mail john.doe@example.com", "Mail john dot doe at example dot com"),
        ("info@acme.io", "info at acme dot io"),
        ("see github.com/boson-ai", "see github dot com slash boson dash ai"),
        ("http://www.bbc.co.uk.", "w w w dot bbc dot co dot uk."),
        ("go to openai.com.", "go to openai dot com."),
        ("write to a_b@mail.net", "write to a underscore b at mail dot net"),
        ("www.python.org/downloads", "w w w dot python dot org slash downloads"),
        ("sales@shop.co.uk", "sales at shop dot co dot uk"),
        ("huggingface.co/docs", "huggingface dot co slash docs"),
    ],
    "phone numbers": [
        ("Call 555-123-4567.", "Call five five five, one two three, four five six seven."),
        ("(212) 555-0100", "two one two, five five five, zero one zero zero"),
        ("+1 415 555 2671", "plus one, four one five, five five five, two six seven one"),
        ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
        ("800.555.1212", "eight zero zero, five five five, one two one two"),
        ("call 212-555-7890 now", "call two one two, five five five, seven eight nine zero now"),
        ("+33 1 42 68 53 00", "plus three three, one, four two, six eight, five three, zero zero"),
        ("+1-800-555-0199", "plus one, eight zero zero, five five five, zero one nine nine"),
        ("tel 303 555 0147", "tel three zero three, five five five, zero one four seven"),
        ("+49 30 901820", "plus four nine, three zero, nine zero one eight two zero"),
    ],
    "chinese numbers": [
        ("价格是3.5元", "价格是三点五元"),
        ("2026年12月7日", "二零二六年十二月七日"),
        ("今天气温-5度", "今天气温负五度"),
        ("我有1234个苹果", "我有一千二百三十四个苹果"),
        ("增长了25%", "增长了百分之二十五"),
        ("电话13812345678", "电话幺三八幺二三四五六七八"),
        ("下午3:30", "下午三点三十分"),
        ("第3名", "第三名"),
        ("1/3的人", "三分之一的人"),
        ("他1998年出生", "他一九九八年出生"),
        ("共有100人", "共有一百人"),
        ("距离5公里", "距离五公里"),
        ("第21届", "第二十一届"),
        ("一共20元", "一共二十元"),
        ("3个人", "三个人"),
        ("有10000本书", "有一万本书"),
    ],
    "untouched": [
        ("[SPEAKER0] Hello there.", "[SPEAKER0] Hello there."),
        ("[SPEAKER1] How are you?", "[SPEAKER1] How are you?"),
        ("Well [laugh] that is funny.", "Well [laugh] that is funny."),
        ("<|scene_desc_start|>", "<|scene_desc_start|>"),
        ("[music start] la la", "[music start] la la"),
        ("A plain sentence.", "A plain sentence."),
        ("Mr Brown was here", "Mr Brown was here"),
        ("The end.", "The end."),
        ("no digits, no symbols", "no digits, no symbols"),
        ("I am here; are you?", "I am here; are you?"),
        ("你好，世界。", "你好，世界。"),
        ("[SPEAKER12] Fine.", "[SPEAKER12] Fine."),
        ("He said: go.", "He said: go."),
        ("May I come in?", "May I come in?"),
        ("a-b testing", "a-b testing"),
        ("It's fine, isn't it?", "It's fine, isn't it?"),
    ],
}


def accuracy(show_misses: bool) -> tuple[int, int]:
    print(f"{'category':<18} {'cases':>5} {'read correctly':>15}")
    total = right = 0
    misses = []
    for category, cases in CASES.items():
        good = 0
        for written, expected in cases:
            spoken = normalize(written).spoken
            if spoken == expected:
                good += 1
            else:
                misses.append((category, written, expected, spoken))
        total += len(cases)
        right += good
        print(f"{category:<18} {len(cases):>5} {good / len(cases):>14.1%}")
    print(f"{'overall':<18} {total:>5} {right / total:>14.1%}")
    if show_misses:
        for category, written, expected, spoken in misses:
            print(f"  miss [{category}] {written!r}: expected {expected!r}, got {spoken!r}")
    return right, total


def cost(repeats: int = 5) -> None:
    text = " ".join(written for cases in CASES.values() for written, _ in cases)
    text = (text + " ") * 4  # about 10,000 characters
    normalize(text)  # warm: the Chinese grammar's first load, the number caches
    timings = {}
    english = " ".join(w for c, cases in CASES.items() if c != "chinese numbers" for w, _ in cases)
    chinese = " ".join(w for w, _ in CASES["chinese numbers"])
    english, chinese = (english + " ") * 4, (chinese + " ") * 40  # each several thousand characters
    runs = (
        ("baseline (unchanged)", Normalized.unchanged),
        ("chunking (for scale)", lambda t: split_text(t, "auto", 100)),
        ("normalize", normalize),
        ("normalize, English part", lambda t: normalize(english)),
        ("normalize, Chinese part", lambda t: normalize(chinese)),
    )
    sizes = {"normalize, English part": len(english), "normalize, Chinese part": len(chinese)}
    for name, run in runs:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(text)
            samples.append(time.perf_counter() - start)
        timings[name] = statistics.median(samples) * 1000 / sizes.get(name, len(text)) * 1000
    print(f"\ncost on {len(text):,} characters (median of {repeats}):")
    for name, ms in timings.items():
        print(f"  {name:<22} {ms:8.3f} ms per 1,000 characters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list the cases read wrongly")
    args = parser.parse_args()
    accuracy(args.misses)
    cost()


if __name__ == "__main__":
    main()
