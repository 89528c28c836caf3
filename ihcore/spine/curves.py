"""When a curve first crosses a level: the one definition every study's times are read with.

A curve is ``values`` (E,) sampled at increasing ``times`` (E,) (training steps, or τ).
``direction="up"`` looks for the first sample with ``value >= level`` (a rising score or
weight), ``direction="down"`` for the first with ``value < level`` (a falling loss).
"""

from __future__ import annotations

import math

import numpy as np

DIRECTIONS = ("up", "down")


def first_crossing(times: np.ndarray, values: np.ndarray, level: float, *, direction: str = "up",
                   interpolate: bool = False) -> float:
    """The first time the curve crosses ``level`` in ``direction``; NaN if it never does.

    With ``interpolate`` the time is interpolated linearly between the last sample before
    the crossing and the first after it (the first sample's time if that one already has
    crossed); without, it is the first crossing sample's time.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction = {direction!r} is invalid: expected one of {DIRECTIONS}")
    values = np.asarray(values)
    crossed = np.flatnonzero(values >= level if direction == "up" else values < level)
    if not crossed.size:
        return math.nan
    i = crossed[0]
    if not interpolate or i == 0:
        return float(times[i])
    t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
    return float(t0 + (level - v0) * (t1 - t0) / (v1 - v0))


def first_step_below(steps: np.ndarray, values: np.ndarray, level: float) -> int | None:
    """The first training step at which ``values`` is below ``level`` (None if never): a
    :func:`first_crossing` downwards, as an integer step.

    With the loss and ``level = 0.4 ln 2`` this is Singh et al.'s phase-change time.
    """
    step = first_crossing(steps, values, level, direction="down")
    return None if math.isnan(step) else int(step)
