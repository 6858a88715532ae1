"""Opus and MP3 through PyAV (higgs_worker/audio/lossy.py): every file decodes to exactly the
samples encoded, at every rate the job schema allows; the speech settings hold their bitrate
and keep the sound; the HTTP stream hands out its bytes while it is fed."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from higgs_worker.audio import lossy
from higgs_worker.audio.codecs import encode

RATE = 24000
FILES = {"opus": lossy.OPUS_SPEECH, "mp3": lossy.MP3_FILE}


def voice(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A voiced source (harmonics of a gliding pitch) and breath noise under a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 30) if k * 150 < rate / 2)
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 1.5
    return (0.25 * envelope * (harmonics + 0.1 * rng.standard_normal(t.size))).astype(np.float32)


def decoded(data: bytes) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate


@pytest.mark.parametrize("fmt", sorted(FILES))
@pytest.mark.parametrize("samples", [100, 9_600, 38_400, 38_401, 100_000])
def test_a_file_decodes_to_exactly_the_samples_encoded(fmt, samples):
    # 9 600 samples (0.4 s, the first streamed piece) fit in one Ogg page, whose granule
    # position alone must then give the length: the encoder's pre-skip counted once
    audio, rate = decoded(lossy.encode(voice(samples / RATE), RATE, FILES[fmt]))
    assert rate == RATE and len(audio) == samples


@pytest.mark.parametrize(
    "fmt, rate",
    [("opus", r) for r in (8000, 12000, 16000, 24000, 48000)]
    + [("mp3", r) for r in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)],
)
def test_every_rate_the_schema_allows(fmt, rate):
    source = voice(0.5, rate)
    audio, read_rate = decoded(encode(source, rate, fmt))
    assert read_rate == rate and len(audio) == len(source)


def band_levels(audio: np.ndarray) -> np.ndarray:
    """Power in dB in the speech band (100 Hz - 7 kHz), 94 Hz bins."""
    freqs, power = welch(audio, RATE, nperseg=256)
    band = (freqs >= 100) & (freqs <= 7000)
    return 10 * np.log10(power[band] + 1e-12)


@pytest.mark.parametrize(
    "spec, low, high",
    [(lossy.OPUS_SPEECH, 20, 45), (lossy.MP3_FILE, 32, 96), (lossy.MP3_STREAM, 63, 66)],
    ids=["opus", "mp3 file", "mp3 stream"],
)
def test_speech_settings_hold_their_bitrate_and_keep_the_sound(spec, low, high):
    source = voice(10.0)
    data = lossy.encode(source, RATE, spec)
    assert low <= len(data) * 8 / 10 / 1000 <= high
    audio, _ = decoded(data)
    audio = audio[: len(source)]
    assert np.abs(band_levels(audio) - band_levels(source)).mean() < 2.0  # dB, over the speech band
    envelope = [np.sqrt(np.mean(np.square(x[: len(x) // 240 * 240].reshape(-1, 240)), axis=1)) for x in (source, audio)]
    length = min(map(len, envelope))
    assert np.corrcoef(envelope[0][:length], envelope[1][:length])[0, 1] > 0.98  # the syllables where they were


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_the_stream_encoder_hands_out_bytes_while_it_is_fed(fmt):
    source = voice(6.0)
    encoder = lossy.StreamEncoder(lossy.MP3_STREAM if fmt == "mp3" else lossy.OPUS_SPEECH, RATE)
    pieces = [encoder.feed(source[i : i + 9600]) for i in range(0, len(source), 9600)]  # 0.4 s each
    tail = encoder.finish()
    sent = [piece for piece in pieces if piece]
    # mp3: nearly every piece; Ogg Opus: its header, then a page a second
    assert len(sent) >= (len(pieces) - 2 if fmt == "mp3" else 5)
    assert len(b"".join(pieces)) > 3 * len(tail)
    audio, rate = decoded(b"".join(pieces) + tail)
    if fmt == "opus":
        assert rate == RATE and len(audio) == len(source)  # the last page's granule position trims the padding
    else:  # no gapless header in a stream: the encoder's delay and padding stay
        assert rate == RATE and len(source) <= len(audio) <= len(source) + 2 * 1152
