"""ihcore.wang.six_parameter: the model, its configuration, one run, ensembles, the chapter's lists and summaries."""

import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from ihcore.book.chapters import WANG
from ihcore.book.sweep_registry import SWEEPS
from ihcore.spine.validation import ParameterError
from ihcore.wang import six_parameter
from ihcore.wang.mixed_target import MixedTarget, sample_tokens
from ihcore.wang.six_parameter import SixParameterConfig
from tests.wang.helpers import LAZY, SMALL, T, gaussian


def test_positional_weights_sum_to_one_and_favour_the_nearest_key():
    weights = six_parameter.positional_weights(torch.tensor([0.0, 1.0, 60.0], dtype=torch.float64), 5)
    torch.testing.assert_close(weights.sum(1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(weights[0], torch.full((5,), 0.2, dtype=torch.float64))
    assert weights[2, -1].item() == pytest.approx(1.0)
    assert weights[1, -1] / weights[1, -2] == pytest.approx(math.e)


def test_sharp_first_layer_is_a_previous_token_head():
    x = gaussian(3, 6)
    z = six_parameter.previous_token_features(x, torch.tensor([60.0], dtype=torch.float64))[0]
    torch.testing.assert_close(z[:, 1:], x[:, :-1])
    assert (z[:, 0] == 0).all()


def test_exact_solution_fits_the_target():
    target = MixedTarget(12, 0.3, 0.7, "sqrt")
    x = gaussian(50, 12)
    u_A, u_B = six_parameter.forward(six_parameter.exact_solution(target), x)
    four, induction = target.components(x)
    torch.testing.assert_close(u_A[0], four)
    torch.testing.assert_close(u_B[0], induction)


@pytest.mark.parametrize("factorised, positional", [(True, "linear"), (False, "linear"), (True, "quadratic")])
def test_gradients_match_finite_differences(factorised, positional):
    x = gaussian(20, 7)
    target = MixedTarget(7, 0.5, 0.5, "sqrt")(x)
    theta = torch.tensor([[0.7, 0.4, 0.3, -0.2, 0.5, 0.6]], dtype=torch.float64, requires_grad=True)

    def loss(theta):
        u_A, u_B = six_parameter.forward(theta, x, factorised=factorised, positional=positional)
        return 0.5 * (u_A + u_B - target).pow(2).mean()

    assert torch.autograd.gradcheck(loss, (theta,), eps=1e-6, atol=1e-8)


# --- the configuration ----------------------------------------------------------------------


def test_the_chapter_takes_its_defaults_from_the_config():
    defaults = WANG.parameters.defaults()
    config = SixParameterConfig()
    for name in ("length", "alpha", "w_star", "normalisation", "sigma_init", "lr", "time", "n_train", "n_eval"):
        assert defaults[name] == getattr(config, name), name
    assert six_parameter.chapter_config(WANG.parameters.validate({})) == config  # seed 0 = data_seed 0


@pytest.mark.parametrize("field, value, message", [
    ("alpha", 1.0, r"alpha = 1.0 is invalid: expected a number in \(0, 1\)"),
    ("length", 3, "length = 3 is invalid: expected an integer >= 4"),
    ("sigma_init", 0.0, "sigma_init = 0.0 is invalid"),
    ("normalisation", "log", "normalisation = 'log' is invalid"),
    ("positional", "cubic", "positional = 'cubic' is invalid"),
    ("time", 0.5, "time = 0.5 is invalid: expected a number >= lr = 1.0"),
    ("target_part", "bigram", "target_part = 'bigram' is invalid"),
    ("init_seed", -1, "init_seed = -1 is invalid"),
])
def test_a_bad_config_value_is_refused_naming_it(field, value, message):
    with pytest.raises(ParameterError, match=message):
        SixParameterConfig(**{field: value})


# --- runs -------------------------------------------------------------------------------------


def test_an_ensemble_member_equals_the_single_run_bit_for_bit():
    configs = [SixParameterConfig(alpha=0.3, sigma_init=0.1, **SMALL), SixParameterConfig(alpha=0.7, sigma_init=0.01, **SMALL),
               SixParameterConfig(sigma_init=0.01, init_seed=3, **SMALL)]
    together = six_parameter.run_ensemble(configs, progress=False)
    for config, member in zip(configs, together):
        alone = six_parameter.run(config, progress=False)
        assert alone.keys() == member.keys() and alone["config"] == member["config"] == asdict(config)
        for key in alone.keys() - {"config"}:
            assert np.array_equal(alone[key], member[key]), key


def test_run_groups_trains_each_shared_group_as_one_ensemble_and_keeps_the_order(monkeypatch):
    configs = [SixParameterConfig(init_seed=0, **SMALL), SixParameterConfig(**{**SMALL, "length": 12}),
               SixParameterConfig(init_seed=1, **SMALL)]
    calls = []
    real = six_parameter.run_ensemble
    monkeypatch.setattr(six_parameter, "run_ensemble", lambda cs, **kw: calls.append(len(cs)) or real(cs, **kw))
    results = six_parameter.run_groups(configs, progress=False)
    assert calls == [2, 1]  # the two restarts together, the other length alone
    for config, result in zip(configs, results):
        alone = real([config], progress=False)[0]
        assert result["config"] == asdict(config) and np.array_equal(result["theta"], alone["theta"])
    assert not np.array_equal(results[0]["theta"][0], results[2]["theta"][0])  # distinct restarts


def test_an_ensemble_refuses_runs_of_different_sizes():
    with pytest.raises(ParameterError, match="differ only in alpha, sigma_init, init_seed"):
        six_parameter.run_ensemble([SixParameterConfig(**SMALL), SixParameterConfig(**{**SMALL, "length": 12})])


def test_a_run_through_the_sweep_registry_equals_a_direct_run():
    p = WANG.parameters.validate({"time": 10.0, "n_train": 64, "n_eval": 64})
    sweep = SWEEPS["wang-default"]
    (config,) = sweep.configs(p)
    (through,) = [sweep.run(c, progress=False) for c in sweep.configs(p)]
    direct = six_parameter.run(config, progress=False)
    assert all(np.array_equal(through[k], direct[k]) for k in direct if k != "config")


def test_layer_wise_training_keeps_layer_one_and_the_lazy_twin_has_no_dot_product():
    result = six_parameter.run(SixParameterConfig(**SMALL), progress=False)
    assert (result["theta"][:, six_parameter.P1] == six_parameter.IDEAL_P1).all()
    assert result["loss"][-1] < result["loss"][0]
    assert (result["loss_lazy"] >= result["loss"] - 1e-12).all()  # the twin can only do worse here


def test_random_initialisations_have_random_signs():
    configs = [SixParameterConfig(sigma_init=0.01, init_seed=k, **SMALL) for k in range(8)]
    theta = six_parameter.initial_parameters(configs + [SixParameterConfig(sigma_init=0.01, **SMALL)])
    drawn = theta[:8, 1:]  # p1 is layer 1's, frozen at IDEAL_P1
    assert (theta[:, six_parameter.P1] == six_parameter.IDEAL_P1).all()
    assert (drawn > 0).any() and (drawn < 0).any() and drawn.abs().max() < 0.05
    assert drawn.std().item() == pytest.approx(0.01, rel=0.3)
    assert (theta[8, 1:] == 0.01).all()  # no init_seed: every trained parameter at +σ_init
    torch.testing.assert_close(six_parameter.initial_parameters(configs[:1])[0], theta[0])  # reproducible
    result = six_parameter.run(configs[1], progress=False)
    np.testing.assert_allclose(result["theta"][0], theta[1].numpy())


def test_a_run_on_one_component_sees_only_that_component():
    # at σ_init = 1e-8 the model outputs ≈ 0, so the first evaluated loss is ½ mean(target²) on the eval sample
    generator = torch.Generator().manual_seed(0)
    _, x_eval = sample_tokens(64, 10, generator), sample_tokens(64, 10, generator)
    four, induction = MixedTarget(10, 0.5, 0.5, "sqrt").components(x_eval)
    for part, target in [("four_gram", four), ("induction", induction), ("both", four + induction)]:
        result = six_parameter.run(SixParameterConfig(**SMALL, sigma_init=1e-8, target_part=part), progress=False)
        assert result["loss"][0] == pytest.approx(0.5 * target.pow(2).mean().item(), rel=1e-6)


def test_ratios_to_exact_are_one_at_the_exact_solution():
    config = asdict(SixParameterConfig(length=12, alpha=0.3, w_star=0.7))
    theta = six_parameter.exact_solution(MixedTarget(12, 0.3, 0.7, "sqrt")).numpy()
    assert six_parameter.ratios_to_exact({"config": config, "theta": theta}) == pytest.approx(
        {"vA": 1.0, "vB": 1.0, "w_KQ": 1.0})
    theta[0, six_parameter.WQ] *= -1  # one factor's sign flipped: w_KQ = −w*
    theta[0, six_parameter.VB] *= 2
    ratios = six_parameter.ratios_to_exact({"config": config, "theta": theta})
    assert ratios["w_KQ"] == pytest.approx(-1.0) and ratios["vB"] == pytest.approx(2.0)
    unfactorised = dict(config, factorised=False)
    theta[0, six_parameter.WK] = 5.0  # unused when w_KQ is one parameter
    assert six_parameter.ratios_to_exact({"config": unfactorised, "theta": theta})["w_KQ"] == pytest.approx(-1.0)


def test_output_function_moves_only_trained_parameters():
    config = SixParameterConfig(**SMALL)
    x = gaussian(8, 10)
    theta = torch.tensor([15.0, 0.3, 0.2, 0.4, 0.5, 0.6], dtype=torch.float64)
    outputs, trained = six_parameter.output_function(config, theta, x)
    assert trained.shape == (5,)  # p1 is frozen in layer-wise training
    u_A, u_B = six_parameter.forward(theta[None], x)
    torch.testing.assert_close(outputs(trained), (u_A + u_B)[0])


# --- the chapter's lists of runs and their summaries ------------------------------------------


def test_the_chapter_lists_at_the_defaults():
    p = WANG.parameters.validate({})
    default = six_parameter.chapter_config(p)
    assert six_parameter.default_runs(p) == [default]
    assert six_parameter.half_lr_runs(p)[0].lr == default.lr / 2
    grid = six_parameter.grid_runs(p)
    assert [(c.alpha, c.sigma_init) for c in grid[:5]] == [(0.2, 0.1), (0.2, 0.01), (0.2, 0.001), (0.2, 1e-4), (0.5, 0.1)]
    assert len(grid) == 3 * 4 and [c.length for c in six_parameter.length_runs(p)] == [16, 32, 64, 128]
    unnormalised = six_parameter.unnormalised_runs(p)
    assert {c.normalisation for c in unnormalised} == {"none"} and {c.time for c in unnormalised} == {p.unnormalised_time}
    assert [c.target_part for c in six_parameter.decoupling_runs(p)] == ["four_gram", "induction"]
    restarts = six_parameter.restart_runs(p)
    assert [c.init_seed for c in restarts] == list(range(p.seed, p.seed + p.n_seeds))  # one restart per chapter seed
    later = six_parameter.restart_runs(WANG.parameters.validate({"seed": 3, "n_seeds": 6}))
    assert [c.init_seed for c in later] == [3, 4, 5, 6, 7, 8] and later[0].data_seed == 3
    assert all(c.shared() == default.shared() for c in restarts)  # an ensemble with the default run, if wanted
    variants = six_parameter.variant_runs(p)
    assert variants[0] == default and variants[1] == replace(default, joint=True) and len(variants) == 4


@pytest.fixture(scope="module")
def small_runs():
    base = SixParameterConfig(**{**SMALL, "time": 60.0, "n_evals": 60})
    return {
        "default": six_parameter.run(base, progress=False),
        "parts": [six_parameter.run(replace(base, target_part=part), progress=False) for part in ("four_gram", "induction")],
    }


def test_summaries_of_a_run(small_runs):
    run = small_runs["default"]
    summary = six_parameter.phase_summary(run)
    assert summary["phase_one"] == int(np.flatnonzero(run["r_G"] >= 0.9)[0])
    assert summary["ih_drop"] == pytest.approx(1 - run["loss_IH"][summary["phase_one"]] / run["loss_IH"][0])
    np.testing.assert_array_equal(six_parameter.w_kq(run), run["theta"][:, 4] * run["theta"][:, 5])
    escape = six_parameter.escape_fits(run)
    assert escape["rate"] > 0 and 0 <= escape["r_squared"] <= 1
    deviations = six_parameter.decoupling_deviations(run, *small_runs["parts"])
    assert set(deviations) == {"vA", "vB", "w_KQ"} and all(v >= 0 for v in deviations.values())
    assert six_parameter.decoupling_deviations(run, run, run) == {"vA": 0, "vB": 0, "w_KQ": 0}


def synthetic_run(switch: float, alpha: float = 0.5, sigma_init: float = 0.01, length: int = 32, theta=None) -> dict:
    """A result whose 4-gram is learned at once and whose induction head switches on at ``switch``."""
    t = np.geomspace(0.01, 1000, 2001)
    r_i = 1 / (1 + np.exp(-(t - switch) / 2))
    config = asdict(SixParameterConfig(alpha=alpha, sigma_init=sigma_init, length=length))  # κ_L = √(L−2)
    theta = np.tile(theta if theta is not None else [15.0, 9.0, alpha, (1 - alpha) * math.sqrt(length - 2), 0.5, 1.0], (t.size, 1))
    return {"t": t, "r_G": 1 - np.exp(-t / 2), "r_I": r_i, "config": config, "theta": theta}


def test_plateau_scaling_reads_the_slope_against_log_sigma_and_length():
    grid = [synthetic_run(100 + 10 * (1 + a) * math.log(1 / s), alpha=a, sigma_init=s)
            for a in (0.2, 0.5, 0.8) for s in (0.1, 0.01, 0.001)]
    lengths = [synthetic_run(50 * L / 16, length=L) for L in (16, 32, 64)]
    scaling = six_parameter.plateau_scaling(grid, lengths, lengths[:2])
    assert scaling["sigmas"] == [0.1, 0.01, 0.001] and scaling["alphas"] == [0.2, 0.5, 0.8]
    assert scaling["grid_plateaus"][0.5].shape == (3, 3) and scaling["order"] == 1.0
    slope, _, r2 = scaling["fits"][0.5]["T_IH"]
    assert slope == pytest.approx(15, rel=0.02) and r2 == pytest.approx(1, abs=1e-3)
    assert scaling["alpha_ratio"] == pytest.approx((100 + 18 * math.log(100) - 1.4) / (100 + 12 * math.log(100) - 1.4), rel=0.02)
    assert scaling["lengths"] == [16, 32, 64] and scaling["length_slope"] == pytest.approx(1, abs=0.05)


def test_restart_summary_compares_the_restarts_with_the_default():
    starts = [[15.0, 0.01, 0.01, 0.01, 0.01 * k, 0.01] for k in (1, 2, 3)]
    restarts = []
    for k, start in enumerate(starts):
        run = synthetic_run(100 + 20 * k)
        run["theta"] = np.array([start] + [list(run["theta"][-1])] * (run["t"].size - 1))
        restarts.append(run)
    default = synthetic_run(100)
    summary = six_parameter.restart_summary(restarts, default)
    assert summary["error"] == pytest.approx(0.0) and summary["default_error"] == pytest.approx(0.0)
    assert summary["errors"] == pytest.approx([0.0, 0.0, 0.0])
    restarts[1]["theta"][-1, 2] *= 1.3  # one restart ends with vA 30 % too large: only its own error moves
    moved = six_parameter.restart_summary(restarts, default)
    assert moved["errors"] == pytest.approx([0.0, 0.3, 0.0]) and moved["error"] == pytest.approx(0.3)
    np.testing.assert_allclose(summary["growing"], [0.02, 0.03, 0.04])
    assert summary["t_induction"] == pytest.approx([100, 120, 140], abs=2)
    assert summary["slope"] < 0 and summary["final_theta"].shape == (3, 6)  # here: larger |w_Q + w_K|, later switch


def test_the_linear_w_kq_grid_and_the_joint_restarts_at_the_defaults():
    p = WANG.parameters.validate({})
    single = six_parameter.single_grid_runs(p)
    assert [c.sigma_init for c in single] == [0.1, 0.01, 0.001, 1e-4] and not any(c.factorised for c in single)
    assert len({c.shared() for c in single}) == 1  # one ensemble
    joint = six_parameter.joint_restart_runs(p)
    assert all(c.joint for c in joint) and [c.init_seed for c in joint] == [c.init_seed for c in six_parameter.restart_runs(p)]


def test_sigma_slope_fits_the_plateau_against_log_inverse_sigma():
    def synthetic(sigma):  # the switch 10 time units later per e-fold of 1/σ_init
        switch = 1 / (1 + np.exp(-(T - 100 - 10 * np.log(1 / sigma)) / 2))
        return {"t": T, "r_G": LAZY, "r_I": switch, "config": {"sigma_init": sigma}}
    fit = six_parameter.sigma_slope([synthetic(s) for s in (1e-3, 1e-1, 1e-2)])
    assert fit["sigmas"] == [0.1, 0.01, 0.001] and fit["slope"] == pytest.approx(10, rel=0.02)
    assert fit["r_squared"] > 0.999


def test_phase_lists_read_never_as_infinite():
    learned = {"t": T, "r_G": LAZY, "r_I": 1 / (1 + np.exp(-(T - 100) / 2))}
    never = {"t": T, "r_G": LAZY, "r_I": 0 * T}
    lists = six_parameter.phase_lists([learned, never])
    assert lists["T_IH"][0] == pytest.approx(100, rel=0.01) and lists["T_IH"][1] == math.inf
    assert lists["P"][1] == math.inf and lists["plateau_ratio"][1] == math.inf and lists["order"] == [1.0, 0.0]
