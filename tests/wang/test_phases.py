"""ihcore.wang.phases: phase times, plateau and sharpness on synthetic progress curves."""

import math

import numpy as np
import pytest

from ihcore.wang import phases
from tests.wang.helpers import LAZY, SWITCH, T


def test_phase_times_on_synthetic_curves():
    found = phases.detect_phases(T, LAZY, SWITCH)
    assert found.t_four_gram == pytest.approx(2 * math.log(2), rel=0.01)
    assert found.t_induction == pytest.approx(100, rel=0.01)
    assert found.plateau_start == pytest.approx(2 * math.log(10), rel=0.01)
    assert found.plateau_end == pytest.approx(100 - 2 * math.log(9), rel=0.01)
    assert found.switch_width == pytest.approx(4 * math.log(9), abs=1.2)  # ± two grid steps near t = 100
    assert found.log_rise_four_gram == pytest.approx(math.log(math.log(10) / math.log(10 / 9)), rel=0.01)
    assert found.sharpness_ratio < 0.1
    assert found.plateau_length == pytest.approx(100 - 2 * math.log(2), rel=0.01)


def test_a_curve_that_never_rises_has_no_time():
    found = phases.detect_phases(T, LAZY, 0.05 * np.ones_like(T))
    assert math.isnan(found.t_induction) and math.isnan(found.plateau_end) and math.isnan(found.sharpness_ratio)


def test_plateau_deviation():
    loss = np.where(T < 50, 1.0, 2.0)
    assert phases.plateau_deviation(T, loss, np.ones_like(T), 1, 10) == 0
    assert phases.plateau_deviation(T, loss, np.ones_like(T), 1, 60) == 1
    assert math.isnan(phases.plateau_deviation(T, loss, np.ones_like(T), 2000, 3000))


def test_phase_one_ends_at_the_first_r_G_of_nine_tenths_or_at_the_last_evaluation():
    assert phases.phase_one_end(np.array([0.0, 0.5, 0.9, 0.95])) == 2
    assert phases.phase_one_end(np.array([0.0, 0.5, 0.8])) == 2


def test_plateaus_are_counted_from_the_log_derivative_without_a_threshold():
    t = np.geomspace(1, 1e4, 600)
    drop = lambda centre: 1 / (1 + np.exp(-6 * (np.log(t) - np.log(centre))))
    once = phases.count_plateaus(t, 1.0 - 0.9 * drop(100))
    assert (once.n_drops, once.n_plateaus, once.n_phases) == (1, 0, 1)
    twice = phases.count_plateaus(t, 1.0 - 0.5 * drop(10) - 0.45 * drop(1000))
    assert (twice.n_drops, twice.n_plateaus) == (2, 1)
    assert twice.drop_times[0] == pytest.approx(10, rel=0.3) and twice.drop_times[1] == pytest.approx(1000, rel=0.3)  # ln L: near the centres
    assert 10 < twice.plateau_times[0] < 1000
    small = phases.count_plateaus(t, 1e-3 * (1.0 - 0.5 * drop(10) - 0.45 * drop(1000)))  # scale-free
    assert small == twice
    _, s = phases.log_slope(t, t**-0.5)
    np.testing.assert_allclose(s[50:-50], -0.5, atol=1e-6)  # a power law: a constant log-slope (away from the padded ends)
