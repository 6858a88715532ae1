"""Audio in and out: decode uploaded bytes, resample, and encode results: the lossless
formats and Ogg Vorbis with soundfile, Opus and MP3 with the speech settings of ``lossy``.
Which format is written how is ``contract.formats``."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ..contract.errors import AUDIO_TOO_LONG
from ..contract.formats import FORMATS
from . import lossy


@dataclass(frozen=True)
class Codec:
    content_type: str
    format: str | None = None  # soundfile container
    subtype: str | None = None
    encoder: lossy.Lossy | None = None  # encoded through PyAV with these settings
    # neither: raw PCM


CODECS: dict[str, Codec] = {
    f.name: Codec(f.content_type, f.container, f.subtype, lossy.PROFILES[f.file_profile] if f.file_profile else None)
    for f in FORMATS
}


class AudioDecodeError(ValueError):
    """Bytes that are not audio soundfile can read, or audio out of bounds. ``kind`` is
    ``AUDIO_TOO_LONG`` when the audio is longer than the ``max_seconds`` it was given (a
    caller acts on the kind, never on the message's words), else None."""

    def __init__(self, message: str, *, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


MAX_REDUCED_RATE = 1000


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's sinc interpolation); mono float32 in and out.

    torchaudio's kernel grows with the rates divided by their gcd (44101 -> 24000 Hz would
    need gigabytes), so a source rate without a common factor is first taken as the nearest
    multiple of 50 Hz: a pitch change below 0.3 %, inaudible in a voice reference."""
    if source_rate == target_rate or waveform.size == 0:
        return waveform.astype(np.float32, copy=False)
    import math

    import torch
    import torchaudio.functional as F

    divisor = math.gcd(source_rate, target_rate)
    if max(source_rate, target_rate) // divisor > MAX_REDUCED_RATE:
        source_rate = max(50, round(source_rate / 50) * 50)
        if source_rate == target_rate:
            return waveform.astype(np.float32, copy=False)
    tensor = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
    return F.resample(tensor, source_rate, target_rate).numpy()


def to_pcm16(waveform: np.ndarray) -> bytes:
    clipped = np.clip(waveform, -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


def encode(waveform: np.ndarray, sample_rate: int, output_format: str) -> bytes:
    """Encode mono float32 audio in [-1, 1] to the bytes of ``output_format``."""
    codec = CODECS[output_format]
    if codec.encoder is not None:
        return lossy.encode(waveform, sample_rate, codec.encoder)
    if codec.format is None:
        return to_pcm16(waveform)
    buffer = io.BytesIO()
    data = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    sf.write(buffer, data, sample_rate, format=codec.format, subtype=codec.subtype)
    return buffer.getvalue()


MAX_CHANNELS = 16


def probe(data: bytes, max_seconds: float | None = None) -> float:
    """The header only (no samples decoded): its declared length in seconds (0 when it does not
    say), ``AudioDecodeError`` for what ``decode`` refuses from the header alone. Cheap; a
    header may lie, so ``decode`` checks again."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            rate, channels, frames = int(handle.samplerate), handle.channels, handle.frames
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError("not a readable audio file (wav, flac, ogg, mp3)") from exc
    if rate <= 0 or rate > 384000:
        raise AudioDecodeError(f"unsupported sample rate {rate}")
    if channels > MAX_CHANNELS:
        raise AudioDecodeError(f"{channels} channels; at most {MAX_CHANNELS}")
    seconds = max(frames, 0) / rate
    if max_seconds is not None and seconds > max_seconds:
        raise AudioDecodeError(f"audio is {seconds:.1f} s long; the limit is {max_seconds:g} s", kind=AUDIO_TOO_LONG)
    return seconds


def decode(data: bytes, max_seconds: float | None = None, min_seconds: float = 0.0) -> tuple[np.ndarray, int]:
    """Decode audio bytes (wav, flac, ogg, mp3, ...) to mono float32 and its sample rate.

    Raises ``AudioDecodeError`` for anything soundfile cannot read, for audio shorter
    than ``min_seconds`` (a header that claims more frames than the bytes hold is read as
    what the bytes hold), and, before decoding the samples, for audio longer than
    ``max_seconds``. Channels are mixed down block by block, so memory stays that of
    the mono signal whatever the channel count.
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            rate, channels, frames = int(handle.samplerate), handle.channels, handle.frames
            if rate <= 0 or rate > 384000:
                raise AudioDecodeError(f"unsupported sample rate {rate}")
            if channels > MAX_CHANNELS:
                raise AudioDecodeError(f"{channels} channels; at most {MAX_CHANNELS}")
            if max_seconds is not None and frames > 0 and frames / rate > max_seconds:
                raise AudioDecodeError(
                    f"audio is {frames / rate:.1f} s long; the limit is {max_seconds:g} s", kind=AUDIO_TOO_LONG
                )
            limit = int(max_seconds * rate) + 1 if max_seconds is not None else None
            pieces, total = [], 0
            for block in handle.blocks(blocksize=65536, dtype="float32", always_2d=True):
                pieces.append(block.mean(axis=1) if channels > 1 else block[:, 0].copy())
                total += len(block)
                if limit is not None and total > limit:
                    raise AudioDecodeError(f"audio is longer than the limit of {max_seconds:g} s", kind=AUDIO_TOO_LONG)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError("not a readable audio file (wav, flac, ogg, mp3)") from exc
    mono = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    if mono.size == 0:
        raise AudioDecodeError("audio has no samples")
    if mono.size < min_seconds * rate:
        raise AudioDecodeError(f"audio is {mono.size / rate:.2f} s long; at least {min_seconds:g} s is needed")
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("audio contains invalid samples")
    return mono.astype(np.float32, copy=False), rate
