"""Text normalisation (higgs_worker/text/normalize): what each category reads, the map from
the spoken form back to the written text, and a whole job on the tiny model (CPU): segments'
``spoken``, written words in word timestamps and subtitles, ``normalize: false``, tags."""

from __future__ import annotations

import pytest

from higgs_worker.audio.align.placement import written_words
from higgs_worker.audio.align.words import split_words
from higgs_worker.audio.segments import Word, build
from higgs_worker.contract.output import JobOutput
from higgs_worker.devtools.spoken_words import espeak_available
from higgs_worker.text.chunking import split_text
from higgs_worker.text.normalize import Normalized, for_chunks, normalize
from higgs_worker.text.pace import spoken_units
from tests.support.spoken_chunks import speak_chunks, true_times


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("$3.50", "three dollars and fifty cents"),
        ("Dec. 7, 2026", "December seventh, twenty twenty-six"),
        ("10:30 pm", "ten thirty p m"),
        ("She came 3rd.", "She came third."),
        ("25%", "twenty-five percent"),
        ("5 km", "five kilometers"),
        ("Dr. Smith lives on Main St.", "Doctor Smith lives on Main Street."),
        ("www.example.com", "w w w dot example dot com"),
        ("mail a.b@example.org", "mail a dot b at example dot org"),
        ("Call 555-123-4567", "Call five five five, one two three, four five six seven"),
        ("In 1969, 1,234 people", "In nineteen sixty-nine, one thousand two hundred thirty-four people"),
        ("价格是3.5元", "价格是三点五元"),
    ],
)
def test_each_category_is_read_as_words(written, spoken):
    result = normalize(written)
    assert result.spoken == spoken
    assert result.written == written


def test_tags_and_plain_text_pass_through_untouched():
    text = "[SPEAKER0] Hello [laugh] there. <|scene_desc_start|> [SPEAKER1] Fine."
    result = normalize(text)
    assert result.spoken == text and not result.changed


def test_tags_are_kept_while_the_text_around_them_is_read():
    result = normalize("[SPEAKER0] It costs $5. [SPEAKER1] [laugh] At 5pm?")
    assert result.spoken == "[SPEAKER0] It costs five dollars. [SPEAKER1] [laugh] At five p m?"


def test_the_spoken_form_maps_back_to_the_written_text():
    result = normalize("I paid $3.50 on Dec. 7, 2026.")
    spoken = result.spoken
    start = spoken.index("dollars")
    assert result.written[slice(*result.written_range(start, start + 7))] == "$3.50"
    start = spoken.index("seventh")
    assert result.written[slice(*result.written_range(start, start + 7))] == "7"
    start = spoken.index("paid")
    assert result.written[slice(*result.written_range(start, start + 4))] == "paid"


def test_chunks_of_the_spoken_text_keep_their_written_text():
    text = normalize("[SPEAKER0] I paid $3.50 on Dec. 7, 2026.\n\n[SPEAKER1] See you at 10:30 pm.")
    chunks = split_text(text.spoken, "auto", 100)
    readings = for_chunks(text, chunks)
    assert [r.spoken for r in readings] == chunks
    assert [r.written for r in readings] == [
        "[SPEAKER0] I paid $3.50 on Dec. 7, 2026.",
        "[SPEAKER1] See you at 10:30 pm.",
    ]


def test_a_chunk_cut_inside_a_reading_still_maps_exactly():
    text = normalize("I paid $3.50 today and more words follow here.")
    chunks = split_text(text.spoken, "word", 4)  # "I paid three dollars" | "and fifty cents today" ...
    readings = for_chunks(text, chunks)
    assert [r.spoken for r in readings] == chunks
    assert "$3.50" in readings[0].written and "$3.50" not in readings[1].written


def test_pace_counts_the_spoken_form():
    text = "It costs $3.50."
    assert spoken_units(normalize(text).spoken) > spoken_units(text)


def test_segments_carry_the_written_text_and_the_spoken_one():
    reading = normalize("[SPEAKER0] It costs $3.50. [SPEAKER1] Fine.")
    segments = build([(reading, None)], [(0, 24000)], 24000, 24000)
    outputs = [s.as_output(24000) for s in segments]
    assert [(o["text"], o["spoken"]) for o in outputs] == [
        ("It costs $3.50.", "It costs three dollars and fifty cents."),
        ("Fine.", "Fine."),
    ]


def test_word_times_of_a_reading_go_back_to_the_written_word():
    reading = normalize("I paid $3.50 at 10:30 pm.")
    spoken = split_words(reading.spoken)  # I paid three dollars and fifty cents at ten thirty p m.
    timed = [Word(w, 100 * i, 100 * i + 80) for i, w in enumerate(spoken)]
    words = written_words(reading, timed)
    assert [w.text for w in words] == split_words(reading.written)
    money = words[2]
    assert (money.text, money.start, money.end, money.approximate) == ("$3.50", 200, 680, False)
    assert (words[4].text, words[4].start, words[4].end) == ("10:30", 800, 980)


def test_normalize_is_on_by_default_and_can_be_turned_off():
    from higgs_worker.contract.config import Settings
    from higgs_worker.contract.schema import parse_request
    from higgs_worker.synthesis import read_aloud

    settings = Settings.from_env({})
    assert read_aloud(parse_request({"text": "5 km"}, settings)).spoken == "five kilometers"
    assert read_aloud(parse_request({"text": "5 km", "normalize": False}, settings)).spoken == "5 km"


def test_unchanged_text_has_one_piece_read_as_written():
    assert Normalized.unchanged("abc").spoken == "abc"
    assert not normalize("Just words here.").changed


# whole jobs on the tiny model (CPU)


def _run(worker, **job_input) -> dict:
    out = worker.run({"id": "norm", "input": {"seed": 5, "max_new_tokens": 20, **job_input}}).as_output()
    assert "error" not in out, out
    JobOutput.model_validate(out)
    return out


def test_a_job_reads_the_spoken_form_and_reports_the_written_one(make_worker):
    out = _run(make_worker(), text="[SPEAKER0] It costs $3.50. [SPEAKER1] See you Dec. 7, 2026.")
    assert [(s["text"], s["spoken"], s["speaker"]) for s in out["segments"]] == [
        ("It costs $3.50.", "It costs three dollars and fifty cents.", "SPEAKER0"),
        ("See you Dec. 7, 2026.", "See you December seventh, twenty twenty-six.", "SPEAKER1"),
    ]


def test_normalize_false_reads_the_text_as_written(make_worker):
    out = _run(make_worker(), text="It costs $3.50.", normalize=False)
    assert [(s["text"], s["spoken"]) for s in out["segments"]] == [("It costs $3.50.", "It costs $3.50.")]


def test_word_timestamps_and_subtitles_show_the_written_words(make_worker):
    out = _run(
        make_worker(), text="It costs $3.50 at 10:30 pm.", word_timestamps=True, subtitles="vtt", delivery="base64"
    )
    segment = out["segments"][0]
    assert [w["word"] for w in segment["words"]] == ["It", "costs", "$3.50", "at", "10:30", "pm."]
    subtitles = out["subtitles"]["text"]
    assert "$3.50" in subtitles and "dollars" not in subtitles


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (scripts/setup-dev.sh installs it)")
def test_written_words_take_the_times_of_the_words_read_from_them(make_worker, monkeypatch):
    """Speech of the spoken form (espeak-ng stands in for the tiny engine's decoder, as in
    tests/worker/test_word_timestamps.py): each written word starts where the first word read from
    it starts and ends where the last one ends, within 0.15 s."""
    text = "RunPod served 42 models on Dec. 7, 2026."
    worker = make_worker()
    spoken = speak_chunks(worker, monkeypatch, normalize(text).spoken, "auto", 100)
    out = _run(worker, text=text, word_timestamps=True)
    truth = true_times(spoken, 0.0, 24000)
    assert [t[0] for t in truth] == "RunPod served forty-two models on December seventh, twenty twenty-six.".split()
    words = [w for s in out["segments"] for w in s["words"]]
    assert [w["word"] for w in words] == ["RunPod", "served", "42", "models", "on", "Dec.", "7,", "2026."]
    read_from = [[0], [1], [2], [3], [4], [5], [6], [7, 8]]  # spoken words of each written word
    for word, indices in zip(words, read_from, strict=True):
        start, end = truth[indices[0]][1], truth[indices[-1]][2]
        assert abs(word["start_s"] - start) < 0.15 and abs(word["end_s"] - end) < 0.15, (word, start, end)


def test_written_words_read_as_one_stretch_share_its_time():
    reading = normalize("Call 555 123 4567 now.")  # one reading for three written words
    spoken = split_words(reading.spoken)
    timed = [Word(w, 100 * i, 100 * i + 80) for i, w in enumerate(spoken)]
    words = written_words(reading, timed)
    assert [w.text for w in words] == ["Call", "555", "123", "4567", "now."]
    number = words[1:4]
    assert number[0].start == 100 and number[-1].end == timed[-2].end
    assert all(w.approximate for w in number) and not words[0].approximate and not words[-1].approximate
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_any_text_keeps_its_written_form_and_chunks_map_exactly():
    """Random mixes of words, digits, symbols, tags and Chinese (seeded): normalisation never
    raises, gives the text back as written, and every chunk's map reads exactly as the chunk."""
    import random

    rng = random.Random(29)
    parts = ["$", "3", ".", "50", "%", " ", "  ", "\n\n", "Dr.", "St.", "km", "pm", ":", "/", "-", "12", "2026",
             "[SPEAKER0]", "[SPEAKER1]", "[laugh]", "价格", "年", "元", "www.", "a@b.com", "#", "&", "Dec.", ",",
             "1st", "hello", "World.", "(", ")", "+44", "°F", "½", "<|x|>", "Mr.", "?", "00"]  # fmt: skip
    for _ in range(300):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 40)))
        result = normalize(text)
        assert result.written == text
        if not text.strip():
            continue
        for method, words in (("auto", 3), ("word", 2), ("speaker", 100), ("none", 100)):
            chunks = split_text(result.spoken, method, words)
            readings = for_chunks(result, chunks)
            assert [r.spoken for r in readings] == chunks, (text, method)
        segments = build([(r, None) for r in readings], [(0, 1000)] * len(readings), 24000, 24000)
        for segment in segments:
            if segment.reading is None:
                continue
            spoken = split_words(segment.spoken)
            timed = written_words(segment.reading, [Word(w, 10 * i, 10 * i + 5) for i, w in enumerate(spoken)])
            assert [w.text for w in timed] == split_words(segment.reading.written), text
            assert [w.start for w in timed] == sorted(w.start for w in timed), text
