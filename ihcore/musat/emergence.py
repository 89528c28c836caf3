"""Emergence times and the order γ3 → β2 → α3, read off trajectories.

The emergence time ``T_theta(c)`` is the first time a coefficient reaches the level c
(Musat et al.'s Definition 1 uses c = 0.5, their Appendix F c = 0.1, as the ICLR 2026
reviewers report), interpolated linearly between evaluations (this book's choice): the
spine's :func:`ihcore.spine.curves.first_crossing`. ``t_ICL = T_alpha3(0.5)``. The order
the paper describes is ``T_gamma3 < T_beta2 < T_alpha3``.

Emergence times are stored as ``T_<name>@<c>`` (e.g. ``T_alpha3@0.5``) in the result dicts
of every run of the study; ``names`` are the three coefficients in the order
(alpha3, beta2, gamma3), or the standard model's measures in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ihcore.musat.subspace import KEY_COEFFICIENTS
from ihcore.spine.curves import first_crossing

THRESHOLDS = (0.5, 0.1)  # Definition 1 and Appendix F


def emergence_times(times: np.ndarray, values: np.ndarray, thresholds: Sequence[float] = THRESHOLDS,
                    names: Sequence[str] = KEY_COEFFICIENTS) -> dict[str, float]:
    """``T_<name>@<c>`` for each column of ``values`` (S, len(names)) at each threshold c; NaN if never reached.

    ``times`` (S,); the keys run over the thresholds first, then the names.
    """
    return {
        f"T_{name}@{c:g}": first_crossing(times, values[:, k], c, interpolate=True)
        for c in thresholds for k, name in enumerate(names)
    }


def crossing_times(times: np.ndarray, values: np.ndarray, levels) -> np.ndarray:
    """(C, K) first time each column of ``values`` (S, K) reaches each of the C ``levels``; NaN if never.

    ``times`` (S,). Pass ``np.abs(values)`` for the first time a coefficient passes a level
    in absolute value.
    """
    values = np.asarray(values)
    return np.array([[first_crossing(times, values[:, k], c, interpolate=True) for k in range(values.shape[1])]
                     for c in levels])


def in_order(times: Mapping[str, float], c: float, names: Sequence[str] = KEY_COEFFICIENTS) -> bool:
    """Whether ``T_gamma3 < T_beta2 < T_alpha3`` at threshold ``c`` in ``times`` (a result holding
    ``T_<name>@<c>``; ``names`` in the order alpha3, beta2, gamma3).

    A time that is NaN (the level was never reached) counts as after the run's end (+inf, a
    censored time): a coefficient that never reaches c comes after every one that does, and
    two that never reach it are not in order. (Before, any NaN made the case "not in order";
    this was changed after seeing Musat's full model at N = 2, where α3 or β2 ends near 0.5
    and whether it crosses 0.5 at all changed with a 7th-digit change of the arithmetic.)"""
    late, middle, early = (math.inf if math.isnan(t) else t for t in (times[f"T_{name}@{c:g}"] for name in names))
    return bool(early < middle < late)


def order_share(results: Iterable[Mapping[str, float]], thresholds: Sequence[float] = THRESHOLDS) -> float:
    """The share of (result, threshold) cases with :func:`in_order`."""
    return float(np.mean([in_order(result, c) for result in results for c in thresholds]))


def order_holds(crossings: np.ndarray) -> np.ndarray:
    """(C,) bool: T_gamma3 < T_beta2 < T_alpha3 in each row of ``crossings`` (C, 3), columns in
    ``KEY_COEFFICIENTS`` order (alpha3, beta2, gamma3); False where a time is NaN (never reached)."""
    t = np.asarray(crossings)
    return (t[:, 2] < t[:, 1]) & (t[:, 1] < t[:, 0])


def longest_run(levels, holds) -> tuple[float, float]:
    """(lowest, highest) level of the longest run of consecutive ``levels`` (C,) where ``holds`` (C,) is True;
    (NaN, NaN) if it never holds."""
    best, start = (0, None), None
    for i, ok in enumerate(list(holds) + [False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[0]:
                best = (i - start, start)
            start = None
    length, first = best
    return (float(levels[first]), float(levels[first + length - 1])) if length else (float("nan"), float("nan"))


def relative_gap(value: float, reference: float) -> float:
    """``|value - reference| / reference``: how far an emergence time is from a reference run's."""
    return abs(value - reference) / reference
