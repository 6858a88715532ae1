"""Loudness normalisation (higgs_worker/audio/loudness.py), measured with pyloudnorm itself."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_worker.audio.loudness import CEILING_DBTP, integrated_lufs, limit, normalize, true_peak_dbtp

RATE = 44100


def speechlike(seconds: float = 4.0, level: float = 0.3, seed: int = 0) -> np.ndarray:
    """A voiced tone under a syllable-rate envelope, with noise and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    wave = np.sin(2 * np.pi * 160 * t) + 0.5 * np.sin(2 * np.pi * 320 * t) + 0.3 * rng.standard_normal(t.size)
    return (level * envelope * wave).astype(np.float32)


@pytest.mark.parametrize("level", [0.002, 0.05, 0.6, 3.0])  # quiet to clipping
@pytest.mark.parametrize("target", [-23.0, -16.0, -14.0])
def test_reaches_the_target_under_the_ceiling(level, target):
    audio = speechlike(level=level)
    out, report = normalize(audio, RATE, target)
    assert report.before_lufs == pytest.approx(integrated_lufs(audio, RATE))
    assert integrated_lufs(out, RATE) == pytest.approx(target, abs=0.5)
    assert report.after_lufs == pytest.approx(integrated_lufs(out, RATE), abs=1e-6)
    ceiling = 10 ** (CEILING_DBTP / 20)
    assert np.abs(out).max() <= ceiling
    assert true_peak_dbtp(out) <= CEILING_DBTP + 1e-6
    assert report.true_peak_dbtp == pytest.approx(true_peak_dbtp(out), abs=1e-3)
    assert len(out) == len(audio) and out.dtype == np.float32


def test_loud_target_needs_the_limiter_and_stays_under_the_ceiling():
    audio = speechlike(level=0.05)
    plain_gain_peak = true_peak_dbtp(audio) + (-14.0 - integrated_lufs(audio, RATE))
    assert plain_gain_peak > CEILING_DBTP + 3  # a plain gain would clip
    out, report = normalize(audio, RATE, -14.0)
    assert report.true_peak_dbtp <= CEILING_DBTP + 1e-6
    assert integrated_lufs(out, RATE) == pytest.approx(-14.0, abs=0.5)


def test_unreachable_target_stops_at_the_ceiling_and_says_what_it_reached():
    audio = speechlike(level=0.05)
    out, report = normalize(audio, RATE, -5.0)
    assert np.abs(out).max() <= 10 ** (CEILING_DBTP / 20)
    assert report.after_lufs < -6.0  # not reached, and the report shows it
    assert report.after_lufs == pytest.approx(integrated_lufs(out, RATE), abs=1e-6)


def test_limiter_touches_only_the_neighbourhood_of_peaks():
    audio = np.full(RATE, 0.1, dtype=np.float32)
    audio[RATE // 2] = 2.0
    out = limit(audio, RATE, 0.5)
    assert np.abs(out).max() <= 0.5 + 1e-6
    assert np.array_equal(out[: RATE // 4], audio[: RATE // 4])  # far from the peak: untouched
    assert np.array_equal(out[-RATE // 4 :], audio[-RATE // 4 :])


def test_too_short_or_silent_audio_is_left_alone():
    short = speechlike(seconds=0.3)
    out, report = normalize(short, RATE, -16.0)
    assert np.array_equal(out, short) and report.before_lufs is None and report.after_lufs is None
    silent = np.zeros(RATE * 2, dtype=np.float32)
    out, report = normalize(silent, RATE, -16.0)
    assert not out.any() and report.before_lufs is None
    assert report.as_output() == {
        "target_lufs": -16.0,
        "before_lufs": None,
        "after_lufs": None,
        "true_peak_dbtp": None,
        "ceiling_dbtp": CEILING_DBTP,
    }
