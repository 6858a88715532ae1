"""Integrated loudness (ITU-R BS.1770-4) to a target, under a true-peak ceiling.

The gain that reaches the target is applied; where that would push the true peak
(BS.1770-4 Annex 2, ``true_peak``) above the ceiling, a look-ahead peak limiter lowers
the gain around those peaks only. Limiting lowers the loudness, so the gain is then
searched for on the limited signal (secant method, at most 12 dB of limiting: a target
the voice cannot reach under the ceiling stops there, and ``after_lufs`` says where).
Audio too short to measure (under 0.4 s, one BS.1770 block) or silent is left as it is
(``before_lufs: null``).

The audio is measured once. ``Meter`` gives pyloudnorm's result (its K-weighting filters,
blocks and gating) and keeps the K-weighted signal and its block energies: the filters
are linear, so a gain multiplies the energies, and the limiter, which changes the audio
in a few short places, changes only the blocks around them (the K-weighted change is
filtered there alone). True peaks are oversampled only where the gain could bring them
near the ceiling, and the limiter's gain is computed only around the peaks it lowers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .true_peak import TruePeaks, true_peak

CEILING_DBTP = -1.0  # EBU R128 / streaming platforms' usual true-peak ceiling
LOOKAHEAD_S = 0.005
ROUNDS = 8
MAX_STEP_DB = 12.0
MAX_EXTRA_GAIN_DB = 12.0  # limiting beyond the plain gain, at most: more would only distort
TOLERANCE_LU = 0.05
BLOCK_S = 0.4  # BS.1770 gating block, 75 % overlap
STEP = 0.25
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0


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


class _Spans:
    """The samples within ``before`` ahead of and ``after`` behind any of ``index`` (sorted),
    as spans joined into one array (``positions``)."""

    def __init__(self, index: np.ndarray, before: int, after: int, length: int):
        breaks = np.flatnonzero(np.diff(index) > before + after) + 1
        self.starts = np.maximum(index[np.r_[0, breaks]] - before, 0)
        ends = np.minimum(index[np.r_[breaks - 1, len(index) - 1]] + after + 1, length)
        lengths = ends - self.starts
        self.offsets = np.r_[0, np.cumsum(lengths)[:-1]]  # where each span starts in ``positions``
        steps = np.ones(int(lengths.sum()), dtype=np.int64)
        steps[0] = self.starts[0]
        steps[self.offsets[1:]] = self.starts[1:] - ends[:-1] + 1
        self.positions = np.cumsum(steps)

    def locate(self, index: np.ndarray) -> np.ndarray:
        """Where samples of the spans (sorted) are in ``positions``."""
        span = np.searchsorted(self.starts, index, side="right") - 1
        return index - self.starts[span] + self.offsets[span]


@functools.cache
def _k_weighting(rate: int) -> tuple[np.ndarray, int]:
    """``(sos, tail)``: pyloudnorm's K-weighting (high shelf, then high pass) as second-order
    sections, and the samples after which its impulse response stays below 1e-9 of its peak."""
    from pyloudnorm.iirfilter import IIRfilter
    from scipy.signal import sosfilt

    shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
    sos = np.array([np.r_[f.b, f.a] / f.a[0] for f in (shelf, high_pass)])
    impulse = np.zeros(rate)
    impulse[0] = 1.0
    response = np.abs(sosfilt(sos, impulse))
    tail = int(np.flatnonzero(response > 1e-9 * response.max())[-1]) + 1
    return sos, tail


class Meter:
    """BS.1770-4 integrated loudness of ``length`` samples of mono audio, as pyloudnorm
    measures it (the same filters, block bounds and gates; tests compare the two)."""

    def __init__(self, rate: int, length: int):
        self.rate, self.length = rate, length
        self.sos, self.tail = _k_weighting(rate)
        seconds = length / rate
        count = int(np.round((seconds - BLOCK_S) / (BLOCK_S * STEP))) + 1 if length > BLOCK_S * rate else 0
        blocks = np.arange(count)
        self.lower = (BLOCK_S * (blocks * STEP) * rate).astype(np.int64)
        self.upper = np.minimum((BLOCK_S * (blocks * STEP + 1) * rate).astype(np.int64), length)

    def weighted(self, audio: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        return sosfilt(self.sos, np.asarray(audio, dtype=np.float64))

    def energies(self, weighted: np.ndarray) -> np.ndarray:
        """Each block's mean square of the K-weighted signal."""
        running = np.concatenate([[0.0], np.cumsum(np.square(weighted))])
        return np.maximum(running[self.upper] - running[self.lower], 0.0) / (BLOCK_S * self.rate)

    def energy_change(self, weighted: np.ndarray, gain: float, index: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """How each block's energy changes when ``delta`` is added at ``index`` (sorted) to
        the audio whose K-weighted signal is ``gain * weighted``: the change is K-weighted
        on its own, from each place it starts until its response has died out."""
        from scipy.signal import sosfilt

        if index.size == 0:
            return np.zeros(len(self.lower))
        spans = _Spans(index, 0, self.tail, self.length)
        positions = spans.positions
        change = np.zeros(len(positions))
        change[spans.locate(index)] = delta
        # between the spans the response has died out: one pass over them joined is exact
        filtered = sosfilt(self.sos, change)
        squares = filtered * (2 * gain * weighted[positions] + filtered)
        running = np.concatenate([[0.0], np.cumsum(squares)])
        upper, lower = np.searchsorted(positions, self.upper), np.searchsorted(positions, self.lower)
        return (running[upper] - running[lower]) / (BLOCK_S * self.rate)

    @staticmethod
    def lufs(energies: np.ndarray) -> float | None:
        """The gated loudness of these block energies; None when nothing passes the gates."""
        with np.errstate(divide="ignore"):
            blocks = -0.691 + 10 * np.log10(energies)
        audible = energies[blocks >= ABSOLUTE_GATE]
        if audible.size == 0:
            return None
        relative = -0.691 + 10 * math.log10(audible.mean()) + RELATIVE_GATE
        gated = energies[(blocks > relative) & (blocks > ABSOLUTE_GATE)]
        if gated.size == 0:
            return None
        value = -0.691 + 10 * math.log10(gated.mean())
        return value if math.isfinite(value) else None

    def measure(self, audio: np.ndarray) -> float | None:
        return self.lufs(self.energies(self.weighted(audio))) if len(self.lower) else None


def integrated_lufs(audio: np.ndarray, rate: int) -> float | None:
    """Integrated loudness in LUFS; None when too short or silent to measure."""
    return Meter(rate, len(audio)).measure(audio)


def true_peak_dbtp(audio: np.ndarray) -> float | None:
    peak = true_peak(audio)
    return 20 * math.log10(peak) if peak > 0 else None


class Limiter:
    """Where, and by how much, a look-ahead limiter lowers ``audio`` times a gain so that no
    true peak passes ``ceiling`` (linear): the gain needed at each peak, its minimum over
    ``LOOKAHEAD_S`` either side, then a moving average over ``LOOKAHEAD_S`` (which stays at
    or below the minimum at every peak and ramps over that time either side of it)."""

    def __init__(self, audio: np.ndarray, rate: int, ceiling: float, peaks: TruePeaks | None = None):
        self.audio, self.ceiling = audio, ceiling
        self.peaks = peaks or TruePeaks(audio)
        self.width = max(1, int(rate * LOOKAHEAD_S))

    def reductions(self, gain: float) -> tuple[np.ndarray, np.ndarray]:
        """``(index, factor)``: the samples the limiter lowers (sorted) and their factors (< 1)."""
        from scipy.ndimage import minimum_filter1d, uniform_filter1d

        over, peaks = self.peaks.above(self.ceiling / gain)
        if over.size == 0:
            return over, np.zeros(0)
        # the filters reach under 1.5 widths: computed over the samples within 2 widths
        # of a peak (joined, ones between them), they give the whole signal's result
        reach = 2 * self.width + 2
        spans = _Spans(over, reach, reach, len(self.audio))
        needed = np.ones(len(spans.positions))
        needed[spans.locate(over)] = self.ceiling / (gain * peaks.astype(np.float64))
        smooth = uniform_filter1d(
            minimum_filter1d(needed, 2 * self.width + 1, mode="nearest"), self.width, mode="nearest"
        )
        lowered = smooth < 1.0
        return spans.positions[lowered], smooth[lowered]


def _apply(audio: np.ndarray, gain: float, index: np.ndarray, factor: np.ndarray) -> np.ndarray:
    out = audio * np.float32(gain)
    out[index] *= factor.astype(np.float32)
    return out


def limit(audio: np.ndarray, rate: int, ceiling: float) -> np.ndarray:
    """``audio`` with the gain lowered smoothly around every true peak above ``ceiling`` (linear)."""
    audio = np.asarray(audio, dtype=np.float32)
    index, factor = Limiter(audio, rate, ceiling).reductions(1.0)
    return _apply(audio, 1.0, index, factor) if index.size else audio


def normalize(audio: np.ndarray, rate: int, target_lufs: float, ceiling_dbtp: float = CEILING_DBTP):
    """``(audio at target_lufs with no true peak above ceiling_dbtp, LoudnessReport)``."""
    audio = np.asarray(audio, dtype=np.float32)
    meter = Meter(rate, len(audio))
    weighted = meter.weighted(audio) if len(meter.lower) else None
    energies = meter.energies(weighted) if weighted is not None else None
    before = meter.lufs(energies) if energies is not None else None
    if before is None:
        return audio, LoudnessReport(target_lufs, None, None, true_peak_dbtp(audio), ceiling_dbtp)
    ceiling = 10 ** (ceiling_dbtp / 20)
    gain_db = target_lufs - before
    peaks = TruePeaks(audio)
    limiter = Limiter(audio, rate, ceiling, peaks)

    def limited(gain_db: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
        gain = 10 ** (gain_db / 20)
        index, factor = limiter.reductions(gain)
        delta = gain * audio[index].astype(np.float64) * (factor - 1.0)
        blocks = energies * gain**2 + meter.energy_change(weighted, gain, index, delta)
        return index, factor, blocks, meter.lufs(blocks)

    index, factor, blocks, measured = limited(gain_db)
    if index.size == 0:  # no limiting needed: one gain
        gain = 10 ** (gain_db / 20)
        out = audio * np.float32(gain)
        return out, LoudnessReport(target_lufs, before, measured, 20 * math.log10(gain * peaks.max()), ceiling_dbtp)
    # Limiting takes back part of any extra gain: find the gain by the secant method,
    # at most MAX_EXTRA_GAIN_DB above the plain gain (an unreachable target stops there).
    low, high = gain_db, gain_db + MAX_EXTRA_GAIN_DB
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
        index, factor, blocks, measured = limited(gain_db)
    out = _apply(audio, 10 ** (gain_db / 20), index, factor)
    peak = true_peak(out)
    if peak > ceiling:  # the limiter's smooth gain can leave a hair above the ceiling
        scale = ceiling / peak * 0.9999
        out = (out * np.float32(scale)).astype(np.float32)
        blocks, peak = blocks * scale**2, peak * scale
    return out, LoudnessReport(target_lufs, before, meter.lufs(blocks), 20 * math.log10(peak), ceiling_dbtp)
