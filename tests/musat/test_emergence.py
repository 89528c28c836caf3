"""Emergence times, the order gamma3 -> beta2 -> alpha3 and the longest run of thresholds where it holds."""

import math

import numpy as np
import pytest

from ihcore.musat.emergence import (
    crossing_times, emergence_times, in_order, longest_run, order_holds, order_share, relative_gap,
)
from ihcore.musat.reduced import three_parameter_flow


def test_emergence_times_interpolate_per_threshold_and_name_and_are_nan_if_never():
    times = np.array([0.0, 1.0, 2.0])
    theta = np.array([[0.0, 0.0, 0.0], [0.2, 0.4, 0.8], [0.6, 0.45, 1.0]])  # alpha3, beta2, gamma3
    t = emergence_times(times, theta)
    assert list(t) == ["T_alpha3@0.5", "T_beta2@0.5", "T_gamma3@0.5", "T_alpha3@0.1", "T_beta2@0.1", "T_gamma3@0.1"]
    assert t["T_alpha3@0.5"] == pytest.approx(1.75) and t["T_gamma3@0.5"] == pytest.approx(0.625)
    assert math.isnan(t["T_beta2@0.5"])
    named = emergence_times(times, theta, thresholds=(0.1,), names=("a", "b", "c"))
    assert set(named) == {"T_a@0.1", "T_b@0.1", "T_c@0.1"}


def test_crossing_times_per_level_and_column_nan_if_never():
    times = np.array([0.0, 1.0, 2.0, 3.0])
    values = np.array([[0.0, 0.0], [0.2, -0.4], [0.6, -0.8], [1.0, -0.2]])
    crossings = crossing_times(times, values, [0.1, 0.5])
    assert crossings.shape == (2, 2)
    assert crossings[:, 0] == pytest.approx([0.5, 1.75])
    assert np.isnan(crossings[:, 1]).all()  # a negative coefficient never reaches a positive level
    assert crossing_times(times, np.abs(values), [0.5])[0, 1] == pytest.approx(1.25)  # |value| passes 0.5 at 1.25


def test_in_order_and_its_share_over_results_and_thresholds():
    good = {"T_gamma3@0.5": 1.0, "T_beta2@0.5": 2.0, "T_alpha3@0.5": 3.0,
            "T_gamma3@0.1": 1.0, "T_beta2@0.1": 0.5, "T_alpha3@0.1": 3.0}
    assert in_order(good, 0.5) and not in_order(good, 0.1)
    assert in_order({**good, "T_alpha3@0.5": math.nan}, 0.5)  # never reached: after the run's end
    assert not in_order({**good, "T_gamma3@0.5": math.nan}, 0.5)
    assert not in_order({**good, "T_alpha3@0.5": math.nan, "T_beta2@0.5": math.nan}, 0.5)
    assert order_share([good, good]) == 0.5
    assert in_order({"T_a~@0.5": 3.0, "T_b~@0.5": 2.0, "T_c~@0.5": 1.0}, 0.5, names=("a~", "b~", "c~"))


def test_order_holds_only_for_gamma3_then_beta2_then_alpha3():
    # columns alpha3, beta2, gamma3
    crossings = np.array([[3.0, 2.0, 1.0], [2.0, 3.0, 1.0], [3.0, 1.0, 2.0], [np.nan, 2.0, 1.0], [2.0, 2.0, 1.0]])
    assert order_holds(crossings).tolist() == [True, False, False, False, False]


def test_longest_run_of_levels_where_the_order_holds():
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert longest_run(levels, [True, False, True, True, True, False]) == (0.3, 0.5)
    assert longest_run(levels, [True] * 6) == (0.1, 0.6)
    assert all(math.isnan(x) for x in longest_run(levels, [False] * 6))


def test_closed_form_order_holds_at_every_threshold_at_small_n():
    flow = three_parameter_flow(4, 200.0)
    levels = np.linspace(0.05, 1.0, 20)
    assert order_holds(crossing_times(flow.tau, flow.theta, levels)).all()


def test_relative_gap():
    assert relative_gap(12.0, 10.0) == pytest.approx(0.2) and relative_gap(8.0, 10.0) == pytest.approx(0.2)
