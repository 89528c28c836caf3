"""The three-factor toy model: a plateau from smooth factor dynamics, removed by clamping a factor."""

import numpy as np
import pytest

from ihcore.book import sweep_registry, sweeps
from ihcore.singh.toy_model import ToyConfig, run, steps_to_fraction
from ihcore.spine.validation import ParameterError


def test_unclamped_model_sits_on_a_plateau_then_learns():
    loss = run(ToyConfig(dim=10, steps=1500, init_scale=0.1), progress=False)["loss"]
    assert loss[300] > 0.9 * loss[0]  # plateau
    assert loss[-1] < 0.01 * loss[0]  # then learned


def test_clamping_one_factor_removes_the_plateau():
    loss = run(ToyConfig(dim=10, steps=1500, init_scale=0.1, clamped="c"), progress=False)["loss"]
    assert loss[300] < 0.01 * loss[0]


def test_misalignment_reaches_zero_when_a_is_aligned_with_its_target():
    result = run(ToyConfig(dim=10, steps=300, init_scale=0.1, clamped="bc"), progress=False)
    assert 0 < result["misalignment"][0] <= 1 and result["misalignment"][-1] < 1e-9
    assert result["clamped"] == "bc" and result["dim"] == 10


def test_with_b_and_c_clamped_the_loss_decays_geometrically_at_the_closed_form_rate():
    # a <- a - lr/n |b*|^2 |c*|^2 (a - a*): the error shrinks by (1 - lr s / n) per step, the loss by its square
    dim, lr, seed = 6, 0.5, 3
    rng = np.random.default_rng(seed)
    _, b_star, c_star = (rng.standard_normal(dim) for _ in range(3))  # the targets, drawn first as in run
    rate = (1 - lr * (b_star @ b_star) * (c_star @ c_star) / dim**3) ** 2
    loss = run(ToyConfig(dim=dim, steps=20, lr=lr, clamped="bc", seed=seed), progress=False)["loss"]
    np.testing.assert_allclose(loss[1:] / loss[:-1], rate, rtol=1e-9)


def test_steps_to_fraction_is_the_first_step_below_the_fraction_of_the_initial_loss():
    assert steps_to_fraction({"loss": np.array([2.0, 1.0, 0.3, 0.1, 0.5])}, 0.1) == 3.0
    assert steps_to_fraction({"loss": np.array([2.0, 1.0])}, 0.1) == np.inf


@pytest.mark.parametrize("field, value, message", [
    ("clamped", "a", "clamped = 'a' is invalid: expected distinct factors among 'b', 'c'"),
    ("clamped", "cc", "clamped = 'cc' is invalid"),
    ("dim", 0, "dim = 0 is invalid: expected an integer >= 1"),
    ("lr", -1.0, "lr = -1.0 is invalid: expected a number > 0"),
])
def test_a_bad_value_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ParameterError, match=message):
        ToyConfig(**{field: value})


def test_the_sweep_runs_the_chapters_three_conditions_at_each_seed_as_direct_runs_do():
    sweep = sweep_registry.SWEEPS["singh-toy"]
    p = sweep.parameters({"toy_init_scale": 0.2, "seed": 3, "n_seeds": 5})
    configs = sweep.configs(p)
    assert [(c.clamped, c.seed) for c in configs] == [(clamped, seed) for clamped in ("", "c", "bc") for seed in range(3, 8)]
    assert all(c.init_scale == 0.2 for c in configs)
    assert sweeps.canonical(sweep.run(configs[6], progress=False)) == sweeps.canonical(run(configs[6], progress=False))
    assert run(configs[0], progress=False)["loss"][0] != run(configs[1], progress=False)["loss"][0]  # seeds differ
