"""Training recipes as controls: the recipes' configurations, small inits, rise bands and gaps,
reading a run up to a horizon, the verdicts per recipe, and the shipped sweeps."""

import dataclasses

import numpy as np
import pytest
import torch

from ihcore.across import context_scaling, recipes, subcircuit_order
from ihcore.across.subcircuit_order import OrderConfig, gap_band, judge_gap, order_over_seeds, rise_band, rise_time
from ihcore.book import sweeps
from ihcore.book.sweep_registry import SWEEPS
from ihcore.spine.claims import ClaimsLedger, at_least, between

RECIPE_SWEEPS = ("across-recipe-order", "across-recipe-scaling", "across-recipe-long-context")


def test_every_recipe_trains_its_seeds_with_its_own_optimizer_init_and_learning_rate():
    p = SWEEPS["across-recipe-order"].parameters({"seed": 2})
    configs = recipes.order_configs(p)
    assert len(configs) == len(recipes.RECIPES) * p.recipe_n_seeds
    for recipe in recipes.RECIPES:
        mine = [c for c in configs if recipes.recipe_of(c) == recipe.name]
        assert [c.seed for c in mine] == list(range(2, 2 + p.recipe_n_seeds))
        assert {(c.optimizer, c.init_scale, c.lr, c.steps, c.eval_every) for c in mine} == {
            (recipe.optimizer, recipe.init_scale, recipe.lr_singh, recipe.order_steps, recipe.order_eval_every)}
    scaling = recipes.scaling_configs(p)
    with_scaling = [r for r in recipes.RECIPES if r.scaling_steps]
    n_values = context_scaling.context_lengths("musat", p.recipe_musat_n_max)
    assert len(scaling) == len(with_scaling) * len(n_values) * p.recipe_n_seeds
    assert {c.task for c in scaling} == {"musat"} and {c.n_tokens for c in scaling} == {32}
    long = recipes.scaling_configs(SWEEPS["across-recipe-scaling"].parameters({"recipe_musat_n_max": 32}))
    assert max(c.n_pairs for c in long) == 32 and {c.n_tokens for c in long} == {128}  # 2N <= half the vocabulary
    assert {(recipes.recipe_of(c), c.lr, c.steps) for c in scaling} == {
        (r.name, r.lr_musat, r.scaling_steps) for r in with_scaling}


def test_the_longer_context_runs_are_three_n_a_factor_two_apart_on_one_vocabulary_for_the_judged_recipes():
    p = SWEEPS["across-recipe-long-context"].parameters({"seed": 1})
    configs = recipes.long_context_configs(p)
    judged = [r for r in recipes.RECIPES if r.judge_slope]
    assert [r for r in recipes.RECIPES if r.long_steps] == judged  # sgd-small's runs do not reach the phase change
    assert recipes.long_context_lengths(16) == (4, 8, 16)
    assert len(configs) == len(judged) * 3 * p.recipe_n_seeds
    assert {c.n_tokens for c in configs} == {64} and {c.task for c in configs} == {"musat"}
    for k in range(0, len(configs), p.recipe_n_seeds):  # each chunk of recipe_n_seeds is one ensemble
        chunk = configs[k:k + p.recipe_n_seeds]
        assert [c.seed for c in chunk] == list(range(1, 1 + p.recipe_n_seeds))
        assert len({dataclasses.replace(c, seed=0) for c in chunk}) == 1
    for recipe in judged:
        mine = [c for c in configs if recipes.recipe_of(c) == recipe.name]
        assert sorted({c.n_pairs for c in mine}) == [4, 8, 16]
        assert {(c.n_pairs, c.lr, c.steps, c.eval_every) for c in mine} == {
            (n, recipe.lr_musat, recipe.long_steps * n // 16, recipe.long_eval_every) for n in (4, 8, 16)}
    wide = recipes.long_context_configs(SWEEPS["across-recipe-long-context"].parameters({"recipe_long_n_max": 32}))
    assert sorted({c.n_pairs for c in wide}) == [8, 16, 32] and {c.n_tokens for c in wide} == {128}
    with pytest.raises(ValueError, match="recipe_long_n_max = 10 is invalid: expected one of 8, 12"):
        SWEEPS["across-recipe-long-context"].parameters({"recipe_long_n_max": 10})


def test_recipes_that_share_an_optimizer_and_init_are_told_apart_by_their_learning_rate():
    p = SWEEPS["across-recipe-scaling"].parameters({})
    names = [recipes.recipe_of(c) for c in recipes.order_configs(p) + recipes.scaling_configs(p)]
    assert set(names) == set(recipes.RECIPE_NAMES)
    adam, adam_small = recipes.get_recipe("adam"), recipes.get_recipe("adam-small")
    assert (adam.optimizer, adam.init_scale) == (adam_small.optimizer, adam_small.init_scale)
    assert adam_small.lr_singh < adam.lr_singh and adam_small.lr_musat < adam.lr_musat
    with pytest.raises(KeyError):
        recipes.recipe_of({"optimizer": "adam", "init_scale": 1.0, "lr": 0.123})


def test_only_judged_recipes_get_a_slope_claim_and_every_recipe_has_n_scaling_runs():
    assert all(r.scaling_steps for r in recipes.RECIPES)
    assert [r.name for r in recipes.RECIPES if not r.judge_slope] == ["sgd-small"]


def test_recipe_defaults_give_at_least_ten_seeds():
    assert recipes.DEFAULT_N_SEEDS >= 10


def test_a_small_init_is_the_standard_draw_scaled():
    task = context_scaling.build_task(context_scaling.scaling_config("musat", 3))
    standard = context_scaling.build_model(context_scaling.scaling_config("musat", 3), task)
    small = context_scaling.build_model(context_scaling.scaling_config("musat", 3, init_scale=0.3), task)
    for (name, a), (_, b) in zip(standard.named_parameters(), small.named_parameters()):
        if name != "b_U":
            torch.testing.assert_close(b, 0.3 * a)
    config = OrderConfig(init_scale=0.3)
    order_task = subcircuit_order.singh_task(config.n_labels, config.n_classes, config.item_dim, config.prototypes, 0)
    big = subcircuit_order.build_model(OrderConfig(), order_task)
    torch.testing.assert_close(subcircuit_order.build_model(config, order_task).W_E, 0.3 * big.W_E)


def test_the_optimizer_reaches_training():
    config = context_scaling.scaling_config("musat", 2, steps=3, eval_every=1, eval_batch_size=16)
    adam = context_scaling.run(config, progress=False)
    sgd = context_scaling.run(dataclasses.replace(config, optimizer="sgd"), progress=False)
    assert adam["loss"][0] == sgd["loss"][0] and not np.allclose(adam["loss"][1:], sgd["loss"][1:])
    with pytest.raises(ValueError):
        OrderConfig(optimizer="rmsprop")


def ramp(steps, start, end, noise=0.0, seed=0):
    """A curve 0 until ``start``, rising linearly to 1 at ``end``, then flat; plus Gaussian noise."""
    values = np.clip((steps - start) / (end - start), 0, 1)
    return values + noise * np.random.default_rng(seed).standard_normal(len(steps))


def test_a_rise_band_holds_the_rise_time_and_widens_with_noise():
    steps = np.arange(0, 1001, 10)
    clean = rise_band(steps, ramp(steps, 200, 400))
    assert clean[0] < rise_time(steps, ramp(steps, 200, 400)) <= clean[1]
    assert clean[1] - clean[0] <= 20  # noiseless: the evaluation grid alone
    low, high = rise_band(steps, ramp(steps, 200, 400, noise=0.05))
    assert high - low > clean[1] - clean[0] and low < 300 < high
    assert all(np.isnan(rise_band(steps, np.zeros(len(steps)))))


def test_gaps_are_judged_on_their_bands():
    assert gap_band((300, 320), (100, 120)) == (180, 220)
    assert judge_gap((180, 220)) == "after" and judge_gap((-50, -10)) == "before"
    assert judge_gap((-10, 30)) == "tied" and judge_gap((np.nan, 3)) == "none"


STEPS = np.arange(0, 2001, 10)


def fake_run(seed, starts, lens=recipes.ORDER_LENS):
    """A run whose subcircuit curves (each in its lens's direction: a loss falls) change from ``starts[sub]``."""
    return {"seed": seed, "steps": int(STEPS[-1]), "eval_steps": STEPS,
            **{f"curve/{lens}/{sub}": subcircuit_order.DIRECTIONS[lens][sub] * ramp(STEPS, start, start + 100)
               for sub, start in starts.items()}}


def test_order_over_seeds_settles_a_seed_only_when_both_gaps_clear_their_bands():
    runs = [fake_run(0, {"C": 100, "B": 300, "A": 500}), fake_run(1, {"C": 100, "B": 105, "A": 500}),
            fake_run(2, {"C": 500, "B": 300, "A": 100})]
    order = order_over_seeds(runs, recipes.ORDER_LENS)
    assert order["settled"] == ["ordered", "undecided", "against"]
    assert order["gaps"]["B-C"][0] == 200 and order["gaps"]["A-B"][0] == 200
    assert order["settled_counts"] == {"ordered": 1, "undecided": 1, "against": 1, "no rise": 0}


def test_a_run_read_up_to_a_horizon_is_the_run_stopped_there():
    steps = np.arange(0, 2001, 10)
    late = ramp(steps, 1200, 1300)  # rises only after the horizon: no rise time up to it
    assert np.isnan(rise_time(steps, late, horizon=1000)) and rise_time(steps, late) == 1250
    slow = np.minimum(steps / 2000, 1.0)  # still rising at the end: the half-length run's half rise is earlier
    assert rise_time(steps, slow, horizon=1000) < rise_time(steps, slow)


def test_a_diverged_run_is_read_up_to_its_last_finite_evaluation():
    steps = np.arange(0, 2001, 10)
    curve = ramp(steps, 200, 400)
    diverged = np.where(steps >= 1000, np.nan, curve)
    assert rise_time(steps, diverged) == rise_time(steps, curve, horizon=990)
    assert subcircuit_order.diverged_at({"loss": diverged, "eval_steps": steps}) == 1000
    assert subcircuit_order.diverged_at({"loss": curve, "eval_steps": steps}) is None


def test_the_horizon_check_counts_the_seeds_whose_order_changes():
    runs = [fake_run(0, {"C": 100, "B": 300, "A": 500}), fake_run(1, {"C": 100, "B": 300, "A": 1200})]
    check = recipes.horizon_check(runs)
    assert check["horizons"] == (1000, 2000)
    assert check["changed"].tolist() == [False, True] and check["n_changed"] == 1
    assert check["shift"]["C"][0] == 0


def test_verdicts_and_sentence_come_from_the_claims():
    ledger = ClaimsLedger("test")
    for claim_id, rule, partly in (("order", at_least(0.5), None), ("slope", between(1.5, 2.5), between(1.0, 3.0))):
        ledger.expect(claim_id, source="s", provenance="paper", statement="s", quantity="q", rule=rule,
                      partly=partly, kind="beyond")
    order = ledger.measure("order", [1.0] * 10)
    slope = ledger.measure("slope", [1.2, 1.3, 1.1, 1.4, 1.2, 1.25, 1.3, 1.35, 1.15, 1.2])
    verdicts = recipes.recipe_verdicts(order, slope)
    assert verdicts == {"order": "appears", "law": "holds in part", "long law": "not run"}
    assert recipes.recipe_verdicts(None, None) == {"order": "not run", "law": "not run", "long law": "not run"}
    assert recipes.recipe_verdicts(order, slope, long_slope_claim=order)["long law"] == "holds"
    assert recipes.recipe_verdicts(order, None, n_no_rise=6, n_seeds=10)["order"] == recipes.NOT_REACHED
    sentence = recipes.recipe_sentence(recipes.RECIPES[0], verdicts, order, slope, 10, 10)
    assert "appears" in sentence and "holds in part" in sentence and "nan" not in sentence
    assert "N = 4" not in sentence
    longer = recipes.recipe_sentence(recipes.RECIPES[0], recipes.recipe_verdicts(order, slope, long_slope_claim=slope),
                                     order, slope, 10, 10, long_slope_claim=slope, long_n=(4, 8, 16))
    assert "at N = 4, 8, 16 it holds in part (median slope" in longer
    # N-scaling runs made but not judged: the law is not reached when at most half the seeds have a slope
    assert recipes.recipe_verdicts(order, None, n_seeds=10, n_slopes=0)["law"] == recipes.NOT_REACHED
    assert recipes.recipe_verdicts(order, None, n_seeds=10, n_slopes=8)["law"] == "not judged"
    unjudged = recipes.recipe_sentence(recipes.get_recipe("sgd-small"), recipes.recipe_verdicts(order, None, n_seeds=10,
                                       n_slopes=0), order, None, 10, 10, n_slopes=0)
    assert recipes.NOT_REACHED in unjudged and "0 of 10 seeds" in unjudged


@pytest.mark.parametrize("name", RECIPE_SWEEPS)
def test_the_shipped_recipe_sweeps_load_and_are_the_sweeps_configurations_at_the_defaults(name):
    sweep = SWEEPS[name]
    p = sweep.parameters({})
    shipped = sweeps.load_shipped(name, p)  # raises unless the configurations equal the sweep's at p
    assert len(shipped["runs"]) == len(sweep.build(p))
    assert shipped["provenance"]["runs"] == len(shipped["runs"])
    assert {recipes.recipe_of(run["config"]) for run in shipped["runs"]} <= set(recipes.RECIPE_NAMES)


def test_the_largest_n_slope_is_the_local_exponent_of_the_two_largest_n():
    fit = {"n_values": [2, 4, 8], "times": {0: [100, 400, 1600], 1: [100, 200, None], 2: [50, 100, 150]}}
    slopes = recipes.largest_n_slopes(fit)
    assert len(slopes) == 2 and abs(slopes[0] - 2) < 1e-12 and abs(slopes[1] - np.log2(1.5)) < 1e-12


def scaling_run(n: int, phase_change: int | None, loss: list[float]) -> dict:
    return {"n_pairs": n, "steps": 1000, "phase_change": phase_change, "censored": phase_change is None,
            "loss": loss, "eval_steps": list(range(0, 100 * len(loss), 100))}


def test_per_n_rows_count_crossings_plateaus_and_divergences_and_say_when_most_never_crossed():
    runs = [scaling_run(2, 200, [1.0, 0.1]), scaling_run(2, 400, [1.0, float("nan")]), scaling_run(2, None, [1.0, 0.9]),
            scaling_run(4, None, [1.5, 1.45]), scaling_run(4, None, [1.5, 1.2]), scaling_run(4, 300, [1.5, 0.2])]
    fit = {"n_values": [2, 4]}
    two, four = recipes.per_n_rows("sgd", fit, runs)
    assert two[:6] == ["sgd", 2, 1000, "2 of 3", 2, 1] and four[:6] == ["sgd", 4, 1000, "1 of 3", 1, 0]
    assert four[6] == "after the cap (1000)" and "cap" not in two[6]  # N = 2: the median seed crossed
    assert len(two) == len(recipes.PER_N_COLUMNS)
    assert recipes.fit_line("sgd", {**fit, "n_runs": 6, "n_censored": 3, "dropped_seeds": [1]}, runs) == (
        "sgd: N = [2, 4], 6 runs, 3 censored, 1 diverged, 1 seeds without a slope")


def test_a_local_slope_line_needs_a_seed_crossing_at_both_largest_n_and_a_claim_not_run_reads_not_run():
    assert recipes.local_slope_line("sgd", {"n_values": [2, 4], "times": {0: [100, None]}}) is None
    line = recipes.local_slope_line("sgd", {"n_values": [2, 4], "times": {0: [100, 400], 1: [100, 400]}})
    assert line.startswith("sgd: slope between N = 2 and 4 ≈ 2") and line.endswith("over 2 seeds")
    assert recipes.verdict_cell("the N² law", "not run") == "not run"
    assert recipes.verdict_cell("the N² law", "holds in part") == "the N² law holds in part"
