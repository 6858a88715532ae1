"""Speech where the tiny model makes noise: the engine's decoder replaced by espeak-ng speech of
each chunk's text (``devtools.spoken_words``), and where each word truly plays in the job's file.
The word-timestamp tests (tests/worker/test_word_timestamps.py) and the normalisation's
(tests/text/test_normalize.py) compare the worker's word times with these."""

from __future__ import annotations

from higgs_worker.audio import codecs
from higgs_worker.audio.segments import output_position
from higgs_worker.devtools.spoken_words import speak
from higgs_worker.text.chunking import SPEAKER_TAG, split_text


def speak_chunks(worker, monkeypatch, text: str, method: str, max_words: int) -> list:
    """Replace the tiny engine's decoder (noise) with espeak-ng speech of each chunk's text
    in order, at the model's rate; returns what each chunk says and where its words are."""
    spoken = []
    for index, chunk in enumerate(split_text(text, method, max_words)):
        words = SPEAKER_TAG.sub(" ", chunk).split()
        said = speak(words, "en-us", 175, seed=index)
        audio = codecs.resample(said.audio, said.rate, 24000)
        spans = [(a / said.rate, b / said.rate) for a, b in said.spans]
        spoken.append((audio, words, spans))
    pending = list(spoken)
    monkeypatch.setattr(worker.engine, "decode_codes", lambda codes: pending.pop(0)[0])
    return spoken


def true_times(spoken: list, pause_s: float, rate: int) -> list[tuple[str, float, float]]:
    """Each word and where it truly plays in the file, in seconds (at sample precision)."""
    out, offset = [], 0
    for audio, words, spans in spoken:
        for word, (a, b) in zip(words, spans, strict=True):
            first = output_position(offset + round(a * 24000), 24000, rate) / rate
            out.append((word, first, output_position(offset + round(b * 24000), 24000, rate) / rate))
        offset += len(audio) + round(pause_s * 24000)
    return out
