"""The first crossing of a level, upwards or downwards, stepped or interpolated."""

import math

import numpy as np
import pytest

from ihcore.spine.curves import first_crossing, first_step_below

STEPS = np.array([0, 10, 20, 30, 40])
LOSS = np.array([1.0, 0.3, 0.5, 0.2, 0.1])


def test_first_step_below_is_the_first_evaluation_strictly_below_the_level():
    assert first_step_below(STEPS, LOSS, 0.35) == 10
    assert first_step_below(STEPS, LOSS, 0.2) == 40  # 0.2 itself is not below
    assert first_step_below(STEPS, LOSS, 0.05) is None
    assert isinstance(first_step_below(STEPS, LOSS, 0.35), int)


def test_upwards_the_level_itself_counts():
    values = np.array([0.0, 0.2, 0.5, 0.4, 0.9])
    assert first_crossing(STEPS, values, 0.5) == 20
    assert first_crossing(STEPS, values, 0.45) == 20
    assert math.isnan(first_crossing(STEPS, values, 0.95))


def test_interpolation_is_linear_between_the_samples_around_the_crossing():
    times = np.array([0.0, 1.0, 2.0])
    assert first_crossing(times, np.array([0.0, 0.2, 0.6]), 0.4, interpolate=True) == pytest.approx(1.5)
    assert first_crossing(times, np.array([0.7, 0.8, 0.9]), 0.5, interpolate=True) == 0.0  # already above
    assert first_crossing(STEPS, LOSS, 0.4, direction="down", interpolate=True) == pytest.approx(10 * 0.6 / 0.7)


def test_an_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction = 'sideways'"):
        first_crossing(STEPS, LOSS, 0.5, direction="sideways")
