"""Subtitle cues and files (higgs_worker/audio/subtitles.py), read back with the srt and webvtt-py parsers."""

from __future__ import annotations

import html
import io

import srt
import webvtt

from higgs_worker.audio.segments import Segment
from higgs_worker.audio.subtitles import MAX_CUE_CHARS, MAX_CUE_S, build_cues, render

RATE = 24000
LONG = (
    "The harbour was quiet before dawn, and the boats lay still on the water. "
    "A gull called once; then another answered from the breakwater, far away. "
    "Nobody on the quay moved until the bell rang."
)


def seg(text: str, start_s: float, end_s: float, speaker: str | None = None) -> Segment:
    return Segment(text, speaker, round(start_s * RATE), round(end_s * RATE))


def words(text: str) -> list[str]:
    return text.replace("\n", " ").split()


def test_short_segments_become_one_cue_each_with_exact_times():
    cues = build_cues([seg("Hello there.", 0, 1.25), seg("How are you?", 1.75, 3.0)], RATE)
    assert [(c.start_ms, c.end_ms, c.text) for c in cues] == [(0, 1250, "Hello there."), (1750, 3000, "How are you?")]


def test_long_segment_is_split_at_sentences_and_clauses_by_characters():
    cues = build_cues([seg(LONG, 2.0, 32.0)], RATE)
    assert len(cues) > 3
    assert cues[0].start_ms == 2000 and cues[-1].end_ms == 32000
    for cue, following in zip(cues, cues[1:], strict=False):
        assert cue.end_ms == following.start_ms  # contiguous inside one segment
    for cue in cues:
        assert (cue.end_ms - cue.start_ms) / 1000 <= MAX_CUE_S + 0.001 and len(cue.text) <= MAX_CUE_CHARS
    assert words(" ".join(c.text for c in cues)) == words(LONG)
    # times follow the characters: the cue with twice the characters lasts about twice as long
    per_char = [(c.end_ms - c.start_ms) / len(c.text) for c in cues]
    assert max(per_char) - min(per_char) < 30  # ms per character, up to rounding and spaces


def test_cuts_fall_at_sentence_then_clause_ends():
    sentences = "The tide came in slowly. The boats rose with it. Then the wind turned west."
    cues = build_cues([seg(sentences, 0, 12.0)], RATE)  # each sentence about 4 s: one cue each
    assert [c.text for c in cues] == [
        "The tide came in slowly.",
        "The boats rose with it.",
        "Then the wind turned west.",
    ]
    clauses = "When the tide came in, the boats rose slowly, and the wind turned west at last."
    cues = build_cues([seg(clauses, 0, 12.0)], RATE)
    assert [c.text for c in cues] == [
        "When the tide came in,",
        "the boats rose slowly,",
        "and the wind turned west at last.",
    ]


def test_srt_parses_in_order_with_speakers():
    segments = [
        seg("I can't believe you did that.", 0, 2.5, "SPEAKER0"),
        seg("Oh, come on!", 2.9, 4.0, "SPEAKER1"),
        seg(LONG, 4.0, 30.0, "SPEAKER0"),
    ]
    parsed = list(srt.parse(render("srt", segments, RATE)))
    assert [p.index for p in parsed] == list(range(1, len(parsed) + 1))
    starts = [p.start.total_seconds() for p in parsed]
    assert starts == sorted(starts) and all(p.end > p.start for p in parsed)
    assert all(a.end <= b.start for a, b in zip(parsed, parsed[1:], strict=False))
    assert parsed[0].content.startswith("[SPEAKER0] ") and parsed[1].content.startswith("[SPEAKER1] ")
    spoken = [w for p in parsed for w in words(p.content) if not w.startswith("[SPEAKER")]
    assert spoken == words(" ".join(s.text for s in segments))
    assert parsed[-1].end.total_seconds() == 30.0


def test_vtt_parses_with_voice_spans_and_escapes():
    segments = [seg("Less <than> & more.", 0, 1.5, "SPEAKER0"), seg(LONG, 2.0, 30.0)]
    text = render("vtt", segments, RATE)
    assert text.startswith("WEBVTT\n\n") and "&lt;than&gt; &amp;" in text
    captions = webvtt.from_buffer(io.StringIO(text)).captions
    assert captions[0].voice == "SPEAKER0" and html.unescape(captions[0].text) == "Less <than> & more."
    assert captions[1].voice is None
    assert captions[0].start == "00:00:00.000" and captions[0].end == "00:00:01.500"
    assert captions[-1].end == "00:00:30.000"
    assert [w for c in captions for w in words(html.unescape(c.text))] == words(" ".join(s.text for s in segments))


def test_cue_that_rounds_to_nothing_hands_its_text_on():
    segments = [seg("Gone.", 1.0, 1.0), seg("Kept.", 1.0, 2.0)]
    cues = build_cues(segments, RATE)
    assert [(c.start_ms, c.end_ms, c.text) for c in cues] == [(1000, 2000, "Gone. Kept.")]


def with_words(text: str, start_s: float, seconds_per_word: float, gap_s: float = 0.1) -> Segment:
    """A segment whose words are timed one after another with a gap between them."""
    from higgs_worker.audio.segments import Word

    timed, at = [], start_s
    for word in text.split():
        timed.append(Word(word, round(at * RATE), round((at + seconds_per_word) * RATE)))
        at += seconds_per_word + gap_s
    return Segment(text, "SPEAKER1", timed[0].start, timed[-1].end, words=tuple(timed))


def test_with_word_times_cues_start_and_end_on_words():
    segment = with_words(LONG, 2.0, 0.4)
    cues = build_cues([segment], RATE)
    assert len(cues) > 3 and " ".join(c.text for c in cues) == " ".join(LONG.split())
    starts = {round(w.start * 1000 / RATE) for w in segment.words}
    ends = {round(w.end * 1000 / RATE) for w in segment.words}
    for cue in cues:
        assert cue.start_ms in starts and cue.end_ms in ends and cue.speaker == "SPEAKER1"
        assert len(cue.text) <= MAX_CUE_CHARS and (cue.end_ms - cue.start_ms) / 1000 <= MAX_CUE_S
    assert cues[0].text.endswith("dawn,") or cues[0].text.endswith(".")  # cut at a clause or sentence
    for cue, following in zip(cues, cues[1:], strict=False):
        assert following.start_ms > cue.end_ms  # the pause between two words lies between the cues


def test_a_cue_never_outlasts_its_words_aligned_time():
    """Ten words spoken slowly (1 s each) never make one cue of ten seconds."""
    cues = build_cues([with_words("one two three four five six seven eight nine ten", 0.0, 1.0)], RATE)
    assert len(cues) > 1 and all((c.end_ms - c.start_ms) / 1000 <= MAX_CUE_S for c in cues)
