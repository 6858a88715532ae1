"""Odd text through whole jobs: texts with nothing to say are refused as ``invalid_input``,
control characters, lone surrogates, look-alike speaker tags, emoji and scripts of every kind
still make audio, and MAX_TEXT_CHARS holds at its edge. The tiny real model. Shared helpers:
tests/support/hostile_jobs.py."""

from __future__ import annotations

import time

import pytest

from tests.support.hostile_jobs import (
    CHEAP,
    check_audio,
    check_refused,
)

REFUSED_TEXTS = {
    "empty": "",
    "spaces": "   ",
    "whitespace mix": "\n\t\r \x0b\x0c",
    "unicode spaces": "\u00a0\u2003\u3000\u2028",
    "control characters only": "\x00\x01\x07\x1b\x7f",
    "line breaks only": "\r\n" * 50,
    "a lone surrogate": "\ud800",
}
ACCEPTED_TEXTS = {
    "control characters inside": "Hello\x00 wor\x07ld\x1b[31m!\x7f",
    "a lone surrogate inside": "Hi \ud83d there.",
    "only a speaker tag": "[SPEAKER0]",
    "two empty turns": "[SPEAKER0][SPEAKER1]",
    "unbalanced tags": "[SPEAKER0 Hello there. [SPEAKER1]",
    "speaker 1 and 99 without speaker 0": "[SPEAKER1] Hello. [SPEAKER99] Hi.",
    "tag look-alikes": "[/SPEAKER0] [[SPEAKER0]] [SPEAKER100] [speaker0] Hello.",
    "emoji": "😀🎉 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️",
    "mixed languages": "Hello 你好 こんにちは مرحبا שלום Привет नमस्ते 안녕하세요.",
    "invisible and direction marks": "\u202eHello\u200b\u200c\u200d there\ufeff\u2066.",
    "odd code points": "\ufffe\uffff\U0010ffff 𝐇𝐞𝐥𝐥𝐨 a" + "\u0301" * 60,
    "one 300-character word": "x" * 300,
    "punctuation and digits only": "...!?; 1234567890",
}


@pytest.mark.parametrize("name", list(REFUSED_TEXTS))
def test_texts_with_nothing_to_say_are_refused(make_worker, name):
    out = make_worker(CHEAP).run({"input": {"text": REFUSED_TEXTS[name]}}).as_output()
    assert "something to say" in check_refused(out, "invalid_input: ")


@pytest.mark.parametrize("name", list(ACCEPTED_TEXTS))
def test_odd_texts_still_make_audio(make_worker, name):
    check_audio(make_worker(CHEAP).run({"input": {"text": ACCEPTED_TEXTS[name], "seed": 2}}).as_output())


def test_text_one_character_over_the_limit_is_refused_and_the_limit_works(make_worker):
    worker = make_worker({"MAX_NEW_TOKENS": "12"})  # MAX_TEXT_CHARS is its default, 20000
    message = check_refused(worker.run({"input": {"text": "x" * 20001}}).as_output(), "invalid_input: ")
    assert "MAX_TEXT_CHARS" in message and "20000" in message and "20001" in message
    text = ("hello " * 3334)[:20000]
    assert len(text) == 20000
    started = time.monotonic()
    check_audio(worker.run({"input": {"text": text, "chunk_method": "none", "seed": 1}}).as_output())
    print(f"20,000 characters in one chunk: {time.monotonic() - started:.1f} s")


def test_text_far_over_the_limit_is_refused_quickly(make_worker):
    started = time.monotonic()
    out = make_worker(CHEAP).run({"input": {"text": "x" * 5_000_000}}).as_output()
    assert "MAX_TEXT_CHARS" in check_refused(out, "invalid_input: ")
    assert time.monotonic() - started < 20
