"""OpenAI's speech request translated to a job (``higgs_worker/http/openai_speech.py``) and audio
encoded piece by piece as the route streams it, in process: real settings, the real job schema,
the real encoders (soundfile, PyAV); decoded back with soundfile. The route itself, over a real
HTTP-mode worker and OpenAI's SDK, is tests/http/test_http_mode.py's."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.audio.codecs import to_pcm16
from higgs_worker.contract.config import Settings
from higgs_worker.http.errors import ApiError
from higgs_worker.http.openai_speech import (
    AudioEncoder,
    model_ids,
    sse_delta,
    sse_done,
    to_job_input,
    wav_stream_header,
)

SETTINGS = Settings.from_env({"MAX_TEXT_CHARS": "100"})
RATE = 24000


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def request(**fields) -> dict:
    return {"model": "tts-1", "input": "Hello there.", **fields}


# -- the request --------------------------------------------------------------------------------


def test_a_plain_request_becomes_a_job_the_door_streams_itself():
    job, options = to_job_input(request(), SETTINGS)
    assert job == {"text": "Hello there.", "output_format": "pcm", "delivery": "base64"}
    assert (options.response_format, options.stream_format, options.content_type) == ("mp3", "audio", "audio/mpeg")
    _, sse = to_job_input(request(response_format="wav", stream_format="sse"), SETTINGS)
    assert sse.content_type == "text/event-stream"


def test_voices_instructions_and_higgs_fields_reach_the_job():
    job, _ = to_job_input(
        request(voice={"id": "belinda"}, instructions="A quiet room.", seed=7, temperature=0.5), SETTINGS
    )
    assert job["voice"] == "belinda" and job["scene_description"] == "A quiet room."
    assert job["seed"] == 7 and job["temperature"] == 0.5
    for auto in ("auto", None):
        assert "voice" not in to_job_input(request(voice=auto), SETTINGS)[0]  # the model picks


def test_every_model_name_it_lists_is_accepted():
    for model in model_ids(SETTINGS):
        assert to_job_input(request(model=model), SETTINGS)[0]["text"] == "Hello there."


REFUSED = {
    "not an object": (["a", "list"], 400, "invalid_json", None),
    "an unknown field": (request(colour="blue"), 400, "unknown_parameter", "colour"),
    "a door field": (request(output_format="wav"), 400, "unknown_parameter", "output_format"),
    "no model": ({"input": "Hi"}, 400, "missing_required_parameter", "model"),
    "an unknown model": (request(model="gpt-9-tts"), 404, "model_not_found", "model"),
    "no input": ({"model": "tts-1"}, 400, "missing_required_parameter", "input"),
    "aac": (request(response_format="aac"), 400, "unsupported_value", "response_format"),
    "an unknown format": (request(response_format="ogg"), 400, "invalid_value", "response_format"),
    "an unknown stream format": (request(stream_format="chunks"), 400, "invalid_value", "stream_format"),
    "another speed": (request(speed=1.25), 400, "unsupported_value", "speed"),
    "a speed that is a boolean": (request(speed=True), 400, "unsupported_value", "speed"),
    "word timestamps": (request(word_timestamps=True), 400, "unsupported_value", "word_timestamps"),
    "instructions and a scene": (
        request(instructions="a", scene_description="b"),
        400,
        "invalid_value",
        "instructions",
    ),
    "a voice that is a number": (request(voice=7), 400, "invalid_value", "voice"),
    "text over MAX_TEXT_CHARS": (request(input="x" * 101), 400, "input_too_long", "input"),
    "a value the job schema refuses": (request(temperature=9), 400, "invalid_input", None),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refusals_carry_openais_status_code_and_parameter(name):
    body, status, code, param = REFUSED[name]
    with pytest.raises(ApiError) as refused:
        to_job_input(body, SETTINGS)
    error = refused.value
    assert (error.status, error.code, error.param) == (status, code, param), error.body()
    assert error.body()["error"]["message"] == error.message and "Traceback" not in error.message


# -- the response -------------------------------------------------------------------------------


def streamed(response_format: str, pieces: list[np.ndarray]) -> bytes:
    encoder = AudioEncoder(response_format)
    return b"".join(encoder.feed(piece) for piece in pieces) + encoder.finish()


PIECES = [tone(0.4), tone(0.3, 330.0), tone(0.5, 440.0)]


def test_pcm_and_wav_are_the_same_16_bit_samples_from_the_first_piece_on():
    joined = np.concatenate(PIECES)
    encoder = AudioEncoder("wav")
    first = encoder.feed(PIECES[0])
    assert first[:44] == wav_stream_header() and first[44:] == to_pcm16(PIECES[0])  # no waiting for the end
    assert streamed("pcm", PIECES) == to_pcm16(joined)
    assert streamed("wav", PIECES)[44:] == to_pcm16(joined)


def test_flac_is_lossless_and_whole_at_the_end():
    encoder = AudioEncoder("flac")
    assert [encoder.feed(piece) for piece in PIECES] == [b"", b"", b""]
    audio, rate = sf.read(io.BytesIO(encoder.finish()), dtype="int16")
    assert rate == RATE and audio.tobytes() == to_pcm16(np.concatenate(PIECES))


@pytest.mark.parametrize("name", ["mp3", "opus"])
def test_lossy_streams_decode_to_the_length_fed(name):
    audio, rate = sf.read(io.BytesIO(streamed(name, PIECES)))
    fed = sum(len(piece) for piece in PIECES) / RATE
    assert rate in (RATE, 48000) and len(audio) / rate == pytest.approx(fed, abs=0.1)  # codec delay, padding
    assert np.abs(audio).max() > 0.1  # the tone, not silence


@pytest.mark.parametrize("name", ["pcm", "wav", "flac"])
def test_samples_beyond_full_scale_are_clipped_not_wrapped(name):
    loud = [np.full(RATE // 2, 3.0, dtype=np.float32), np.full(RATE // 2, -3.0, dtype=np.float32)]
    data = streamed(name, loud)
    if name == "pcm":
        samples = np.frombuffer(data, dtype="<i2")
    else:
        samples = sf.read(io.BytesIO(data), dtype="int16")[0]
    assert samples[: RATE // 2].min() == 32767 and samples[RATE // 2 :].max() == -32767


def test_a_wav_with_no_audio_is_still_a_header():
    assert AudioEncoder("wav").finish() == wav_stream_header()


def test_sse_events_carry_the_pieces_and_the_usage():
    delta = sse_delta(b"\x01\x02\x03")
    assert delta.startswith(b"data: ") and delta.endswith(b"\n\n")
    event = json.loads(delta[len(b"data: ") :])
    assert event == {"type": "speech.audio.delta", "audio": base64.b64encode(b"\x01\x02\x03").decode()}
    done = json.loads(sse_done(12, 50)[len(b"data: ") :])
    assert done == {
        "type": "speech.audio.done",
        "usage": {"input_tokens": 12, "output_tokens": 50, "total_tokens": 62},
    }
