"""Phase detection on progress curves: when each mechanism is learned, the plateau, sharpness.

Inputs are curves sampled at increasing times t (E,) > 0 (except possibly t[0] = 0),
with progress r(t) rising from 0 towards 1 (e.g. r_G for the 4-gram, r_I for the
induction head, see :func:`ihcore.wang.mixed_target.component_weights`). The ICLR 2025/2026
reviewers describe the phases (4-gram first, then a plateau, then a snap to the induction
head); the thresholds and measures below are this book's reconstruction:

* T(r, q)          first time r ≥ q (NaN if never).
* T_G4, T_IH       T(r_G, 0.5), T(r_I, 0.5); plateau length P = T_IH − T_G4.
* plateau window   [T(r_G, 0.9), T(r_I, 0.1)]: the 4-gram is learned, the IH not begun.
* switch width W   T(r_I, 0.9) − (last time before T_IH with r_I < 0.1).
* plateau ratio    T_IH / T(r_G, 0.9).
* end of phase 1   the first evaluation with r_G ≥ 0.9 (an index, :func:`phase_one_end`).
* log-rise         ln(T(r, 0.9) / t₁₀), t₁₀ the last time before T(r, 0.5) with r < 0.1: how
                   many e-folds of time the final 10 % → 90 % rise takes (noise that pokes
                   above 10 % earlier does not count). A rise that escapes a saddle after
                   a long wait is short on this scale; a rise that starts at t = 0 and
                   keeps pace with t is long.
                   Sharpness ratio = log-rise(r_I) / log-rise(r_G): below 1, the switch to
                   the IH is sharper than the lazy 4-gram phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ihcore.spine.curves import first_crossing


def last_time_below_before(t: np.ndarray, values: np.ndarray, level: float, before: float) -> float:
    """Last t < ``before`` with values < level; NaN if none."""
    hits = np.flatnonzero((np.asarray(values) < level) & (np.asarray(t) < before))
    return float(t[hits[-1]]) if hits.size else math.nan


def log_rise(t: np.ndarray, values: np.ndarray) -> float:
    """ln(T(0.9) / t₁₀) (module docstring); NaN if the curve never reaches 0.9 or starts above 0.1."""
    start = last_time_below_before(t, values, 0.1, first_crossing(t, values, 0.5))
    end = first_crossing(t, values, 0.9)
    return math.log(end / start) if start > 0 else math.nan


@dataclass(frozen=True)
class Phases:
    """Phase times of one run (units of t); NaN where a threshold is never reached."""

    t_four_gram: float
    t_induction: float
    plateau_start: float
    plateau_end: float
    switch_width: float
    log_rise_four_gram: float
    log_rise_induction: float

    @property
    def plateau_length(self) -> float:
        return self.t_induction - self.t_four_gram

    @property
    def sharpness_ratio(self) -> float:
        return self.log_rise_induction / self.log_rise_four_gram

    @property
    def width_over_plateau(self) -> float:
        return self.switch_width / self.plateau_length

    @property
    def plateau_ratio(self) -> float:
        """T_IH / plateau start: ≥ 2 means the IH is half-learned only after the 4-gram has
        been 90 % learned for at least as long again."""
        return self.t_induction / self.plateau_start


def detect_phases(t: np.ndarray, r_four_gram: np.ndarray, r_induction: np.ndarray) -> Phases:
    """The phase times of one run from its progress curves, each (E,)."""
    t_induction = first_crossing(t, r_induction, 0.5)
    return Phases(
        t_four_gram=first_crossing(t, r_four_gram, 0.5),
        t_induction=t_induction,
        plateau_start=first_crossing(t, r_four_gram, 0.9),
        plateau_end=first_crossing(t, r_induction, 0.1),
        switch_width=first_crossing(t, r_induction, 0.9) - last_time_below_before(t, r_induction, 0.1, t_induction),
        log_rise_four_gram=log_rise(t, r_four_gram),
        log_rise_induction=log_rise(t, r_induction),
    )


def plateau_deviation(t: np.ndarray, loss: np.ndarray, reference: np.ndarray, start: float, end: float) -> float:
    """max |loss / reference − 1| over start ≤ t ≤ end; NaN if the window holds no time."""
    window = (t >= start) & (t <= end)
    if not window.any():
        return math.nan
    return float(np.max(np.abs(loss[window] / reference[window] - 1)))


def phase_one_end(r_four_gram: np.ndarray) -> int:
    """Index of the first evaluation with r_G ≥ 0.9 (the end of phase 1); the last if never."""
    hits = np.flatnonzero(np.asarray(r_four_gram) >= 0.9)
    return int(hits[0]) if hits.size else len(r_four_gram) - 1


# ---------------------------------------------------------------------------------------------
# Plateaus of a loss curve, without a threshold on the loss


SMOOTHING = 0.25  # e-folds of t: the width of the Gaussian kernel applied to ln L(ln t)
GRID = 400  # points of the uniform ln t grid the curve is resampled on


@dataclass(frozen=True)
class LossPlateaus:
    """The drops and plateaus of one loss curve (:func:`count_plateaus`); times in units of t."""

    drop_times: tuple[float, ...]
    plateau_times: tuple[float, ...]

    @property
    def n_drops(self) -> int:
        return len(self.drop_times)

    @property
    def n_plateaus(self) -> int:
        return len(self.plateau_times)

    @property
    def n_phases(self) -> int:
        """Drops and plateaus between them: the stretches of alternating slope (drop, plateau, drop = 3)."""
        return self.n_drops + self.n_plateaus


def log_slope(t: np.ndarray, loss: np.ndarray, width: float = SMOOTHING) -> tuple[np.ndarray, np.ndarray]:
    """(u, s): the loss curve's log-derivative s = d ln L / d ln t on a uniform grid u = ln t of
    :data:`GRID` points over the positive times, after resampling ln L there (linearly) and
    smoothing it with a Gaussian kernel of standard deviation ``width`` (in e-folds of t; the
    curve is extended by its end values)."""
    t, loss = np.asarray(t, float), np.asarray(loss, float)
    positive = t > 0
    u = np.linspace(np.log(t[positive][0]), np.log(t[positive][-1]), GRID)
    log_loss = np.interp(u, np.log(t[positive]), np.log(loss[positive]))
    step = u[1] - u[0]
    half = int(np.ceil(4 * width / step))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / width) ** 2)
    padded = np.concatenate([np.full(half, log_loss[0]), log_loss, np.full(half, log_loss[-1])])
    smooth = np.convolve(padded, kernel / kernel.sum(), mode="valid")
    return u, np.gradient(smooth, step)


def count_plateaus(t: np.ndarray, loss: np.ndarray, width: float = SMOOTHING) -> LossPlateaus:
    """Drops and plateaus of a loss curve (E,) at times t (E,), read from its log-derivative
    s = d ln L / d ln t (:func:`log_slope`), with no threshold on the loss or on s:

    * a **drop** is a local minimum of s (the loss falling fastest, on log-log axes);
    * a **plateau** is a local maximum of s between two drops (the loss flattest between them).

    The only scale is the smoothing ``width``, fixed before any run (:data:`SMOOTHING`); a
    chapter reports the counts at other widths beside it. A loss that falls once has one drop
    and no plateau; the lazy → plateau → rich sequence has two drops and one plateau.
    """
    u, s = log_slope(t, loss, width)
    interior = np.arange(1, len(s) - 1)
    minima = interior[(s[interior] < s[interior - 1]) & (s[interior] <= s[interior + 1])]
    maxima = interior[(s[interior] > s[interior - 1]) & (s[interior] >= s[interior + 1])]
    if minima.size:
        maxima = maxima[(maxima > minima[0]) & (maxima < minima[-1])]
    else:
        maxima = maxima[:0]
    return LossPlateaus(tuple(float(np.exp(u[i])) for i in minima), tuple(float(np.exp(u[i])) for i in maxima))
