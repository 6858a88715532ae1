"""Codecs through soundfile, decoding of odd uploads, resampling."""

import io

import numpy as np
import pytest
import soundfile as sf

from higgs_worker.audio.codecs import CODECS, AudioDecodeError, decode, encode, resample
from tests.conftest import tone, wav_bytes


@pytest.mark.parametrize("fmt", sorted(CODECS))
def test_encode_round_trip(fmt):
    wave = tone(0.5)
    data = encode(wave, 24000, fmt)
    if fmt == "pcm":
        back = np.frombuffer(data, dtype="<i2") / 32767
        assert np.allclose(back, wave, atol=1e-4)
        return
    back, rate = sf.read(io.BytesIO(data))
    assert rate == 24000 and abs(len(back) - len(wave)) <= 0.05 * 24000
    if fmt in ("wav", "flac"):
        assert np.allclose(back, wave, atol=1e-4)


def test_decode_mixes_stereo_and_keeps_rate():
    mono, rate = decode(wav_bytes(0.5, rate=44100, channels=2))
    assert rate == 44100 and mono.ndim == 1 and len(mono) == 22050


@pytest.mark.parametrize(
    "data", [b"", b"not audio at all", b"RIFF\xff\xff\xff\xffWAVEfmt " + b"\x00" * 64, b"hello" * 100]
)
def test_decode_refuses_garbage(data):
    with pytest.raises(AudioDecodeError):
        decode(data)


def test_decode_refuses_too_long_before_reading_samples():
    with pytest.raises(AudioDecodeError, match="long"):
        decode(wav_bytes(3.0), max_seconds=2.0)


def test_silence_is_fine():
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(24000, dtype=np.float32), 24000, format="WAV")
    mono, _ = decode(buffer.getvalue())
    assert not mono.any()


def test_resample_changes_length_by_the_ratio():
    assert len(resample(tone(1.0, 24000), 24000, 16000)) == 16000
    assert len(resample(tone(1.0, 8000, freq=100), 8000, 24000)) == 24000
