"""Joining pieces, trimming, and segment positions (higgs_worker/audio/segments.py)."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_worker.audio import codecs as audio_codec
from higgs_worker.audio.segments import build, chunk_turns, join, output_position, split_span, trim_silence
from tests.conftest import tone


@pytest.mark.parametrize("target", [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000])
def test_output_position_is_the_resampled_length(target):
    rng = np.random.default_rng(target)
    for n in [1, 79, 80, 81, 960, 24000, *rng.integers(2, 40000, 12)]:
        resampled = audio_codec.resample(rng.standard_normal(int(n)).astype(np.float32), 24000, target)
        assert len(resampled) == output_position(int(n), 24000, target)


def test_join_without_pause_is_plain_concatenation():
    pieces = [tone(0.5), tone(0.25, freq=330), tone(0.1, freq=440)]
    joined, spans = join(pieces, 24000)
    assert np.array_equal(joined, np.concatenate(pieces))
    assert spans == [(0, 12000), (12000, 18000), (18000, 20400)]


def test_join_puts_exact_silence_between_pieces():
    pieces = [tone(0.5), tone(0.25)]
    joined, spans = join(pieces, 24000, pause_s=0.3)
    assert spans == [(0, 12000), (19200, 25200)]
    assert len(joined) == 25200 and not joined[12000:19200].any()
    assert np.array_equal(joined[19200:], pieces[1])


def test_trim_cuts_leading_and_trailing_silence_only():
    rate = 24000
    quiet = np.zeros(rate // 2, dtype=np.float32)
    speech = np.concatenate([tone(0.3), quiet, tone(0.2)])  # a pause inside stays
    trimmed = trim_silence(np.concatenate([quiet, speech, quiet]), rate)
    assert len(speech) <= len(trimmed) <= len(speech) + 2 * int(0.02 * rate)
    assert np.abs(trimmed).max() == pytest.approx(0.3, abs=1e-3)
    assert len(trim_silence(np.zeros(rate, dtype=np.float32), rate)) == 0
    constant_low = np.full(rate, 0.001, dtype=np.float32)  # quiet but not silent: kept
    assert len(trim_silence(constant_low, rate)) == rate


def test_join_with_trim_and_pause():
    rate = 24000
    pad = np.zeros(rate // 4, dtype=np.float32)
    pieces = [np.concatenate([pad, tone(0.5), pad]), np.concatenate([pad, tone(0.5)])]
    joined, spans = join(pieces, rate, pause_s=0.2, trim=True)
    (a0, a1), (b0, b1) = spans
    assert a0 == 0 and b0 - a1 == round(0.2 * rate) and b1 == len(joined)
    assert all(abs((end - start) - rate // 2) <= 2 * int(0.01 * rate) for start, end in spans)


def test_chunk_turns_reads_tags_and_carries_the_speaker():
    turns, last = chunk_turns("[SPEAKER0] Hi there. [SPEAKER1] Hello!", None)
    assert turns == [("SPEAKER0", "Hi there."), ("SPEAKER1", "Hello!")] and last == "SPEAKER1"
    turns, last = chunk_turns("and so it goes. [SPEAKER0] Yes.", "SPEAKER1")
    assert turns == [("SPEAKER1", "and so it goes."), ("SPEAKER0", "Yes.")] and last == "SPEAKER0"
    assert chunk_turns("Plain text.", None) == ([(None, "Plain text.")], None)


def test_split_span_by_weights_is_contiguous():
    spans = split_span(100, 1100, [1, 3, 0, 6])
    assert spans == [(100, 200), (200, 500), (500, 500), (500, 1100)]


def test_build_one_segment_per_chunk_at_the_output_rate():
    chunks = [("First sentence.", None), ("Second one.", None)]
    spans = [(0, 24000), (31200, 43200)]
    segments = build(chunks, spans, 24000, 44100)
    assert [(s.start, s.end) for s in segments] == [(0, 44100), (57330, 79380)]
    assert [s.text for s in segments] == ["First sentence.", "Second one."]
    assert not any(s.approximate for s in segments)
    out = segments[1].as_output(44100)
    assert out == {
        "text": "Second one.",
        "spoken": "Second one.",
        "speaker": None,
        "start_s": 1.3,
        "end_s": 1.8,
        "start_sample": 57330,
        "end_sample": 79380,
    }


def test_build_dialogue_turns_and_shared_chunks():
    chunks = [
        ("[SPEAKER0] Hello.", "SPEAKER0"),
        ("[SPEAKER1] Hi! [SPEAKER0] How are you?", "SPEAKER1"),
        ("Fine, thanks.", None),
    ]
    spans = [(0, 1000), (1000, 3000), (3000, 4000)]
    segments = build(chunks, spans, 24000, 24000)
    assert [(s.speaker, s.text) for s in segments] == [
        ("SPEAKER0", "Hello."),
        ("SPEAKER1", "Hi!"),
        ("SPEAKER0", "How are you?"),
        ("SPEAKER0", "Fine, thanks."),
    ]
    # the shared chunk is split by characters (3 : 12) and marked approximate
    assert [(s.start, s.end, s.approximate) for s in segments] == [
        (0, 1000, False),
        (1000, 1400, True),
        (1400, 3000, True),
        (3000, 4000, False),
    ]
    assert segments[1].as_output(24000)["approximate"] is True
