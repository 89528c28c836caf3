"""The chapter's seeds: configurations over seeds, grouping by seed and estimates printed at their precision."""

import math
from dataclasses import dataclass
from types import SimpleNamespace

from ihcore.musat.seeds import by_seed, estimate, never_as_inf, with_seeds


@dataclass(frozen=True)
class Config:
    n: int
    seed: int = 0


def test_with_seeds_runs_each_config_at_seed_to_seed_plus_n_seeds_minus_one_seeds_innermost():
    p = SimpleNamespace(seed=4, n_seeds=3)
    assert with_seeds([Config(1), Config(2)], p) == [Config(1, 4), Config(1, 5), Config(1, 6),
                                                     Config(2, 4), Config(2, 5), Config(2, 6)]


def test_by_seed_groups_results_in_order():
    results = [{"seed": 1, "n": 2}, {"seed": 0, "n": 2}, {"seed": 1, "n": 4}]
    assert by_seed(results) == {1: [results[0], results[2]], 0: [results[1]]}


def test_estimate_prints_the_median_at_the_precision_of_its_interval_not_one_seeds_digits():
    assert estimate([0.91, 0.93, 0.92, 0.95, 0.90]) == "0.9"  # range 0.05: tenths
    assert estimate([120.4, 131.9, 125.2, 129.7, 127.1]) == "130"  # range 11.5: tens
    assert estimate([0.4, 0.40000001, 0.4, 0.39999999, 0.4]) == "0.4"  # seeds agree to rounding: 3 digits
    assert estimate([1.0, 1.0, math.nan, 1.0, math.inf]) == "1 (2 of 5 never)"


def test_never_is_inf_so_the_ledger_can_judge_it():
    assert never_as_inf(float("nan")) == math.inf and never_as_inf(0.5) == 0.5
