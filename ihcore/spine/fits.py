"""Line fits shared by the studies: least squares, power laws on log-log axes, slopes over seeds.

* :func:`line_fit`: y ≈ slope·x + intercept by least squares, with R².
* :func:`power_law_fit`: y ≈ C·x^exponent, fitted as a line of log y against log x; points
  that are not finite and positive are dropped (a censored run is NaN or inf).
* :func:`slope_interval`: the confidence interval of a slope over seeds. Each seed is fitted
  on its own (one slope per seed), then the slopes are summarised as
  mean ± t_{n-1}(1 − (1 − level)/2)·s/√n, s the sample standard deviation of the n slopes.
  Seeds are the independent replicates; points of one seed share its initialisation and
  data, so pooling them into one fit would understate the spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class LineFit:
    """y ≈ slope·x + intercept; r_squared = 1 − var(residual)/var(y); n_points used."""

    slope: float
    intercept: float
    r_squared: float
    n_points: int


def line_fit(x, y) -> LineFit:
    """Least-squares line through (x, y), both (n,) with n ≥ 2 finite points and x not all equal."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-d arrays of the same length, got shapes {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"a line fit needs at least 2 points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("a line fit needs finite x and y")
    if np.ptp(x) == 0:
        raise ValueError("a line fit needs at least two distinct x values")
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    return LineFit(float(slope), float(intercept), float(1 - residual.var() / y.var()), int(x.size))


def power_law_fit(x, y) -> LineFit:
    """y ≈ exp(intercept)·x^slope: :func:`line_fit` of log y against log x.

    Points where x or y is not finite and positive are dropped first (censored runs); a
    ValueError if fewer than two distinct x remain.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    return line_fit(np.log(x[ok]), np.log(y[ok]))


def loglog_slope(x, y) -> float:
    """The exponent of :func:`power_law_fit`; NaN if fewer than two usable points (no error)."""
    try:
        return power_law_fit(x, y).slope
    except ValueError:
        return float("nan")


@dataclass(frozen=True)
class SlopeInterval:
    """Slopes fitted per seed and their mean with a two-sided confidence interval.

    slopes: (n,) one slope per seed; low/high: mean ∓ t·s/√n (NaN if n < 2); level: e.g. 0.95.
    """

    slopes: np.ndarray
    mean: float
    low: float
    high: float
    level: float

    @property
    def n(self) -> int:
        return int(self.slopes.size)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def covers(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


def mean_interval(values, level: float = 0.95) -> SlopeInterval:
    """Mean of ``values`` (n,) ± the Student-t half-width t_{n-1}·s/√n at confidence ``level``."""
    values = np.asarray(values, float)
    if values.ndim != 1 or values.size < 1:
        raise ValueError(f"need a 1-d array of at least one value, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mean = float(values.mean())
    if values.size < 2:
        return SlopeInterval(values, mean, math.nan, math.nan, level)
    half = float(stats.t.ppf(0.5 + level / 2, df=values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return SlopeInterval(values, mean, mean - half, mean + half, level)


def slope_interval(x_per_seed, y_per_seed, level: float = 0.95, log_log: bool = True) -> SlopeInterval:
    """Fit each seed separately (log-log by default), then :func:`mean_interval` of the slopes.

    ``x_per_seed``, ``y_per_seed``: sequences of (n_i,) arrays, one per seed. Points that are
    not finite and positive are dropped in a log-log fit (censored runs); a seed left with
    fewer than two distinct x is a ValueError (drop it before calling, and say so).
    """
    if len(x_per_seed) != len(y_per_seed):
        raise ValueError(f"got {len(x_per_seed)} x arrays and {len(y_per_seed)} y arrays")
    fit = power_law_fit if log_log else line_fit
    return mean_interval([fit(x, y).slope for x, y in zip(x_per_seed, y_per_seed)], level)
