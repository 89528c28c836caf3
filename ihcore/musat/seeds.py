"""The Musat chapter's seeds: configurations over seeds, per-seed grouping and estimates over seeds.

Every trained claim of the chapter is measured on ``n_seeds`` seeds ``seed .. seed + n_seeds - 1``;
configurations that differ only in their seed train as one ensemble (``run_many`` of each
kind of run). Readings of the ensemble are medians with the order-statistic interval of
:func:`ihcore.spine.claims.median_interval`, printed at the precision it supports
(:func:`ihcore.spine.claims.seeds_estimate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from ihcore.spine.claims import seeds_estimate


def with_seeds(configs: Iterable, p) -> list:
    """Each of ``configs`` at seeds ``p.seed .. p.seed + p.n_seeds - 1`` (seeds innermost)."""
    return [replace(config, seed=p.seed + i) for config in configs for i in range(p.n_seeds)]


def by_seed(results: Sequence[dict]) -> dict[int, list[dict]]:
    """seed -> that seed's results, in order (seeds in first-appearance order)."""
    grouped: dict[int, list[dict]] = {}
    for result in results:
        grouped.setdefault(result["seed"], []).append(result)
    return grouped


def never_as_inf(value: float) -> float:
    """A time or gap that is NaN because an event never happened, as inf (the ledger refuses NaN)."""
    return float("inf") if np.isnan(value) else float(value)


def estimate(values: Sequence[float]) -> str:
    """Median over seeds at the precision its interval supports
    (:func:`ihcore.spine.claims.seeds_estimate`); NaN (an event that never happened) counts as
    inf, and the number of such seeds is named."""
    values = [never_as_inf(float(v)) for v in values]
    never = sum(np.isinf(v) for v in values)
    return seeds_estimate(values) + (f" ({never} of {len(values)} never)" if never else "")
