"""The word aligner (higgs_worker/audio/align) on real speech: espeak-ng speaks each word
alone and the words are joined with known silences, so every word's true time is known
(``devtools.spoken_words``; ``.ci/run`` installs espeak-ng). Accuracy here is a loose
bound that a broken aligner fails (benchmarks/word_alignment.py prints the distribution);
the service's failure paths run real helper processes that are really ended."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_worker.audio.align import pocketsphinx_aligner
from higgs_worker.audio.align.aligner import AlignmentFailed
from higgs_worker.audio.align.english import read_number
from higgs_worker.audio.align.service import AlignmentService
from higgs_worker.audio.align.words import script_of, share_by_characters, split_words
from higgs_worker.devtools.spoken_words import speak

TEXT = "Narrators, teachers and video editors ask for word times; a subtitle starts when its first word does."


@pytest.fixture(scope="module")
def english():
    return pocketsphinx_aligner.english()


@pytest.fixture(scope="module")
def service():
    service = AlignmentService(processes=2)
    yield service
    service.close()


def errors(words, spoken) -> list[float]:
    assert [w.word for w in words] == spoken.words
    out = []
    for word, (start, end) in zip(words, spoken.spans, strict=True):
        out += [abs(word.start_s - start / spoken.rate), abs(word.end_s - end / spoken.rate)]
    return out


def test_words_are_as_written_and_punctuation_joins_its_word():
    assert split_words("Hello, world — it's 42%...") == ["Hello,", "world —", "it's", "42%..."]
    assert split_words("- so") == ["- so"]
    assert split_words("你好，世界。Higgs 2") == ["你", "好，", "世", "界。", "Higgs", "2"]
    assert split_words("  ") == []
    assert script_of("Hello there") == "latin" and script_of("你好，世界") == "cjk" and script_of("Привет") == "other"
    assert share_by_characters(["a", "bcd"], 1.0, 2.0) == [(1.0, 1.25), (1.25, 2.0)]


def test_pronunciations_from_the_dictionary_and_guessed_ones_marked():
    pronouncer = pocketsphinx_aligner.english_pronouncer()
    hello = pronouncer.pronounce("Hello,")
    assert hello.variants[0] == ("HH", "AH", "L", "OW") and not hello.guessed
    assert read_number("42") == ["forty", "two"]
    assert read_number("1984") == ["nineteen", "eighty", "four"]
    assert read_number("2005") == ["two", "thousand", "five"]
    assert read_number("3.5") == ["three", "point", "five"]
    assert read_number("21st") == ["twenty", "first"] and read_number("1990s") == ["nineteen", "nineties"]
    assert read_number("$5") == ["five", "dollars"] and read_number("10%") == ["ten", "percent"]
    assert read_number("1,000,000") == ["one", "million"] and read_number("x42") is None
    for token in ("42", "RunPod", "GPU", "RunPod's", "$5"):
        pron = pronouncer.pronounce(token)
        assert pron is not None and pron.guessed and pron.variants[0], token
    assert pronouncer.pronounce("GPU").variants[0] == ("JH", "IY", "P", "IY", "Y", "UW")  # spelled
    assert pronouncer.pronounce("RunPod").variants[0] == ("R", "AH", "N", "P", "AA", "D")  # run + pod
    assert pronouncer.pronounce("RunPod's").variants[0][-1] == "Z"
    assert pronouncer.pronounce("你") is None and pronouncer.pronounce("—") is None
    assert len(pronouncer.pronounce("a" * 3000).variants[0]) > 0  # long junk: no recursion limit


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 175), ("en-gb", 140), ("en-us+f3", 230)])
def test_words_of_speech_are_found_where_they_are(english, voice, speed):
    spoken = speak(TEXT.split(), voice, speed, seed=3)
    words = english.align(spoken.audio, spoken.rate, spoken.words)
    found = errors(words, spoken)
    assert np.median(found) < 0.05 and max(found) < 0.3, sorted(found)[-5:]
    assert all(a.end_s <= b.start_s for a, b in zip(words, words[1:], strict=False))
    assert not any(w.approximate for w in words)


def test_digital_silence_between_words_still_aligns(english):
    """No noise floor: the silences are exact zeros (like pause_s). PocketSphinx alone
    finds no path then; the aligner's faint noise floor is what makes it work."""
    spoken = speak(TEXT.split(), "en-us", 175, seed=4, noise=0.0)
    assert np.count_nonzero(spoken.audio == 0) > spoken.rate * 0.5
    assert np.median(errors(english.align(spoken.audio, spoken.rate, spoken.words), spoken)) < 0.05


def test_words_without_phones_get_the_time_between_their_neighbours(english):
    spoken = speak("Hello there, my friend.".split(), "en-us", 175, seed=5)
    words = english.align(spoken.audio, spoken.rate, ["Hello", "there,", "你好", "my", "friend."])
    middle = words[2]
    assert middle.approximate and words[1].end_s <= middle.start_s <= middle.end_s <= words[3].start_s
    assert [w.approximate for w in words] == [False, False, True, False, False]


def test_text_that_cannot_fit_the_audio_fails_clearly(english):
    spoken = speak(["Hello."], "en-us", 175)
    with pytest.raises(AlignmentFailed):
        english.align(spoken.audio, spoken.rate, TEXT.split() * 3)


def test_service_aligns_in_a_helper_and_falls_back_without_raising(service):
    spoken = speak(TEXT.split(), "en-us", 175, seed=6)
    aligned = service.align(spoken.audio, spoken.rate, spoken.words)
    assert aligned.error is None and np.median(errors(aligned.words, spoken)) < 0.05
    short = speak(["Hello."], "en-us", 175)
    failed = service.align(short.audio, short.rate, TEXT.split())
    assert failed.error and "no alignment path" in failed.error
    assert all(w.approximate for w in failed.words) and failed.words[-1].end_s == pytest.approx(
        len(short.audio) / 22050
    )
    chinese = service.align(short.audio, short.rate, ["你", "好。"])
    assert "no word aligner for Chinese" in chinese.error and len(chinese.words) == 2
    assert service.align(short.audio, short.rate, []).words == []


def test_a_helper_that_times_out_or_dies_is_replaced(service):
    spoken = speak(TEXT.split(), "en-us", 175, seed=7)
    assert service.align(spoken.audio, spoken.rate, spoken.words).error is None  # helpers started
    slow = service.align(spoken.audio, spoken.rate, spoken.words, timeout_s=0.001)
    assert "took longer than" in slow.error and all(w.approximate for w in slow.words)
    assert service.align(spoken.audio, spoken.rate, spoken.words).error is None  # a new helper
    helper = service._idle.get_nowait()
    helper.process.kill()  # a helper that crashed while idle
    helper.process.wait()
    service._idle.put(helper)
    crashed = service.align(spoken.audio, spoken.rate, spoken.words)
    assert "ended unexpectedly" in crashed.error
    again = service.align(spoken.audio, spoken.rate, spoken.words)
    assert again.error is None and service._started <= service.processes
