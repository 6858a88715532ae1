"""Audio in and out: decode uploaded bytes, resample, and encode results with soundfile."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

MODEL_SAMPLE_RATE = 24000


@dataclass(frozen=True)
class Codec:
    format: str | None  # soundfile container; None = raw PCM
    subtype: str | None
    content_type: str
    extension: str


CODECS: dict[str, Codec] = {
    "wav": Codec("WAV", "PCM_16", "audio/wav", "wav"),
    "mp3": Codec("MP3", "MPEG_LAYER_III", "audio/mpeg", "mp3"),
    "flac": Codec("FLAC", "PCM_16", "audio/flac", "flac"),
    "ogg": Codec("OGG", "VORBIS", "audio/ogg", "ogg"),
    "opus": Codec("OGG", "OPUS", "audio/opus", "opus"),
    "pcm": Codec(None, None, "audio/pcm", "pcm"),
}


class AudioDecodeError(ValueError):
    """Bytes that are not audio soundfile can read."""


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's sinc interpolation); mono float32 in and out."""
    if source_rate == target_rate or waveform.size == 0:
        return waveform.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
    return F.resample(tensor, source_rate, target_rate).numpy()


def to_pcm16(waveform: np.ndarray) -> bytes:
    clipped = np.clip(waveform, -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


def encode(waveform: np.ndarray, sample_rate: int, output_format: str) -> bytes:
    """Encode mono float32 audio in [-1, 1] to the bytes of ``output_format``."""
    codec = CODECS[output_format]
    if codec.format is None:
        return to_pcm16(waveform)
    buffer = io.BytesIO()
    data = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    sf.write(buffer, data, sample_rate, format=codec.format, subtype=codec.subtype)
    return buffer.getvalue()


def decode(data: bytes, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode audio bytes (wav, flac, ogg, mp3, ...) to mono float32 and its sample rate.

    Raises ``AudioDecodeError`` for anything soundfile cannot read, for empty audio,
    and (before decoding the samples) for audio longer than ``max_seconds``.
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            rate = int(handle.samplerate)
            frames = handle.frames
            if rate <= 0 or rate > 384000:
                raise AudioDecodeError(f"unsupported sample rate {rate}")
            if max_seconds is not None and frames > 0 and frames / rate > max_seconds:
                raise AudioDecodeError(f"audio is {frames / rate:.1f} s long; the limit is {max_seconds:g} s")
            limit = None if max_seconds is None else int(max_seconds * rate) + 1
            samples = handle.read(frames=limit if limit else -1, dtype="float32", always_2d=True)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError("not a readable audio file (wav, flac, ogg, mp3)") from exc
    if max_seconds is not None and samples.shape[0] / rate > max_seconds:
        raise AudioDecodeError(f"audio is longer than the limit of {max_seconds:g} s")
    if samples.shape[0] == 0:
        raise AudioDecodeError("audio has no samples")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("audio contains invalid samples")
    return mono.astype(np.float32, copy=False), rate
