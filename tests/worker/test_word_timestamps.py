"""Word timestamps on whole jobs (tiny model, CPU): the plumbing from the job input to
``segments[].words``, ``timings.align_s`` and word-cued subtitles.

The tiny model's random weights make noise, not speech: forced alignment of noise either
finds some path (times that mean nothing) or fails, so the noise tests assert structure
(every word, in order, inside its segment and the file; the approximate and fallback
marking; cues on word boundaries), never accuracy. Where a test needs speech, it replaces
the engine's decoder with espeak-ng speech of each chunk's text, whose word times are known
(``devtools.spoken_words``), and says so; the rest of the job (generation steps, joins,
pauses, resampling, alignment, placement) is the real path.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import webvtt

from higgs_worker.audio.align.words import split_words
from higgs_worker.contract.output import JobOutput
from tests.support.spoken_chunks import speak_chunks, true_times

DIALOGUE = "[SPEAKER0] I can't believe you did that. [SPEAKER1] Oh, come on! [SPEAKER0] Really."


def run(worker, **job_input) -> dict:
    job = {"seed": 5, "max_new_tokens": 20, "word_timestamps": True, **job_input}
    out = worker.run({"id": "words", "input": job}).as_output()
    assert "error" not in out, out
    JobOutput.model_validate(out)
    return out


def assert_words_in_order(out: dict) -> list[dict]:
    """Every segment's words are its text's words, in order, inside the segment and the
    file; a segment that could not be aligned says why and marks every word approximate."""
    samples = round(out["duration_s"] * out["sample_rate"])
    words = []
    for segment in out["segments"]:
        assert [w["word"] for w in segment["words"]] == split_words(segment["text"])
        for word in segment["words"]:
            assert segment["start_sample"] <= word["start_sample"] <= word["end_sample"] <= segment["end_sample"]
            assert word["end_sample"] <= samples + 1
            assert word["start_s"] == round(word["start_sample"] / out["sample_rate"], 6)
        if "alignment_error" in segment:
            assert segment["alignment_error"] and all(w.get("approximate") for w in segment["words"])
        words += segment["words"]
    starts = [w["start_sample"] for w in words]
    assert starts == sorted(starts)
    return words


def test_every_word_of_a_job_gets_times_in_order(make_worker):
    out = run(make_worker(), text="Hello there, how are you today? I am fine, thanks.", sample_rate=44100)
    words = assert_words_in_order(out)
    assert len(words) == 10
    assert out["timings"]["align_s"] > 0


def test_without_the_field_nothing_changes(make_worker):
    out = (
        make_worker()
        .run({"id": "plain", "input": {"text": "Hello there.", "seed": 5, "max_new_tokens": 20}})
        .as_output()
    )
    assert "words" not in out["segments"][0] and out["timings"]["align_s"] == 0


def test_dialogue_chunk_turns_split_at_words_pauses_and_subtitles(make_worker):
    """One chunk holds three turns (chunk_method none): with word times the turns' bounds
    come from the alignment (not approximate) or, when it failed, stay shared by characters
    (approximate, with the reason); subtitle cues start and end on word boundaries."""
    out = run(make_worker(), text=DIALOGUE, chunk_method="none", subtitles="vtt", pause_s=0.2)
    segments = out["segments"]
    assert [s["speaker"] for s in segments] == ["SPEAKER0", "SPEAKER1", "SPEAKER0"]
    words = assert_words_in_order(out)
    for segment in segments:
        assert segment.get("approximate", False) == ("alignment_error" in segment)
    assert [a["end_sample"] for a in segments[:-1]] == [b["start_sample"] for b in segments[1:]]
    rate = out["sample_rate"]
    starts = {round(w["start_sample"] * 1000 / rate) for w in words}
    ends = {round(w["end_sample"] * 1000 / rate) for w in words}
    cues = webvtt.from_string(out["subtitles"]["text"]).captions
    assert cues and all(milliseconds(c.start) in starts and milliseconds(c.end) in ends for c in cues)
    assert " ".join(c.text.split(">", 1)[-1] for c in cues).split() == [w["word"] for w in words]


def milliseconds(stamp: str) -> int:
    hours, minutes, seconds = stamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def test_text_without_an_aligner_gets_estimates_that_say_so(make_worker):
    """Chinese has no aligner here yet: the job succeeds, each character is a word with
    times shared out by characters, marked approximate, and the segment says why."""
    out = run(make_worker(), text="你好，世界。")
    (segment,) = out["segments"]
    assert [w["word"] for w in segment["words"]] == ["你", "好，", "世", "界。"]
    assert "Chinese" in segment["alignment_error"]
    assert_words_in_order(out)


# -- with speech: the decoder replaced by espeak-ng speech of each chunk's text ------------

SPEECH = "Narrators ask for word times. A subtitle starts when its first word does. RunPod served 42 models."


@pytest.mark.parametrize("rate", [24000, 44100])
def test_word_times_of_speech_match_where_the_words_are(make_worker, monkeypatch, rate):
    """Three chunks of speech joined with pauses and resampled: every word lands within
    0.15 s of where it truly is in the file (the benchmark gives the real distribution);
    dictionary words are not approximate, RunPod and 42 are (guessed pronunciations)."""
    worker = make_worker()
    spoken = speak_chunks(worker, monkeypatch, SPEECH, "auto", 8)
    # read as written (normalize false), as the stand-in speaks it; tests/text/test_normalize.py
    # has the same with "42" read "forty-two"
    out = run(worker, text=SPEECH, chunk_max_words=8, pause_s=0.3, sample_rate=rate, subtitles="srt", normalize=False)
    words = assert_words_in_order(out)
    assert len(out["segments"]) == 3 and not any("alignment_error" in s for s in out["segments"])
    truth = true_times(spoken, 0.3, rate)
    assert [w["word"] for w in words] == [t[0] for t in truth]
    for word, (_, start, end) in zip(words, truth, strict=True):
        assert abs(word["start_s"] - start) < 0.15 and abs(word["end_s"] - end) < 0.15, (word, start, end)
    assert [w["word"] for w in words if w.get("approximate")] == ["RunPod", "42"]
    first_cue = out["subtitles"]["text"].split("\n")[1]
    assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", first_cue)
    assert first_cue.startswith(f"00:00:00,{round(words[0]['start_s'] * 1000):03d}")


def test_turns_in_one_chunk_are_cut_where_the_next_speaker_starts(make_worker, monkeypatch):
    """A dialogue generated as one chunk: its turns' bounds were shared by characters
    (approximate); aligned, each turn starts at its first word, truly placed."""
    worker = make_worker()
    spoken = speak_chunks(worker, monkeypatch, DIALOGUE, "none", 100)
    out = run(worker, text=DIALOGUE, chunk_method="none")
    truth = true_times(spoken, 0.0, 24000)
    segments = out["segments"]
    assert not any(s.get("approximate") or "alignment_error" in s for s in segments)
    first_words = [0, 6, 9]  # "I", "Oh,", "Really."
    for segment, index in zip(segments[1:], first_words[1:], strict=True):
        assert truth[index - 1][2] - 0.1 < segment["start_s"] < truth[index][1] + 0.1
    assert_words_in_order(out)
    np.testing.assert_allclose(
        [s["words"][0]["start_s"] for s in segments], [truth[i][1] for i in first_words], atol=0.15
    )
