"""The job input contract: pydantic models, aliases, bounds and clear errors.

``parse_request(raw, settings)`` turns ``job["input"]`` into a ``SynthesisRequest``
or raises ``WorkerError("invalid_input", ...)`` naming every problem found.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .config import Settings
from .errors import INVALID_INPUT, TOO_LONG, WorkerError
from .formats import FORMATS

MODEL_SAMPLE_RATE = 24_000  # the model's output rate (Hz) the audio pipeline assumes; model/spec.py checks the configs
DEFAULT_SCENE = "Audio is recorded from a quiet room."
SPEAKER_KEY = re.compile(r"^SPEAKER\d{1,2}$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_DESCRIPTION_CHARS = 2000
MIN_TEMPERATURE = 0.01  # below it, logits / temperature overflow to inf and sampling breaks

# Output sample rates: the standard ones (an odd rate would make the resampler's kernel huge).
SAMPLE_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
# libopus takes only these (LAME, the MP3 encoder, takes every rate above).
OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})


# The output formats (``formats.FORMATS``, where a new one is added).
OutputFormat = StrEnum("OutputFormat", {f.name: f.name for f in FORMATS})


class ChunkMethod(StrEnum):
    auto = "auto"
    none = "none"
    word = "word"
    speaker = "speaker"


class Delivery(StrEnum):
    auto = "auto"
    s3 = "s3"
    base64 = "base64"


class SubtitleFormat(StrEnum):
    srt = "srt"
    vtt = "vtt"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)


def check_name(value: str, what: str) -> str:
    """A plain file-like name: no path parts, no control or look-alike tricks."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    normalized = unicodedata.normalize("NFKC", value)
    if normalized != value or not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{what} must be a plain name of letters, digits, '.', '_' or '-' "
            "(at most 128 characters, no slashes, no '..')"
        )
    return value


def _is_plain_key(key: str) -> bool:
    """An S3 key that every store and proxy reads as written: relative, no dot or empty parts
    (which a path-normalising proxy would resolve), no backslashes or control characters."""
    if key.startswith("/") or "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


class ReferenceAudio(_Strict):
    url: str | None = Field(default=None, max_length=4096)
    base64: str | None = None
    s3_key: str | None = Field(default=None, max_length=1024)
    transcript: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS * 5)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ReferenceAudio:
        given = [name for name in ("url", "base64", "s3_key") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("reference_audio needs exactly one of url, base64, s3_key")
        if self.url is not None and not re.match(r"^https?://", self.url, re.IGNORECASE):
            raise ValueError("reference_audio.url must be an http:// or https:// URL")
        if self.s3_key is not None and not _is_plain_key(self.s3_key):
            raise ValueError(
                "reference_audio.s3_key must be a plain key under REFERENCE_S3_PREFIX, without '..', '.' or "
                "empty parts, a leading '/', backslashes or control characters"
            )
        return self


class SpeakerVoice(_Strict):
    voice: str | None = None
    reference_audio: ReferenceAudio | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)

    @field_validator("voice")
    @classmethod
    def _voice_name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "voice")

    @model_validator(mode="after")
    def _one_kind(self) -> SpeakerVoice:
        if self.voice and self.reference_audio:
            raise ValueError("give a speaker either voice or reference_audio, not both")
        if not (self.voice or self.reference_audio or self.description):
            raise ValueError("a speaker needs voice, reference_audio or description")
        return self


class SynthesisRequest(_Strict):
    text: str = Field(
        validation_alias=AliasChoices("text", "transcript", "input"),
        description="the words to speak, 1..MAX_TEXT_CHARS characters; "
        "`[SPEAKER0]` / `[SPEAKER1]` tags make a dialogue",
    )
    voice: str | None = Field(
        default=None,
        validation_alias=AliasChoices("voice", "ref_audio"),
        description="a preset voice (`alloy`, `nova`, `narrator`, ...: docs/voices.md) or a name in the voice "
        "library (VOICES_DIR), which wins over a preset of its name; null lets the model pick a voice (smart voice)",
    )
    reference_audio: ReferenceAudio | None = Field(
        default=None,
        description="zero-shot cloning: exactly one of `url`, `base64`, `s3_key` (in S3_BUCKET, under "
        "REFERENCE_S3_PREFIX), "
        "plus optional `transcript`; 0.25 s..MAX_REFERENCE_SECONDS of wav/flac/ogg/mp3",
    )
    speakers: dict[str, SpeakerVoice] | None = Field(
        default=None,
        description='per-speaker voices for dialogues: `{"SPEAKER0": {"voice": "alloy"}, '
        '"SPEAKER1": {"description": "masculine, deep"}}`; each takes `voice`, `reference_audio` '
        "and/or `description`",
    )
    scene_description: str = Field(
        default=DEFAULT_SCENE,
        max_length=MAX_DESCRIPTION_CHARS,
        validation_alias=AliasChoices("scene_description", "scene_prompt"),
        description='the acoustic scene; `""` for none',
    )
    temperature: float = Field(default=1.0, ge=0.0, le=2.0, description=f"0 = greedy, else {MIN_TEMPERATURE}..2")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="nucleus sampling")
    top_k: int = Field(default=50, ge=0, le=1024, description="0 = off")
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        description="generation steps per chunk (25 = 1 s); null = bounded from the text and the voice's pace; "
        "at most MAX_NEW_TOKENS",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**32 - 1,
        description="null = a fresh seed, returned in the output; same seed + input + worker = same audio when the "
        "job runs alone or beside the same jobs; beside other jobs its logits match within rounding and the audio "
        "may part after a near tie (docs/reproducibility.md)",
    )
    ras_win_len: int = Field(default=7, ge=0, le=256, description="repetition-aware sampling window; 0 = off")
    ras_win_max_num_repeat: int = Field(default=2, ge=0, le=256, description="repeats allowed in that window")
    normalize: bool = Field(
        default=True,
        description="read numbers, dates, times, money, percentages, units, abbreviations, URLs, e-mail "
        "addresses and phone numbers as words (English; numbers in Chinese) before generating; tags as "
        "written; segments keep `text` as written and give `spoken` as read (docs/text-normalization.md)",
    )
    chunk_method: ChunkMethod = Field(
        default=ChunkMethod.auto,
        description="how long text is split: `auto` (speaker turns, then sentences up to chunk_max_words), "
        "`none`, `word`, `speaker`; the voice is kept across chunks",
    )
    chunk_max_words: int = Field(default=100, ge=1, le=1000, description="words per chunk at most")
    output_format: OutputFormat = Field(
        default=OutputFormat.wav,
        validation_alias=AliasChoices("output_format", "response_format"),
        description="wav, mp3, flac, ogg (vorbis), opus, pcm (raw 16-bit little-endian mono)",
    )
    sample_rate: int = Field(
        default=MODEL_SAMPLE_RATE,
        ge=8000,
        le=48000,
        description="one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000 "
        "(opus: 8/12/16/24/48 kHz); resampled when not 24000",
    )
    delivery: Delivery = Field(
        default=Delivery.auto, description="`auto` = S3 when S3_BUCKET is set, else inline base64; `s3`; `base64`"
    )
    output_name: str | None = Field(
        default=None, description="a plain file name under S3_PREFIX (default `<job id>.<ext>`); no slashes, no `..`"
    )
    stream: bool = Field(
        default=False,
        description="audio pieces readable from `GET /stream/{id}` while generating (endpoints with STREAM_JOBS=true); "
        "pauses, trimming and loudness apply to the final file only",
    )
    # narration (higgs_worker/narration.py): subtitles, loudness, pauses and trimming
    subtitles: SubtitleFormat | None = Field(
        default=None,
        description="`srt` or `vtt`: the timed segments as a subtitle file beside the audio (S3: same key, "
        "other extension, its own URL; inline: as text); times within a segment are approximate, "
        "unless word_timestamps: then cues start and end on word boundaries",
    )
    word_timestamps: bool = Field(
        default=False,
        description="every segment gets `words`: each word's start and end in the file, by forced alignment of "
        "the text (English; other languages get estimates marked `approximate`); costs CPU time, "
        "reported as `timings.align_s`",
    )
    loudness_lufs: float | None = Field(
        default=None,
        ge=-70.0,
        le=-5.0,
        description="integrated loudness (ITU-R BS.1770) to this target, e.g. -16 (podcast) or -23 (broadcast), "
        "under a -1 dBTP true-peak ceiling; the result reports `loudness`; null = off",
    )
    pause_s: float | None = Field(
        default=None,
        ge=0.0,
        le=5.0,
        description="seconds of silence at every chunk boundary (so between speaker turns); "
        "null = chunks joined as generated",
    )
    trim_silence: bool = Field(
        default=False, description="cut each chunk's leading and trailing silence before joining"
    )

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("text must contain something to say")
        cleaned = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs"})
        if not cleaned.strip():
            raise ValueError("text must contain something to say")
        return cleaned

    @field_validator("voice")
    @classmethod
    def _voice_name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "voice")

    @field_validator("output_name")
    @classmethod
    def _output_name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "output_name")

    @field_validator("output_format", "chunk_method", "delivery", "subtitles", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("speakers")
    @classmethod
    def _speaker_keys(cls, value: dict | None) -> dict | None:
        if value is None:
            return None
        bad = [key for key in value if not SPEAKER_KEY.match(key)]
        if bad:
            raise ValueError(f"speaker keys must look like SPEAKER0, SPEAKER1; got {bad}")
        if len(value) > 16:
            raise ValueError("at most 16 speakers")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SynthesisRequest:
        if self.voice and self.reference_audio:
            raise ValueError("give either voice or reference_audio, not both")
        if 0.0 < self.temperature < MIN_TEMPERATURE:
            raise ValueError(f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE}")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {sorted(SAMPLE_RATES)}")
        if self.output_format is OutputFormat.opus and self.sample_rate not in OPUS_RATES:
            raise ValueError(f"opus needs sample_rate in {sorted(OPUS_RATES)}")
        return self

    def file_name(self, job_id: str) -> str:
        ext = self.output_format.value
        if self.output_name:
            name = self.output_name
            return name if name.lower().endswith(f".{ext}") else f"{name}.{ext}"
        safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", job_id or "job")[:100] or "job"
        return f"{safe_id}.{ext}"


def _names(name: str, field) -> tuple[str, ...]:
    alias = field.validation_alias
    return tuple(alias.choices) if isinstance(alias, AliasChoices) else (name,)


# Every accepted key of job["input"] (field names and their aliases), and the alias groups.
_ALIAS_GROUPS = tuple(_names(n, f) for n, f in SynthesisRequest.model_fields.items())
KNOWN_FIELDS = sorted(name for group in _ALIAS_GROUPS for name in group)


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    message = error.get("msg", "invalid value")
    message = message.removeprefix("Value error, ")
    if error.get("type") == "missing" and where in {"text", "transcript", "input"}:
        return "text is required (the words to speak)"
    return f"{where}: {message}" if where else message


def parse_request(raw: Any, settings: Settings) -> SynthesisRequest:
    """Validate ``job["input"]``; raise ``WorkerError(invalid_input)`` on any problem."""
    if not isinstance(raw, dict):
        raise WorkerError(INVALID_INPUT, "job input must be a JSON object with at least 'text'")
    unknown = sorted(str(key) for key in raw if key not in KNOWN_FIELDS)
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:10])
        raise WorkerError(INVALID_INPUT, f"unknown field(s) {shown}; known fields: {', '.join(KNOWN_FIELDS)}")
    for group in _ALIAS_GROUPS:
        present = [name for name in group if name in raw]
        if len(present) > 1:
            raise WorkerError(INVALID_INPUT, f"give only one of {', '.join(present)}")
    try:
        request = SynthesisRequest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors()[:8])
        raise WorkerError(INVALID_INPUT, problems) from None
    if len(request.text) > settings.max_text_chars:
        raise WorkerError(
            INVALID_INPUT,
            f"text has {len(request.text)} characters; the limit is {settings.max_text_chars} (MAX_TEXT_CHARS)",
            kind=TOO_LONG,
            parameter="text",
        )
    if request.max_new_tokens is not None and request.max_new_tokens > settings.max_new_tokens_cap:
        raise WorkerError(
            INVALID_INPUT,
            f"max_new_tokens {request.max_new_tokens} is above this worker's cap "
            f"{settings.max_new_tokens_cap} (MAX_NEW_TOKENS)",
        )
    if request.delivery is Delivery.s3 and settings.s3 is None:
        raise WorkerError(INVALID_INPUT, "delivery 's3' needs S3_BUCKET set on the endpoint")
    if settings.s3 is None and _uses_s3_key(request):
        raise WorkerError(INVALID_INPUT, "reference_audio.s3_key needs S3_BUCKET set on the endpoint")
    inline = sum(len(ref.base64) * 3 // 4 for ref in _references(request) if ref.base64)
    if inline > settings.max_job_reference_bytes:  # from the base64 lengths: nothing decoded yet
        raise WorkerError(INVALID_INPUT, total_reference_bytes_message(inline, settings.max_job_reference_bytes))
    return request


def total_reference_bytes_message(size: int, limit: int) -> str:
    return f"the job's reference audio is {size} bytes in all; at most {limit} (MAX_JOB_REFERENCE_BYTES)"


def total_reference_seconds_message(seconds: float, limit: float) -> str:
    return f"the job's reference audio is {seconds:.1f} s in all; at most {limit:g} s (MAX_JOB_REFERENCE_SECONDS)"


def _references(request: SynthesisRequest) -> list[ReferenceAudio]:
    refs = [request.reference_audio, *(s.reference_audio for s in (request.speakers or {}).values())]
    return [ref for ref in refs if ref is not None]


def _uses_s3_key(request: SynthesisRequest) -> bool:
    refs = [request.reference_audio]
    refs += [s.reference_audio for s in (request.speakers or {}).values()]
    return any(ref is not None and ref.s3_key for ref in refs)
