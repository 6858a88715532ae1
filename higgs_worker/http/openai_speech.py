"""OpenAI's ``audio.speech`` request -> the worker's job input, and audio -> response bytes.

Translation only: the job input is validated by the job schema (``schema.parse_request``)
like any queue job. Errors are ``errors.ApiError`` (an HTTP status and OpenAI's error fields).

Response bodies are encoded piece by piece while the audio is generated:

- ``pcm``: raw 16-bit little-endian mono at 24 kHz (OpenAI's pcm);
- ``wav``: a streaming WAV header (sizes 0xFFFFFFFF, "unknown") then the PCM;
- ``mp3``: a constant-bitrate MP3 stream (64 kbit/s); without a gapless (LAME) tag,
  which can only be written once the whole file is known, so decoders add the encoder's
  usual delay and padding (under 0.1 s of silence);
- ``opus``: an Ogg Opus stream (about 36 kbit/s, the queue's stream item settings), sent page
  by page (a page a second);
- ``flac``: sent whole once generated (FLAC's header holds the total length and checksum);
- ``aac``: refused (no AAC encoder in this image).
"""

from __future__ import annotations

import base64
import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from ..audio import lossy
from ..audio.codecs import to_pcm16
from ..contract.config import Settings
from ..contract.errors import WorkerError
from ..contract.formats import BY_NAME, OPENAI_FORMATS
from ..contract.schema import KNOWN_FIELDS, MODEL_SAMPLE_RATE, parse_request
from ..model.spec import SPEC
from .errors import ApiError, worker_error

AUTO_VOICE = "auto"  # the model picks a voice (the job's voice: null)
MODEL_IDS = (SPEC.name,)  # the release served (model/spec.py)
OPENAI_MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # so tools that hard-code them work
FORMATS = OPENAI_FORMATS  # response_format: the job's formats OpenAI's route offers (``contract.formats``)
OPENAI_FIELDS = ("model", "input", "voice", "response_format", "speed", "instructions", "stream_format")
# Job fields that the OpenAI fields (or this door) set: not accepted as extras.
DOOR_FIELDS = {
    "text",
    "transcript",
    "input",
    "voice",
    "ref_audio",
    "output_format",
    "response_format",
    "stream",
    "delivery",
    "output_name",
    "sample_rate",
    "scene_description",
    "scene_prompt",
}
EXTRA_FIELDS = tuple(name for name in KNOWN_FIELDS if name not in DOOR_FIELDS) + ("scene_description",)


@dataclass(frozen=True)
class SpeechOptions:
    response_format: str
    stream_format: str  # "audio" or "sse"

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.stream_format == "sse" else BY_NAME[self.response_format].content_type


def model_ids(settings: Settings) -> list[str]:
    return [*MODEL_IDS, settings.model.repo, *OPENAI_MODEL_ALIASES]


def _voice_name(voice: Any) -> str | None:
    if isinstance(voice, dict) and set(voice) == {"id"}:
        voice = voice["id"]
    if voice is None:
        return None
    if not isinstance(voice, str):
        raise ApiError(400, 'voice must be a voice name or {"id": name}', "invalid_value", "voice")
    return None if voice == AUTO_VOICE else voice


def to_job_input(body: Any, settings: Settings) -> tuple[dict, SpeechOptions]:
    """Validate an OpenAI speech body; return the job input and the response options."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", "invalid_json")
    unknown = sorted(str(key) for key in body if key not in OPENAI_FIELDS and key not in EXTRA_FIELDS)
    if unknown:
        raise ApiError(
            400,
            f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown[:10])}; accepted: OpenAI's "
            f"{', '.join(OPENAI_FIELDS)} and the Higgs fields {', '.join(EXTRA_FIELDS)}",
            "unknown_parameter",
            unknown[0][:40],
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required (GET /v1/models lists them)", "missing_required_parameter", "model")
    if model not in model_ids(settings):
        raise ApiError(
            404,
            f"the model {model[:100]!r} does not exist here; models: {', '.join(model_ids(settings))}",
            "model_not_found",
            "model",
        )
    if "input" not in body:
        raise ApiError(400, "input is required (the text to speak)", "missing_required_parameter", "input")
    response_format = body.get("response_format", "mp3")
    if response_format == "aac":
        raise ApiError(
            400,
            "response_format 'aac' is not available: this image has no AAC encoder; use "
            f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}",
            "unsupported_value",
            "response_format",
        )
    if response_format not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}", "invalid_value", "response_format")
    stream_format = body.get("stream_format", "audio")
    if stream_format not in ("audio", "sse"):
        raise ApiError(400, "stream_format must be 'audio' or 'sse'", "invalid_value", "stream_format")
    speed = body.get("speed", 1.0)
    if speed is not None and (not isinstance(speed, int | float) or isinstance(speed, bool) or speed != 1.0):
        raise ApiError(
            400,
            "only speed 1.0 is supported: changing the speed without changing the pitch needs a time-stretch "
            "(phase vocoder) library this image does not have, and resampling would change the pitch",
            "unsupported_value",
            "speed",
        )
    if body.get("word_timestamps"):
        raise ApiError(
            400,
            "word_timestamps is not available on /v1/audio/speech, whose body is the audio itself; "
            "POST /v1/synthesize (the job contract) returns segments with their words",
            "unsupported_value",
            "word_timestamps",
        )
    if body.get("instructions") is not None and body.get("scene_description") is not None:
        raise ApiError(400, "give either instructions or scene_description, not both", "invalid_value", "instructions")
    job_input = {key: body[key] for key in EXTRA_FIELDS if key in body}
    job_input["text"] = body["input"]
    voice = _voice_name(body.get("voice"))
    if voice is not None:
        job_input["voice"] = voice
    if body.get("instructions") is not None:
        job_input["scene_description"] = body["instructions"]
    # The door streams the pieces itself; the job's own whole-file output is raw PCM kept in memory.
    job_input.update({"output_format": "pcm", "delivery": "base64"})
    try:
        parse_request(job_input, settings)
    except WorkerError as exc:
        raise worker_error(exc) from None
    return job_input, SpeechOptions(response_format, stream_format)


# -- response encoding ---------------------------------------------------------------


def wav_stream_header(rate: int = MODEL_SAMPLE_RATE) -> bytes:
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", unknown)


class AudioEncoder:
    """Float32 pieces at 24 kHz in, bytes of ``response_format`` out as soon as they exist.

    mp3 and opus are one continuous stream each (``lossy.StreamEncoder``: PyAV, which
    releases the GIL while it encodes)."""

    def __init__(self, response_format: str):
        self.format = response_format
        self.pieces: list[np.ndarray] = []
        self.started = False
        profile = BY_NAME[response_format].stream_profile
        self.stream = lossy.StreamEncoder(lossy.PROFILES[profile], MODEL_SAMPLE_RATE) if profile else None

    def feed(self, piece: np.ndarray) -> bytes:
        piece = np.clip(np.asarray(piece, dtype=np.float32), -1.0, 1.0)
        head = b""
        if not self.started:
            self.started = True
            head = wav_stream_header() if self.format == "wav" else b""
        if self.format in ("pcm", "wav"):
            return head + to_pcm16(piece)
        if self.stream is not None:
            return self.stream.feed(piece)
        self.pieces.append(piece)  # flac: whole at the end
        return b""

    def finish(self) -> bytes:
        if self.format == "wav" and not self.started:
            self.started = True
            return wav_stream_header()
        if self.stream is not None:
            return self.stream.finish()
        if self.format == "flac":  # the same 16-bit samples as wav and pcm
            audio = np.concatenate(self.pieces) if self.pieces else np.zeros(0, dtype=np.float32)
            samples = np.frombuffer(to_pcm16(audio), dtype="<i2")
            buffer = io.BytesIO()
            flac = BY_NAME["flac"]
            sf.write(buffer, samples, MODEL_SAMPLE_RATE, format=flac.container, subtype=flac.subtype)
            return buffer.getvalue()
        return b""


def sse_event(payload: dict) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def sse_delta(chunk: bytes) -> bytes:
    return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")})


def sse_done(input_chars: int, output_frames: int) -> bytes:
    """OpenAI's done event; usage counts text characters in and audio frames (25 a second) out."""
    usage = {"input_tokens": input_chars, "output_tokens": output_frames, "total_tokens": input_chars + output_frames}
    return sse_event({"type": "speech.audio.done", "usage": usage})


def sse_error(error: ApiError) -> bytes:
    return sse_event({"type": "error", **error.body()})
