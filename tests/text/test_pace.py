"""A chunk's generation bound (higgs_worker/text/pace.py, synthesis.chunk_budget): spoken units,
the voice's pace from the job's own audio, and the bound against real (espeak-ng) speech."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from higgs_worker.text.pace import (
    EVIDENCE_SLACK,
    FASTEST_UNITS_PER_SECOND,
    PRIOR_SLACK,
    TYPICAL_UNITS_PER_SECOND,
    bound_seconds,
    pace_from,
    spoken_units,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_spoken_units_count_what_takes_time_to_say():
    assert spoken_units("abc") == 3
    assert spoken_units("Hi.") == 2 + 6  # a sentence end is a pause
    assert spoken_units("a, b") == 1 + 3 + 1
    assert spoken_units("In 1969") == 2 + 4 * 5  # digits are read as words
    assert spoken_units("[SPEAKER0] Hi.") == spoken_units("Hi.")  # tags are not spoken
    assert spoken_units("你好") == 8 and spoken_units("ひら") == 4
    assert spoken_units("   \n") == 0


def test_the_pace_is_the_slowest_the_voice_has_shown_with_enough_text():
    text = "The sun rises in the east and sets in the west."  # 43 units
    assert pace_from([]) is None
    assert pace_from([("Hi.", 50)]) is None  # too little text to tell a pace
    assert pace_from([("", 100)]) is None  # a reference without its transcript
    slow, fast = pace_from([(text, 200)]), pace_from([(text, 100)])
    assert pace_from([(text, 100), (text, 200)]) == slow == 2 * fast  # an early-ending chunk does not count down


def test_the_bound_follows_the_voice_and_stays_within_sane_paces():
    text = "word " * 100  # 400 units
    units = spoken_units(text)
    assert bound_seconds(text) == pytest.approx(PRIOR_SLACK * units / TYPICAL_UNITS_PER_SECOND)
    typical = 1 / TYPICAL_UNITS_PER_SECOND  # seconds per unit
    assert bound_seconds(text, typical) == pytest.approx(EVIDENCE_SLACK * units / TYPICAL_UNITS_PER_SECOND)
    assert bound_seconds(text, typical) < bound_seconds(text)  # a known pace needs less slack
    assert bound_seconds(text, 2 * typical) > bound_seconds(text)  # a slow voice gets more room than before
    assert bound_seconds(text, 0.001) == pytest.approx(EVIDENCE_SLACK * units / FASTEST_UNITS_PER_SECOND)
    assert bound_seconds(text, 40.0) == bound_seconds(text, 1e6)  # held at the slowest pace
    assert bound_seconds("") == bound_seconds("", typical) == 1.0


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng (.ci/run installs it)")
def test_the_bound_covers_real_speech_and_reserves_less_than_before():
    """espeak-ng speech (benchmarks/token_estimate.py's texts and voices): the bound is longer than
    every text's speech, the old one cut Mandarin short, and the new one reserves fewer positions."""
    import token_estimate

    result = token_estimate.espeak_figures()
    bounds = result["bound_over_actual"]
    assert bounds["new, pace known (units, x1.5)"]["min"] > 1.1
    assert bounds["new, pace unknown (units, x2)"]["min"] > 1.1
    assert bounds["old (characters, x2)"]["min"] < 1.0  # what this replaces cut some speech
    assert result["variation"]["spoken units"] < result["variation"]["characters"] / 2
    assert result["reserved_over_speech"]["new, pace known"] < 0.8 * result["reserved_over_speech"]["old"]


def test_a_long_form_chunk_gets_its_bound_from_the_earlier_chunks(engine):
    from higgs_worker.model.prompt import AudioClip, Turn
    from higgs_worker.synthesis import chunk_budget, voice_pace

    chunk = " ".join(["The sun rises in the east and sets in the west."] * 9)  # ~100 words
    codes = torch.zeros((8, 700), dtype=torch.long)  # 28 s for the same text: ~14 units a second
    earlier = [Turn("user", chunk), Turn("assistant", audio=AudioClip(codes))] * 2
    reference = [
        Turn("user", "A reference transcript that is long enough."),
        Turn("assistant", audio=AudioClip(codes[:, :50])),
    ]
    fps = engine.spec.frames_per_second
    assert voice_pace(earlier, fps) == pytest.approx(700 / fps / spoken_units(chunk))
    assert voice_pace(reference + earlier, fps) == voice_pace(earlier, fps)  # the slowest of them
    without = chunk_budget(engine, chunk, 15000, [])
    with_pace = chunk_budget(engine, chunk, 15000, earlier)
    assert with_pace == engine.steps_for(EVIDENCE_SLACK * 700 / fps, 15000)
    assert 700 < with_pace < without
    assert chunk_budget(engine, chunk, 1000, earlier) == 1000  # the cap still holds
