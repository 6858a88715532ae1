"""Loudness normalisation (higgs_worker/audio/loudness.py), measured with pyloudnorm itself,
and its parts against the whole-signal computations they avoid: the meter against pyloudnorm,
the true peak against oversampling everything, the limiter against filtering everything."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from higgs_worker.audio import true_peak
from higgs_worker.audio.loudness import (
    CEILING_DBTP,
    LOOKAHEAD_S,
    Meter,
    integrated_lufs,
    limit,
    normalize,
    true_peak_dbtp,
)

RATE = 44100


def reference_lufs(audio: np.ndarray, rate: int = RATE) -> float | None:
    """pyloudnorm's integrated loudness (None where it has no finite answer)."""
    if len(audio) <= 0.4 * rate:
        return None
    value = pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64))
    return value if math.isfinite(value) else None


def reference_peaks(audio: np.ndarray) -> np.ndarray:
    """Per-sample true peaks from the whole 4x oversampled signal."""
    fine = np.abs(true_peak.oversampled(audio)).reshape(len(audio), true_peak.OVERSAMPLE)
    return np.maximum(fine.max(axis=1), np.abs(audio))


def reference_limit(audio: np.ndarray, rate: int, ceiling: float) -> np.ndarray:
    """The limiter computed over the whole signal."""
    needed = np.minimum(1.0, ceiling / np.maximum(reference_peaks(audio).astype(np.float64), 1e-12))
    width = max(1, int(rate * LOOKAHEAD_S))
    gain = uniform_filter1d(minimum_filter1d(needed, 2 * width + 1, mode="nearest"), width, mode="nearest")
    return (audio * gain).astype(np.float32)


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
    assert report.before_lufs == pytest.approx(reference_lufs(audio), abs=1e-6)
    assert reference_lufs(out) == pytest.approx(target, abs=0.1)
    assert report.after_lufs == pytest.approx(reference_lufs(out), abs=1e-5)
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
    assert reference_lufs(out) == pytest.approx(-14.0, abs=0.1)
    assert report.after_lufs == pytest.approx(reference_lufs(out), abs=1e-5)


def test_unreachable_target_stops_at_the_ceiling_and_says_what_it_reached():
    audio = speechlike(level=0.05)
    out, report = normalize(audio, RATE, -5.0)
    assert np.abs(out).max() <= 10 ** (CEILING_DBTP / 20)
    assert report.after_lufs < -6.0  # not reached, and the report shows it
    assert report.after_lufs == pytest.approx(reference_lufs(out), abs=1e-5)


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


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 24000, 44100, 48000])
def test_the_meter_measures_what_pyloudnorm_measures(rate):
    rng = np.random.default_rng(rate)
    for seconds in (0.41, 1.0, 1.06, 3.337):  # block bounds that fall between samples, a partial last block
        audio = (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
        assert integrated_lufs(audio, rate) == pytest.approx(reference_lufs(audio, rate), abs=1e-9)
    gated = np.concatenate([speechlike(2.0), np.full(RATE, 1e-5, np.float32), speechlike(1.0, level=0.01)])
    if rate == RATE:  # blocks under the absolute (-70) and the relative (-10 LU) gates
        assert integrated_lufs(gated, rate) == pytest.approx(reference_lufs(gated, rate), abs=1e-9)
    assert integrated_lufs(np.zeros(rate, np.float32), rate) is None is reference_lufs(np.zeros(rate), rate)


def test_a_gain_and_a_local_change_are_measured_without_filtering_again():
    audio = speechlike(3.0)
    meter = Meter(RATE, len(audio))
    weighted = meter.weighted(audio)
    energies = meter.energies(weighted)
    index = np.r_[np.arange(1000, 1400), np.arange(60000, 60010), np.arange(len(audio) - 50, len(audio))]
    delta = np.random.default_rng(1).standard_normal(len(index)) * 0.05
    changed = audio.astype(np.float64) * 2.0
    changed[index] += delta
    blocks = energies * 4.0 + meter.energy_change(weighted, 2.0, index, delta)
    assert meter.lufs(blocks) == pytest.approx(reference_lufs(changed), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_true_peaks_are_those_of_the_whole_oversampled_signal(seed):
    rng = np.random.default_rng(seed)
    clipped = np.clip(3 * speechlike(1.0, seed=seed), -1, 1)  # flat tops: overshoot between samples
    for audio in (speechlike(1.0, seed=seed), clipped, rng.standard_normal(999).astype(np.float32)):
        expected = reference_peaks(audio)
        assert np.allclose(true_peak.peaks_at(audio, np.arange(len(audio))), expected, atol=1e-6)
        assert true_peak.true_peak(audio) == pytest.approx(float(expected.max()), abs=1e-6)
        index, peaks = true_peak.TruePeaks(audio).above(0.5)
        assert np.array_equal(index, np.flatnonzero(expected > 0.5))
        assert np.allclose(peaks, expected[index], atol=1e-6)
    assert true_peak.true_peak(np.zeros(0, np.float32)) == 0.0


def test_the_limiter_gives_what_filtering_the_whole_signal_gives():
    audio = 0.3 * speechlike(2.0)
    audio[:5] = 0.9  # peaks at both ends and clusters in between
    audio[-3:] = -0.95
    audio[40000:40100] *= 4
    audio[41000] = 1.2
    for ceiling in (0.8, 0.5, 0.3):
        assert np.allclose(limit(audio, RATE, ceiling), reference_limit(audio, RATE, ceiling), atol=1e-6)
