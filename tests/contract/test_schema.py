"""Every input field of the contract: defaults, aliases, bounds and clear errors."""

from __future__ import annotations

import pytest

from higgs_worker.contract.config import Settings
from higgs_worker.contract.errors import WorkerError
from higgs_worker.contract.schema import KNOWN_FIELDS, parse_request

SETTINGS = Settings.from_env({})
S3_SETTINGS = Settings.from_env({"S3_BUCKET": "b"})


def ok(raw: dict, settings: Settings = SETTINGS):
    return parse_request(raw, settings)


def refused(raw, settings: Settings = SETTINGS) -> str:
    with pytest.raises(WorkerError) as info:
        parse_request(raw, settings)
    assert info.value.code == "invalid_input"
    message = str(info.value)
    assert message.startswith("invalid_input: ") and "Traceback" not in message
    return message


def test_defaults_follow_the_contract():
    r = ok({"text": "Hi"})
    assert (r.voice, r.reference_audio, r.speakers) == (None, None, None)
    assert r.scene_description == "Audio is recorded from a quiet room."
    assert (r.temperature, r.top_p, r.top_k) == (1.0, 0.95, 50)
    assert (r.max_new_tokens, r.seed) == (None, None)
    assert (r.ras_win_len, r.ras_win_max_num_repeat) == (7, 2)
    assert (r.chunk_method.value, r.chunk_max_words) == ("auto", 100)
    assert (r.output_format.value, r.sample_rate, r.delivery.value) == ("wav", 24000, "auto")
    assert (r.output_name, r.stream) == (None, False)


@pytest.mark.parametrize(
    "alias,field,value,expected",
    [
        ("transcript", "text", "Hello", "Hello"),
        ("input", "text", "Hello", "Hello"),
        ("ref_audio", "voice", "belinda", "belinda"),
        ("scene_prompt", "scene_description", "A noisy bar.", "A noisy bar."),
        ("response_format", "output_format", "MP3", "mp3"),
    ],
)
def test_aliases(alias, field, value, expected):
    raw = {alias: value} if field == "text" else {"text": "Hi", alias: value}
    got = getattr(ok(raw), field)
    assert (got.value if hasattr(got, "value") else got) == expected


def test_two_aliases_of_one_field_are_refused():
    assert "give only one of text, transcript" in refused({"text": "a", "transcript": "b"})


def test_unknown_fields_are_named_with_the_known_list():
    message = refused({"text": "Hi", "bucket": "mine", "aws_secret": "x"})
    assert "'aws_secret'" in message and "'bucket'" in message
    assert "known fields: " + ", ".join(KNOWN_FIELDS) in message


@pytest.mark.parametrize(
    "raw,needle",
    [
        (None, "JSON object"),
        ("text", "JSON object"),
        ({}, "text is required"),
        ({"text": ""}, "something to say"),
        ({"text": "   \n\t "}, "something to say"),
        ({"text": "\x00\x01\x02"}, "something to say"),
        ({"text": 5}, "text"),
        ({"text": "Hi", "temperature": -0.1}, "temperature"),
        ({"text": "Hi", "temperature": 2.5}, "temperature"),
        ({"text": "Hi", "top_p": 0}, "top_p"),
        ({"text": "Hi", "top_k": -1}, "top_k"),
        ({"text": "Hi", "max_new_tokens": 0}, "max_new_tokens"),
        ({"text": "Hi", "max_new_tokens": 10**9}, "MAX_NEW_TOKENS"),
        ({"text": "Hi", "seed": -1}, "seed"),
        ({"text": "Hi", "seed": 2**32}, "seed"),
        ({"text": "Hi", "ras_win_len": -1}, "ras_win_len"),
        ({"text": "Hi", "chunk_method": "sentence"}, "chunk_method"),
        ({"text": "Hi", "chunk_max_words": 0}, "chunk_max_words"),
        ({"text": "Hi", "output_format": "aac"}, "output_format"),
        ({"text": "Hi", "sample_rate": 4000}, "sample_rate"),
        ({"text": "Hi", "output_format": "opus", "sample_rate": 22050}, "opus needs sample_rate"),
        ({"text": "Hi", "output_format": "mp3", "sample_rate": 9000}, "sample_rate must be one of"),
        ({"text": "Hi", "sample_rate": 47999}, "sample_rate must be one of"),
        ({"text": "Hi", "temperature": 1e-300}, "temperature must be 0 (greedy) or at least"),
        ({"text": "Hi", "output_name": "belinda\n"}, "plain name"),
        ({"text": "Hi", "delivery": "email"}, "delivery"),
        ({"text": "Hi", "delivery": "s3"}, "S3_BUCKET"),
        ({"text": "Hi", "stream": "maybe"}, "stream"),
        ({"text": "Hi", "voice": "../secrets"}, "plain name"),
        ({"text": "Hi", "voice": "a/b"}, "plain name"),
        ({"text": "Hi", "output_name": "../../etc/x"}, "plain name"),
        ({"text": "Hi", "output_name": "a\x00b"}, "plain name"),
        ({"text": "Hi", "output_name": "x" * 300}, "plain name"),
        ({"text": "Hi", "output_name": "ｆｕｌｌwidth"}, "plain name"),
        ({"text": "Hi", "voice": "belinda", "reference_audio": {"base64": "AAAA"}}, "either voice or reference_audio"),
        ({"text": "Hi", "reference_audio": {}}, "exactly one of url, base64, s3_key"),
        ({"text": "Hi", "reference_audio": {"url": "http://x/a.wav", "base64": "AAAA"}}, "exactly one"),
        ({"text": "Hi", "reference_audio": {"url": "file:///etc/passwd"}}, "http:// or https://"),
        ({"text": "Hi", "reference_audio": {"url": "ftp://host/a.wav"}}, "http:// or https://"),
        ({"text": "Hi", "reference_audio": {"s3_key": "a.wav"}}, "S3_BUCKET"),
        ({"text": "Hi", "reference_audio": {"base64": "AAAA", "extra": 1}}, "extra"),
        ({"text": "Hi", "speakers": {"narrator": {"voice": "a"}}}, "SPEAKER0"),
        ({"text": "Hi", "speakers": {"SPEAKER0": {}}}, "voice, reference_audio or description"),
        ({"text": "Hi", "speakers": {"SPEAKER0": {"voice": "a", "reference_audio": {"base64": "AA=="}}}}, "not both"),
    ],
)
def test_bad_input_is_refused_clearly(raw, needle):
    assert needle in refused(raw)


def test_text_length_limit_comes_from_the_environment():
    limited = Settings.from_env({"MAX_TEXT_CHARS": "10"})
    assert "MAX_TEXT_CHARS" in refused({"text": "x" * 11}, limited)
    assert ok({"text": "x" * 10}, limited).text == "x" * 10
    assert "20000" in refused({"text": "x" * 20001})


def test_control_characters_are_dropped_but_text_kept():
    assert ok({"text": "Hello\x07 world\u0000!\nBye"}).text == "Hello world!\nBye"


def test_s3_fields_accepted_when_s3_is_configured():
    r = ok(
        {"text": "Hi", "delivery": "s3", "reference_audio": {"s3_key": "refs/a.wav", "transcript": "t"}}, S3_SETTINGS
    )
    assert r.delivery.value == "s3" and r.reference_audio.s3_key == "refs/a.wav"


def test_reference_s3_key_cannot_escape_with_dotdot():
    assert "without '..'" in refused({"text": "Hi", "reference_audio": {"s3_key": "../other/a.wav"}}, S3_SETTINGS)


def test_speakers_and_file_names():
    r = ok(
        {
            "text": "[SPEAKER0] a [SPEAKER1] b",
            "output_name": "my-file_1.v2",
            "speakers": {"SPEAKER0": {"voice": "belinda"}, "SPEAKER1": {"description": "deep"}},
        }
    )
    assert r.speakers["SPEAKER1"].description == "deep"
    assert r.file_name("job") == "my-file_1.v2.wav"
    assert ok({"text": "Hi", "output_name": "a.mp3", "output_format": "mp3"}).file_name("j") == "a.mp3"
    assert ok({"text": "Hi", "output_format": "pcm"}).file_name("job-7/../x") == "job-7_.._x.pcm"
