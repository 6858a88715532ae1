"""True peak (ITU-R BS.1770-4 Annex 2: the peak of the 4x oversampled signal), computed only
where it can matter.

Each oversampled value is a sum of the 13 samples around it weighted by one phase of a
49-tap interpolation filter (``scipy.signal.resample_poly``'s polyphase filtering, 12 taps a
phase as in Annex 2), so it is at most ``bound()`` (the largest phase's sum of absolute
taps) times the largest magnitude among those samples. A sample whose neighbourhood cannot
reach the level asked about is never oversampled: the peaks computed are exact, and none
skipped could pass the level. Speech reaches near its peak in a few places only, so this
costs a small part of oversampling the whole signal.
"""

from __future__ import annotations

import functools

import numpy as np

OVERSAMPLE = 4


@functools.cache
def _interpolator() -> np.ndarray:
    """A 49-tap low-pass for 4x oversampling: 12 taps a phase, as in BS.1770-4 Annex 2."""
    from scipy.signal import firwin

    return firwin(12 * OVERSAMPLE + 1, 1.0 / OVERSAMPLE, window=("kaiser", 5.0)).astype(np.float32)


def oversampled(audio: np.ndarray) -> np.ndarray:
    """The whole 4x oversampled signal (``OVERSAMPLE`` values a sample; the reference)."""
    from scipy.signal import resample_poly

    if audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    return resample_poly(np.asarray(audio, dtype=np.float32), OVERSAMPLE, 1, window=_interpolator())


@functools.cache
def _phases() -> tuple[np.ndarray, int]:
    """``(weights, reach)``: oversampled value ``p`` of sample ``n`` is
    ``sum(weights[k, p] * x[n + reach - k] for k in range(2 * reach + 1))``, read off the
    response of ``oversampled`` to an impulse (so it is the very same filter)."""
    size = 8 * OVERSAMPLE * 13
    centre = size // 2
    impulse = np.zeros(size, dtype=np.float32)
    impulse[centre] = 1.0
    rows = oversampled(impulse).astype(np.float64).reshape(size, OVERSAMPLE)  # rows[n, p]
    used = np.flatnonzero(np.abs(rows).max(axis=1) > 0)
    reach = int(max(centre - used[0], used[-1] - centre))
    return rows[centre - reach : centre + reach + 1], reach


def bound() -> float:
    """The most an oversampled value can be, in units of the largest nearby magnitude."""
    weights, _ = _phases()
    return float(np.abs(weights).sum(axis=0).max())


def peaks_at(audio: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per sample in ``index``: the largest magnitude among the sample and its 4x oversampled
    values (float64)."""
    _, reach = _phases()
    return _peaks_in(np.pad(np.asarray(audio, dtype=np.float32), reach), np.asarray(index, dtype=np.int64))


def _peaks_in(padded: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``peaks_at`` on the audio with ``reach`` zeros either side (``padded``)."""
    weights, reach = _phases()
    values = np.zeros((OVERSAMPLE, len(index)))
    for k in range(2 * reach + 1):
        values += weights[k][:, None] * padded[index + 2 * reach - k]
    return np.maximum(np.abs(values).max(axis=0, initial=0.0), np.abs(padded[index + reach]))


def _neighbourhood_max(magnitude: np.ndarray, reach: int) -> np.ndarray:
    """Per sample, the largest of ``magnitude`` within ``reach`` either side (zeros outside),
    by doubling spans: a few passes, however wide."""
    size = 2 * reach + 1
    spans, span = np.pad(magnitude, reach), 1  # spans[j]: the largest of padded[j : j + span]
    while span * 2 <= size:
        spans = np.maximum(spans[:-span], spans[span:])
        span *= 2
    return np.maximum(spans[: len(magnitude)], spans[size - span : size - span + len(magnitude)])


class TruePeaks:
    """One signal's per-sample true peaks, computed the first time a level asks for them."""

    def __init__(self, audio: np.ndarray):
        self.audio = np.asarray(audio, dtype=np.float32)
        _, reach = _phases()
        self.padded = np.pad(self.audio, reach)
        magnitude = np.abs(self.audio)
        self.sample_peak = float(magnitude.max(initial=0.0))
        # the most any oversampled value near each sample can be
        self.reachable = _neighbourhood_max(magnitude, reach) * np.float32(bound())
        self.peaks = np.zeros(len(self.audio), dtype=np.float32)  # known where reachable > self.level
        self.level = np.inf

    def above(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """``(index, peaks)`` of the samples whose true peak passes ``level``."""
        candidates = np.flatnonzero(self.reachable > level)
        if level < self.level:
            new = candidates[self.reachable[candidates] <= self.level]
            self.peaks[new] = _peaks_in(self.padded, new)
            self.level = level
        index = candidates[self.peaks[candidates] > level]
        return index, self.peaks[index]

    def max(self) -> float:
        """The signal's true peak (linear; 0.0 for no audio)."""
        _, peaks = self.above(self.sample_peak)
        return max(self.sample_peak, float(peaks.max(initial=0.0)))


def true_peak(audio: np.ndarray) -> float:
    """The true peak, linear (0.0 for no audio)."""
    return TruePeaks(audio).max()
