"""The shared fits: lines, power laws on log-log axes and slopes over seeds with a t interval."""

import math

import numpy as np
import pytest

from ihcore.spine import fits


@pytest.mark.parametrize("exponent", [-2.0, 0.5, 1.0, 2.0, 3.7])
def test_exact_power_law_recovers_its_exponent(exponent):
    x = np.array([2, 3, 4, 6, 8, 16])
    fit = fits.power_law_fit(x, 0.3 * x**exponent)
    assert fit.slope == pytest.approx(exponent, abs=1e-10)
    assert math.exp(fit.intercept) == pytest.approx(0.3)
    assert fit.r_squared == pytest.approx(1.0)
    assert fits.loglog_slope(x, 0.3 * x**exponent) == pytest.approx(exponent)


def test_line_fit_slope_intercept_and_r_squared():
    fit = fits.line_fit([1, 2, 3], [3, 5, 7])
    assert (fit.slope, fit.intercept, fit.r_squared, fit.n_points) == pytest.approx((2, 1, 1, 3))
    noisy = fits.line_fit([0, 1, 2, 3], [0, 2, 1, 3])
    assert 0 < noisy.r_squared < 1


def test_power_law_fit_drops_censored_points():
    x = np.array([2, 4, 8, 16])
    y = np.array([4.0, 16.0, np.inf, np.nan])
    fit = fits.power_law_fit(x, y)
    assert fit.slope == pytest.approx(2) and fit.n_points == 2


def test_input_checks():
    with pytest.raises(ValueError, match="at least 2 points"):
        fits.line_fit([1], [1])
    with pytest.raises(ValueError, match="same length"):
        fits.line_fit([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        fits.line_fit([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="distinct x"):
        fits.line_fit([2, 2, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2 points"):
        fits.power_law_fit([2, 4], [1.0, np.inf])  # one usable point left
    assert math.isnan(fits.loglog_slope([2, 4], [1.0, -1.0]))
    with pytest.raises(ValueError, match="level"):
        fits.mean_interval([1.0, 2.0], level=1.5)
    with pytest.raises(ValueError, match="finite"):
        fits.mean_interval([1.0, np.nan])
    with pytest.raises(ValueError, match="y arrays"):
        fits.slope_interval([[1, 2]], [[1, 2], [1, 2]])


def test_interval_is_mean_plus_minus_t_times_standard_error():
    interval = fits.mean_interval([1.0, 2.0, 3.0])
    # t_{2}(0.975) = 4.302652729911275, s = 1, n = 3
    assert interval.mean == 2.0
    assert interval.half_width == pytest.approx(4.302652729911275 / math.sqrt(3))
    assert interval.covers(2.0) and not interval.covers(5.0)
    single = fits.mean_interval([1.5])
    assert single.mean == 1.5 and math.isnan(single.low) and math.isnan(single.high)


def test_slope_interval_fits_each_seed_separately():
    x = np.array([2, 4, 8])
    interval = fits.slope_interval([x, x], [x**1.0, x**3.0])
    assert interval.slopes == pytest.approx([1.0, 3.0])
    assert interval.mean == pytest.approx(2.0)
    linear = fits.slope_interval([x, x], [2 * x, 4 * x], log_log=False)
    assert linear.slopes == pytest.approx([2.0, 4.0])


def test_interval_covers_the_true_slope_at_its_nominal_rate():
    """Noisy power laws (log-normal noise, 4 seeds of 5 points): the 95% interval covers the
    true exponent in about 95% of 2000 synthetic draws (binomial sd 0.5%)."""
    rng = np.random.default_rng(0)
    x = np.array([2, 3, 4, 6, 8])
    draws, seeds, true_slope = 2000, 4, 2.0
    covered = 0
    for _ in range(draws):
        ys = [5 * x**true_slope * np.exp(0.3 * rng.standard_normal(x.size)) for _ in range(seeds)]
        covered += fits.slope_interval([x] * seeds, ys, level=0.95).covers(true_slope)
    assert covered / draws == pytest.approx(0.95, abs=0.02)
    # a 50% interval covers about half the time
    covered = sum(
        fits.slope_interval([x] * seeds, [x**true_slope * np.exp(0.3 * rng.standard_normal(x.size)) for _ in range(seeds)],
                            level=0.5).covers(true_slope)
        for _ in range(draws)
    )
    assert covered / draws == pytest.approx(0.5, abs=0.04)

