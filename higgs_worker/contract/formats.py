"""The output formats, one fact each, in one place: the job's ``output_format`` values
(``schema.OutputFormat``), the encoders (``audio.codecs``), the OpenAI route's
``response_format`` and content types (``http.openai_speech``) and storage's hints all
derive from ``FORMATS``. A new format is one entry here (and its encoder, when neither
soundfile nor a ``lossy`` profile writes it).

Content types are the IANA media types of the file as delivered: an Ogg Opus file is
``audio/ogg`` (RFC 7845 section 9, the Ogg media type of RFC 5334); ``audio/opus`` (RFC 7587)
names Opus in RTP, not a file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioFormat:
    name: str  # the output_format value; also the file extension
    content_type: str
    lossy: bool = False  # a lossy codec: much smaller results (storage's hint when the inline limit is passed)
    container: str | None = None  # soundfile's container and subtype, when soundfile writes the file
    subtype: str | None = None
    file_profile: str | None = None  # ``audio.lossy.PROFILES`` name when PyAV writes the whole file
    stream_profile: str | None = None  # the profile the OpenAI route streams it with (None: written there)
    openai: bool = False  # offered as the OpenAI route's response_format (the same name)

    @property
    def extension(self) -> str:
        return self.name


FORMATS: tuple[AudioFormat, ...] = (
    AudioFormat("wav", "audio/wav", container="WAV", subtype="PCM_16", openai=True),
    AudioFormat("mp3", "audio/mpeg", lossy=True, file_profile="mp3_file", stream_profile="mp3_stream", openai=True),
    AudioFormat("flac", "audio/flac", container="FLAC", subtype="PCM_16", openai=True),
    AudioFormat("ogg", "audio/ogg", lossy=True, container="OGG", subtype="VORBIS"),
    AudioFormat("opus", "audio/ogg", lossy=True, file_profile="opus_speech", stream_profile="opus_speech", openai=True),
    AudioFormat("pcm", "audio/pcm", openai=True),  # raw 16-bit little-endian mono
)
BY_NAME: dict[str, AudioFormat] = {f.name: f for f in FORMATS}
OPENAI_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.openai)
LOSSY_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.lossy)
