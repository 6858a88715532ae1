"""The job output contract: what a successful job returns, and a failed one.

``jobs`` builds a ``JobOutput`` (a failure is ``errors.JobFailure``); ``as_output()`` is the
queue's output dict, with the fields the job set. docs/worker-reference.md is generated
from these models, so the two cannot drift apart.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(_Closed):
    repo: str = Field(description="MODEL_REPO")
    revision: str = Field(description="the commit actually loaded (`local` for a hand-filled folder)")


class Timings(_Closed):
    download_s: float = Field(description="model download (first job on an empty volume only)")
    load_s: float = Field(description="model load (first job of a worker only, unless loaded at start)")
    warmup_s: float = Field(
        description="compiling the decode step or loading its kernels from COMPILE_CACHE_DIR "
        "(first job of a worker only, unless warmed at start)"
    )
    fetch_s: float = Field(description="reference audio fetched (URL, S3) and decoded, outside the generation slot")
    wait_s: float = Field(description="waiting for a generation slot (all MAX_CONCURRENCY busy)")
    generate_s: float = Field(description="generation, all chunks (with encoding the voices' clips)")
    encode_s: float = Field(description="resampling and encoding")
    align_s: float = Field(description="word alignment (word_timestamps), in this job's thread")
    upload_s: float = Field(description="S3 upload and presigning (or inline packing)")
    total_s: float = Field(description="the whole job inside the worker")


class Word(_Closed):
    word: str = Field(description="the word as written, with its punctuation")
    start_s: float = Field(description="start in the file, seconds")
    end_s: float = Field(description="end in the file, seconds")
    start_sample: int = Field(description="start in the file, samples at sample_rate")
    end_sample: int = Field(description="end in the file, samples (exclusive)")
    approximate: bool | None = Field(
        None,
        description="true when not aligned as written: its pronunciation was guessed (a name, number or "
        "word the aligner's dictionary lacks), or its times were shared out by characters",
    )


class Segment(_Closed):
    text: str = Field(description="the chunk's or speaker turn's text, as written")
    spoken: str = Field(
        description="the same text as the model read it (numbers, dates, ... as words; see `normalize`); "
        "equal to `text` when nothing was normalised"
    )
    speaker: str | None = Field(description="`SPEAKERn` for dialogue turns, else null")
    start_s: float = Field(description="start in the file, seconds")
    end_s: float = Field(description="end in the file, seconds")
    start_sample: int = Field(description="start in the file, samples at sample_rate (exact)")
    end_sample: int = Field(description="end in the file, samples (exclusive)")
    approximate: bool | None = Field(None, description="true when split from a chunk by characters")
    words: list[Word] | None = Field(
        None, description="with word_timestamps: every word of `text` in order, where it plays in the file"
    )
    alignment_error: str | None = Field(
        None,
        description="with word_timestamps, when this segment could not be aligned: why; its `words` are then "
        "its time shared out by characters, each `approximate` (the job still succeeds)",
    )


class Loudness(_Closed):
    target_lufs: float = Field(description="the requested loudness_lufs")
    before_lufs: float | None = Field(description="integrated loudness before (null for silence)")
    after_lufs: float | None = Field(description="integrated loudness after")
    true_peak_dbtp: float | None = Field(description="true peak after, dBTP")
    ceiling_dbtp: float = Field(description="the true-peak ceiling")


class Subtitles(_Closed):
    format: str = Field(description="`srt` or `vtt`")
    content_type: str = Field(description="its MIME type")
    s3_uri: str | None = Field(None, description="beside the audio in S3 (same key, other extension)")
    url: str | None = Field(None, description="its own presigned URL")
    text: str | None = Field(None, description="the subtitle file itself (inline delivery)")


class JobOutput(_Closed):
    audio_url: str | None = Field(None, description="presigned https URL (S3 delivery, S3_PRESIGN_SECONDS > 0)")
    s3_uri: str | None = Field(None, description="`s3://bucket/key` of the result (S3 delivery)")
    audio_base64: str | None = Field(None, description="the encoded audio (inline delivery)")
    format: str = Field(description="the output_format")
    content_type: str = Field(description="its MIME type, e.g. `audio/mpeg`")
    sample_rate: int = Field(description="samples per second of the result")
    duration_s: float = Field(description="length of the audio")
    num_chunks: int = Field(description="how many pieces the text was generated in")
    seed: int = Field(
        description="the seed used (give it back to reproduce the audio on the same worker; docs/reproducibility.md)"
    )
    model: ModelInfo = Field(description="the model that made the audio")
    timings: Timings = Field(description="seconds spent in each phase")
    rtf: float | None = Field(description="real-time factor: generate_s / duration_s")
    segments: list[Segment] = Field(description="where each chunk / speaker turn lies in the file, in play order")
    loudness: Loudness | None = Field(None, description="measured loudness (with loudness_lufs)")
    subtitles: Subtitles | None = Field(None, description="the subtitle file (with subtitles)")
    warnings: list[str] | None = Field(
        None,
        description="what ran degraded or differently for this job, e.g. the decode step uncompiled after a "
        "compile failure on this worker (the audio is correct; generation was slower), a chunk the runaway "
        "guard ended (it kept silent after speaking or repeated one frame; the rest was cut), a preset voice "
        "designed on its first use (docs/voices.md)",
    )

    def as_output(self) -> dict:
        """The queue's output dict: every field the job set (an unset optional one is absent)."""
        return self.model_dump(exclude_unset=True)


class JobError(_Closed):
    error: str = Field(description="`<code>: <message a user can act on>`; RunPod marks the job FAILED")
