"""Integrated loudness (ITU-R BS.1770-4, pyloudnorm) to a target, under a true-peak ceiling.

The gain that reaches the target is applied; where that would push the true peak
(BS.1770-4 Annex 2: the peak of the 4x oversampled signal) above the ceiling, a
look-ahead peak limiter lowers the gain around those peaks only. Limiting lowers
the loudness, so the gain is then searched for on the limited signal (secant
method, at most 12 dB of limiting: a target the voice cannot reach under the
ceiling stops there, and ``after_lufs`` says where). Audio too short to measure
(under 0.4 s, one BS.1770 block) or silent is left as it is (``before_lufs: null``).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

CEILING_DBTP = -1.0  # EBU R128 / streaming platforms' usual true-peak ceiling
OVERSAMPLE = 4
LOOKAHEAD_S = 0.005
ROUNDS = 8
MAX_STEP_DB = 12.0
MAX_EXTRA_GAIN_DB = 12.0  # limiting beyond the plain gain, at most: more would only distort
TOLERANCE_LU = 0.05


@dataclass(frozen=True)
class LoudnessReport:
    target_lufs: float
    before_lufs: float | None
    after_lufs: float | None
    true_peak_dbtp: float | None
    ceiling_dbtp: float = CEILING_DBTP

    def as_output(self) -> dict:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        return {
            "target_lufs": self.target_lufs,
            "before_lufs": r(self.before_lufs),
            "after_lufs": r(self.after_lufs),
            "true_peak_dbtp": r(self.true_peak_dbtp),
            "ceiling_dbtp": self.ceiling_dbtp,
        }


def integrated_lufs(audio: np.ndarray, rate: int) -> float | None:
    """Integrated loudness in LUFS; None when too short or silent to measure."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    if len(audio) <= meter.block_size * rate:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyloudnorm warns about samples above 1.0
        value = float(meter.integrated_loudness(np.asarray(audio, dtype=np.float64)))
    return value if math.isfinite(value) else None


@functools.cache
def _interpolator() -> np.ndarray:
    """A 49-tap low-pass for 4x oversampling: 12 taps a phase, as in BS.1770-4 Annex 2."""
    from scipy.signal import firwin

    return firwin(12 * OVERSAMPLE + 1, 1.0 / OVERSAMPLE, window=("kaiser", 5.0)).astype(np.float32)


def _oversampled(audio: np.ndarray) -> np.ndarray:
    """Magnitudes of the 4x oversampled signal (BS.1770-4 Annex 2)."""
    from scipy.signal import resample_poly

    if audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    return np.abs(resample_poly(audio.astype(np.float32), OVERSAMPLE, 1, window=_interpolator()))


def _oversampled_peaks(audio: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude of the 4x oversampled signal around it."""
    fine = _oversampled(audio)[: len(audio) * OVERSAMPLE]
    return np.maximum(fine.reshape(len(audio), OVERSAMPLE).max(axis=1), np.abs(audio))


def _true_peak(audio: np.ndarray) -> float:
    """The true peak, linear (0.0 for no audio)."""
    if audio.size == 0:
        return 0.0
    return max(float(_oversampled(audio).max()), float(np.abs(audio).max()))


def true_peak_dbtp(audio: np.ndarray) -> float | None:
    peak = _true_peak(audio)
    return 20 * math.log10(peak) if peak > 0 else None


def limit(audio: np.ndarray, rate: int, ceiling: float, peaks: np.ndarray | None = None) -> np.ndarray:
    """Lower the gain smoothly around every (true) peak above ``ceiling`` (linear);
    ``peaks``: ``audio``'s per-sample true peaks when already known."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    peaks = _oversampled_peaks(audio) if peaks is None else peaks
    if peaks.max(initial=0.0) <= ceiling:
        return audio
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    width = max(1, int(rate * LOOKAHEAD_S))
    # a minimum over +-width then a moving average over width stays at or below
    # ``needed`` at every peak, and ramps over ``width`` samples either side of it
    gain = uniform_filter1d(minimum_filter1d(needed, 2 * width + 1, mode="nearest"), width, mode="nearest")
    return (audio * gain).astype(np.float32)


def normalize(audio: np.ndarray, rate: int, target_lufs: float, ceiling_dbtp: float = CEILING_DBTP):
    """``(audio at target_lufs with no true peak above ceiling_dbtp, LoudnessReport)``."""
    audio = np.asarray(audio, dtype=np.float32)
    before = integrated_lufs(audio, rate)
    if before is None:
        return audio, LoudnessReport(target_lufs, None, None, true_peak_dbtp(audio), ceiling_dbtp)
    ceiling = 10 ** (ceiling_dbtp / 20)
    gain_db = target_lufs - before
    gain = 10 ** (gain_db / 20)
    peak = _true_peak(audio)  # oversampling is linear: a gain scales the peak
    if gain * peak <= ceiling:  # no limiting needed: one gain
        out = (audio * np.float32(gain)).astype(np.float32)
        return out, LoudnessReport(
            target_lufs, before, integrated_lufs(out, rate), 20 * math.log10(gain * peak), ceiling_dbtp
        )
    peaks = _oversampled_peaks(audio)

    def limited(gain_db: float) -> tuple[np.ndarray, float | None]:
        gain = np.float32(10 ** (gain_db / 20))
        out = limit(audio * gain, rate, ceiling, peaks * gain)
        return out, integrated_lufs(out, rate)

    # Limiting takes back part of any extra gain: find the gain by the secant method,
    # at most MAX_EXTRA_GAIN_DB above the plain gain (an unreachable target stops there).
    low, high = gain_db, gain_db + MAX_EXTRA_GAIN_DB
    out, measured = limited(gain_db)
    previous: tuple[float, float] | None = None
    for _ in range(ROUNDS):
        if measured is None or abs(target_lufs - measured) <= TOLERANCE_LU:
            break
        slope = 1.0
        if previous is not None and gain_db != previous[0]:
            slope = max(0.05, (measured - previous[1]) / (gain_db - previous[0]))
        step = max(-MAX_STEP_DB, min(MAX_STEP_DB, (target_lufs - measured) / slope))
        following = min(high, max(low, gain_db + step))
        if following == gain_db:
            break
        previous = (gain_db, measured)
        gain_db = following
        out, measured = limited(gain_db)
    peak = _true_peak(out)
    if peak > ceiling:  # the limiter's smooth gain can leave a hair above the ceiling
        out = (out * np.float32(ceiling / peak * 0.9999)).astype(np.float32)
    return out, LoudnessReport(target_lufs, before, integrated_lufs(out, rate), true_peak_dbtp(out), ceiling_dbtp)
