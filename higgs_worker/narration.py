"""From the generated chunks to the final file's audio, its timed segments, loudness
report and subtitles; and delivery of the subtitle file next to the audio.

Order: trim each piece (``trim_silence``), join with ``pause_s`` of silence, resample
once to the output rate, normalise loudness (``loudness_lufs``). Segment positions
are computed at the output rate (``segments.output_position``) and gain changes no
length, so they are sample positions of the encoded file. Streamed pieces
(``stream: true``) are sent during generation and get none of this: pauses, trimming
and loudness apply to the final file only.

With ``word_timestamps``, ``add_words`` (a step of its own, after ``render``) aligns each
chunk's words with its audio in helper processes (``audio/align``) and cues the
subtitles on the words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio import codecs as audio_codec
from .audio import loudness, segments, subtitles
from .audio.align import placement
from .audio.align.service import AlignmentService, default_service
from .contract.schema import SynthesisRequest
from .io.storage import S3Store
from .synthesis import ChunkAudio, Synthesis


@dataclass
class Rendered:
    waveform: np.ndarray  # float32 at the output rate, what gets encoded
    rate: int
    segments: list[segments.Segment]
    loudness: loudness.LoudnessReport | None = None
    subtitles: str | None = None  # the subtitle file's text, when asked for
    joined: np.ndarray | None = None  # the joined chunks at the model's rate, before resampling
    source_rate: int = 0
    spans: list[tuple[int, int]] | None = None  # each chunk's [start, end) in ``joined``

    def outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"segments": [s.as_output(self.rate) for s in self.segments]}
        if self.loudness is not None:
            out["loudness"] = self.loudness.as_output()
        return out


def render(result: Synthesis, request: SynthesisRequest) -> Rendered:
    chunks = result.chunks or [ChunkAudio(0, request.text, result.audio, None)]
    joined, spans = segments.join([c.audio for c in chunks], result.sample_rate, request.pause_s, request.trim_silence)
    waveform = audio_codec.resample(joined, result.sample_rate, request.sample_rate)
    timed = segments.build(
        [(c.reading or c.text, c.speaker) for c in chunks], spans, result.sample_rate, request.sample_rate
    )
    report = None
    if request.loudness_lufs is not None:
        waveform, report = loudness.normalize(waveform, request.sample_rate, request.loudness_lufs)
    rendered = Rendered(waveform, request.sample_rate, timed, report)
    if request.word_timestamps:  # kept for add_words
        rendered.joined, rendered.source_rate, rendered.spans = joined, result.sample_rate, spans
    if request.subtitles is not None:
        rendered.subtitles = subtitles.render(request.subtitles.value, timed, request.sample_rate)
    return rendered


def prepare_words() -> None:
    """Start the aligner's helper process while the job generates (``word_timestamps``)."""
    default_service().prepare()


def add_words(rendered: Rendered, request: SynthesisRequest, service: AlignmentService | None = None) -> None:
    """Word times in every segment (``word_timestamps``), and the subtitles cued on them.
    Runs in the job's thread; the aligning itself in helper processes. Never raises for
    an alignment that failed: that chunk's words are shared out and say why."""
    assert rendered.joined is not None and rendered.spans is not None
    rendered.segments = placement.with_words(
        rendered.segments,
        rendered.joined,
        rendered.spans,
        rendered.source_rate,
        rendered.rate,
        service or default_service(),
    )
    if request.subtitles is not None:
        rendered.subtitles = subtitles.render(request.subtitles.value, rendered.segments, rendered.rate)


def subtitle_file_name(audio_file_name: str, fmt: str) -> str:
    stem = audio_file_name.rsplit(".", 1)[0] if "." in audio_file_name else audio_file_name
    return f"{stem}.{fmt}"


def deliver_subtitles(
    rendered: Rendered, request: SynthesisRequest, job_id: str, audio_output: dict, store: S3Store | None
) -> dict[str, Any]:
    """``{"subtitles": {...}}`` next to the audio: in S3 under the audio's key with the
    subtitle extension (and its own presigned URL) when the audio went there, else inline."""
    if rendered.subtitles is None or request.subtitles is None:
        return {}
    fmt = request.subtitles.value
    content_type = subtitles.CONTENT_TYPES[fmt]
    if "s3_uri" in audio_output and store is not None:
        name = subtitle_file_name(request.file_name(job_id), fmt)
        stored = store.upload(name, rendered.subtitles.encode("utf-8"), content_type)
        entry = {"format": fmt, "content_type": content_type, "s3_uri": stored.s3_uri}
        if stored.url:
            entry["url"] = stored.url
        return {"subtitles": entry}
    return {"subtitles": {"format": fmt, "content_type": content_type, "text": rendered.subtitles}}
