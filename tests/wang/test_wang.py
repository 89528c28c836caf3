"""The Wang et al. chapter's modules: mixed target, six-parameter model, phases, constructions, laziness."""

import math

import numpy as np
import pytest
import torch

from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.wang import constructions, laziness, phases, six_parameter, stress_tests
from ihcore.wang.mixed_target import (
    DiscreteMixedTarget, MixedTarget, discrete_progress_measure, four_gram, in_context_ngram, induction_head, progress,
    progress_measure, progress_regressors, sample_tokens
)
from ihcore.wang.six_parameter import RunConfig

HAND_MADE = torch.tensor([[1.0, 2.0, -1.0, 0.5, 2.0]], dtype=torch.float64)  # x_1..x_5


def gaussian(n, length, seed=0):
    return sample_tokens(n, length, torch.Generator().manual_seed(seed))


# --- the target -----------------------------------------------------------------------


def test_four_gram_reads_x_L_minus_2():
    assert four_gram(HAND_MADE).item() == -1.0  # x_3 for L = 5


def test_induction_head_on_a_hand_made_sequence():
    # query x_5 = 2; values x_2, x_3, x_4 = 2, -1, 0.5 with keys x_1, x_2, x_3 = 1, 2, -1
    w = 0.5
    weights = np.exp(w * 2 * np.array([1.0, 2.0, -1.0]))
    expected = (weights / weights.sum()) @ np.array([2.0, -1.0, 0.5])
    assert induction_head(HAND_MADE, w).item() == pytest.approx(expected, rel=1e-12)


def test_induction_head_copies_the_token_after_the_best_match_at_large_w():
    assert induction_head(HAND_MADE, 200.0).item() == pytest.approx(-1.0)  # key x_2 = 2 matches best


def test_trigram_head_on_a_hand_made_sequence():
    # n = 3: values x_3, x_4 with keys (x_2, x_1) = (2, 1) and (x_3, x_2) = (-1, 2); query (x_5, x_4) = (2, 0.5)
    logits = np.array([2 * 2 + 0.5 * 1, 2 * -1 + 0.5 * 2])
    weights = np.exp(0.3 * logits)
    expected = (weights / weights.sum()) @ np.array([-1.0, 0.5])
    assert in_context_ngram(HAND_MADE, 3, 0.3).item() == pytest.approx(expected, rel=1e-12)


def test_mixed_target_is_the_weighted_sum_of_its_components():
    target = MixedTarget(length=5, alpha=0.3, w_star=0.5, normalisation="sqrt")
    expected = 0.3 * -1.0 + 0.7 * math.sqrt(3) * induction_head(HAND_MADE, 0.5).item()
    assert target(HAND_MADE).item() == pytest.approx(expected, rel=1e-12)


def test_sqrt_normalisation_makes_the_unselective_head_a_standard_normal():
    # at w* = 0, κ_L IH₂ = (x_2 + ... + x_{L-1}) / √(L−2), exactly, so its variance is 1 for every L
    for length in (8, 64):
        x = gaussian(20_000, length)
        scaled = MixedTarget(length, alpha=0.0, w_star=0.0)(x)
        torch.testing.assert_close(scaled, x[:, 1:-1].sum(1) / math.sqrt(length - 2))
        assert scaled.var().item() == pytest.approx(1.0, abs=0.04)
        assert MixedTarget(length, alpha=0.0, w_star=0.0, normalisation="none")(x).var().item() == pytest.approx(
            1 / (length - 2), rel=0.05)


def test_target_rejects_bad_settings():
    with pytest.raises(ValueError, match="normalisation"):
        MixedTarget(normalisation="log")
    with pytest.raises(ValueError, match="alpha"):
        MixedTarget(alpha=1.5)


def test_task_batch_and_loss_for_the_training_loop():
    target = MixedTarget(length=12)
    batch = target.sample(7, "train", torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (7, 12, 1) and batch.tokens.dtype == torch.float32
    torch.testing.assert_close(batch.target, batch.four_gram + batch.induction)
    logits = torch.zeros(7, 12, 1)
    logits[:, -1, 0] = batch.target
    assert target.loss(logits, batch).item() == 0.0


def test_progress_recovers_known_coefficients():
    target = MixedTarget(length=16, alpha=0.4)
    x = gaussian(2000, 16)
    regressors = progress_regressors(x, target)
    outputs = (regressors @ torch.tensor([0.2, 0.3, 0.06], dtype=torch.float64))[None]
    r = progress(outputs, regressors, torch.tensor([0.4], dtype=torch.float64))
    assert [r[k].item() for k in ("r_G", "r_M", "r_I")] == pytest.approx([0.5, 0.5, 0.1])


def test_progress_measure_of_a_perfect_model_is_one():
    target = MixedTarget(length=10, alpha=0.5)

    class Oracle(torch.nn.Module):
        def forward(self, tokens):
            return target(tokens[:, :, 0].double()).float()[:, None, None].expand(-1, tokens.shape[1], 1)

    batch = target.sample(512, "train", torch.Generator().manual_seed(1))
    values = progress_measure(target)(Oracle(), {"train": batch})
    assert values["r_G"] == pytest.approx(1, abs=1e-4) and values["r_I"] == pytest.approx(1, abs=1e-3)
    assert values["loss"] < 1e-10


# --- the six-parameter model --------------------------------------------------------------


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
    target = MixedTarget(length=12, alpha=0.3, w_star=0.7)
    x = gaussian(50, 12)
    u_A, u_B = six_parameter.forward(six_parameter.exact_solution(target), x)
    four, induction = target.components(x)
    torch.testing.assert_close(u_A[0], four)
    torch.testing.assert_close(u_B[0], induction)


@pytest.mark.parametrize("factorised, positional", [(True, "linear"), (False, "linear"), (True, "quadratic")])
def test_gradients_match_finite_differences(factorised, positional):
    x = gaussian(20, 7)
    target = MixedTarget(length=7)(x)
    theta = torch.tensor([[0.7, 0.4, 0.3, -0.2, 0.5, 0.6]], dtype=torch.float64, requires_grad=True)

    def loss(theta):
        u_A, u_B = six_parameter.forward(theta, x, factorised=factorised, positional=positional)
        return 0.5 * (u_A + u_B - target).pow(2).mean()

    assert torch.autograd.gradcheck(loss, (theta,), eps=1e-6, atol=1e-8)


SMALL = dict(length=10, lr=0.5, time=20.0, n_train=64, n_eval=64, n_evals=20)


def test_batched_runs_equal_separate_runs():
    configs = [RunConfig(alpha=0.3, sigma_init=0.1, **SMALL), RunConfig(alpha=0.7, sigma_init=0.01, **SMALL)]
    together = six_parameter.run_sweep(configs, progress_bar=False)
    for config, batched in zip(configs, together):
        alone = six_parameter.run_one(config, progress_bar=False)
        np.testing.assert_allclose(batched["loss"], alone["loss"], rtol=1e-10)
        np.testing.assert_allclose(batched["theta"], alone["theta"], rtol=1e-10)


def test_layer_wise_training_keeps_layer_one_and_the_lazy_twin_has_no_dot_product():
    result = six_parameter.run_one(RunConfig(**SMALL), progress_bar=False)
    assert (result["theta"][:, six_parameter.P1] == six_parameter.IDEAL_P1).all()
    assert result["loss"][-1] < result["loss"][0]
    assert (result["loss_lazy"] >= result["loss"] - 1e-12).all()  # the twin can only do worse here


def test_random_initialisations_have_random_signs_and_train_together():
    configs = [RunConfig(sigma_init=0.01, init_seed=k, **SMALL) for k in range(8)]
    theta = six_parameter.initial_parameters(configs + [RunConfig(sigma_init=0.01, **SMALL)])
    drawn = theta[:8, 1:]  # p1 is layer 1's, frozen at IDEAL_P1
    assert (theta[:, six_parameter.P1] == six_parameter.IDEAL_P1).all()
    assert (drawn > 0).any() and (drawn < 0).any() and drawn.abs().max() < 0.05
    assert drawn.std().item() == pytest.approx(0.01, rel=0.3)
    assert (theta[8, 1:] == 0.01).all()  # no init_seed: every trained parameter at +σ_init
    torch.testing.assert_close(six_parameter.initial_parameters(configs[:1])[0], theta[0])  # reproducible
    results = six_parameter.run_sweep(configs[:2], progress_bar=False)
    np.testing.assert_allclose(results[1]["theta"][0], theta[1].numpy())  # batched, each from its own start
    assert not np.allclose(results[0]["loss"], results[1]["loss"])


def test_ratios_to_exact_are_one_at_the_exact_solution():
    config = RunConfig(length=12, alpha=0.3, w_star=0.7)
    theta = six_parameter.exact_solution(MixedTarget(12, 0.3, 0.7)).numpy()
    assert six_parameter.ratios_to_exact({"config": config, "theta": theta}) == pytest.approx(
        {"vA": 1.0, "vB": 1.0, "w_KQ": 1.0})
    theta[0, six_parameter.WQ] *= -1  # one factor's sign flipped: w_KQ = −w*
    theta[0, six_parameter.VB] *= 2
    ratios = six_parameter.ratios_to_exact({"config": config, "theta": theta})
    assert ratios["w_KQ"] == pytest.approx(-1.0) and ratios["vB"] == pytest.approx(2.0)
    unfactorised = RunConfig(length=12, alpha=0.3, w_star=0.7, factorised=False)
    theta[0, six_parameter.WK] = 5.0  # unused when w_KQ is one parameter
    assert six_parameter.ratios_to_exact({"config": unfactorised, "theta": theta})["w_KQ"] == pytest.approx(-1.0)


def test_run_batch_refuses_runs_of_different_sizes():
    with pytest.raises(ValueError, match="differ only"):
        six_parameter.run_batch([RunConfig(**SMALL), RunConfig(**{**SMALL, "length": 12})])


# --- phase detection ----------------------------------------------------------------------


T = np.geomspace(0.01, 1000, 2001)
LAZY = 1 - np.exp(-T / 2)  # starts at t = 0: 10 % → 90 % takes ln(ln 10 / ln(10/9)) e-folds
SWITCH = 1 / (1 + np.exp(-(T - 100) / 2))  # a logistic jump at t = 100


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


def test_plateau_deviation_and_linear_fit():
    loss = np.where(T < 50, 1.0, 2.0)
    assert phases.plateau_deviation(T, loss, np.ones_like(T), 1, 10) == 0
    assert phases.plateau_deviation(T, loss, np.ones_like(T), 1, 60) == 1
    slope, intercept, r2 = phases.linear_fit([1, 2, 3], [3, 5, 7])
    assert (slope, intercept, r2) == pytest.approx((2, 1, 1))


# --- constructions -------------------------------------------------------------------------


@pytest.mark.parametrize("length", [5, 16, 40])
def test_hand_built_transformer_computes_the_induction_head_exactly(length):
    x = gaussian(64, length)
    model = constructions.induction_head_transformer(length, w_star=0.8)
    readout = model(x[:, :, None])[:, -1, 0]
    torch.testing.assert_close(readout, induction_head(x, 0.8), rtol=0, atol=1e-12)


def test_hand_built_transformer_errs_more_on_longer_sequences_at_low_sharpness():
    errors = []
    for length in (8, 64):
        x = gaussian(256, length)
        readout = constructions.induction_head_transformer(length, 1.0, sharpness=4.0)(x[:, :, None])[:, -1, 0]
        errors.append((readout - induction_head(x, 1.0)).pow(2).mean().sqrt().item())
    assert errors[1] > 2 * errors[0] > 0


def test_one_sharp_head_gives_the_bigram_head_exactly():
    x = gaussian(32, 12)
    out = constructions.ngram_head(x, 2, 0.6, torch.tensor([60.0], dtype=torch.float64))
    torch.testing.assert_close(out, induction_head(x, 0.6), rtol=0, atol=1e-12)


def test_more_heads_extract_previous_tokens_better():
    x = gaussian(256, 40)
    errors = []
    for n_heads in (2, 6):
        slopes = constructions.alibi_slopes(n_heads)
        errors.append(constructions.extraction_error(x, slopes, constructions.mixing_coefficients(slopes, 2))[:, -1])
    assert (errors[1] < errors[0] / 3).all()


# --- laziness ------------------------------------------------------------------------------


def test_tangent_kernel_of_a_linear_model_is_the_gram_matrix_and_never_drifts():
    features = torch.randn(5, 3, dtype=torch.float64)
    outputs = lambda theta: features @ theta  # noqa: E731
    start, end = torch.ones(3, dtype=torch.float64), torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(laziness.tangent_kernel(outputs, start), features @ features.T)
    found = laziness.drift(outputs, start, end)
    assert found["kernel_drift"] == 0 and found["parameter_drift"] == pytest.approx(math.sqrt(2 / 3))


def test_model_outputs_reproduce_the_model():
    model = AttentionOnlyTransformer(TransformerConfig(1, 1, 6, d_model=8)).double()
    tokens = torch.randn(4, 6, 1, dtype=torch.float64)
    outputs, flatten = laziness.model_outputs(model, tokens)
    torch.testing.assert_close(outputs(flatten(dict(model.named_parameters()))), model(tokens)[:, -1, 0])


def test_output_function_moves_only_trained_parameters():
    config = RunConfig(**SMALL)
    x = gaussian(8, 10)
    theta = torch.tensor([15.0, 0.3, 0.2, 0.4, 0.5, 0.6], dtype=torch.float64)
    outputs, trained = six_parameter.output_function(config, theta, x)
    assert trained.shape == (5,)  # p1 is frozen in layer-wise training
    u_A, u_B = six_parameter.forward(theta[None], x)
    torch.testing.assert_close(outputs(trained), (u_A + u_B)[0])
    assert laziness.tangent_kernel(outputs, trained).shape == (8, 8)


# --- discrete tokens, stress-test rows, chapter runs ----------------------------------------


def test_discrete_target_on_a_hand_made_sequence():
    target = DiscreteMixedTarget(length=6, vocabulary=4, alpha=0.25, w_star=math.log(3))
    ids = torch.tensor([[1, 2, 0, 1, 3, 1]])  # x_6 = 1 follows earlier 1s at s−1 = 1 and 4, i.e. s = 2 and 5
    # s = 2..5 carry x_s = 2, 0, 1, 3 with weights ∝ 3, 1, 1, 3 (matches at s = 2 and 5)
    expected = torch.zeros(4, dtype=torch.float64)
    expected[1] = 0.25  # 4-gram x_{L−2} = x_4 = 1
    for token, weight in zip([2, 0, 1, 3], [3, 1, 1, 3]):
        expected[token] += 0.75 * weight / 8
    torch.testing.assert_close(target.distribution(ids)[0], expected)


def test_discrete_progress_of_the_target_itself_is_one():
    target = DiscreteMixedTarget(length=12, vocabulary=8)

    class Oracle(torch.nn.Module):
        def forward(self, tokens):
            ids = tokens.argmax(-1)
            return torch.log(target.distribution(ids)).float()[:, None].expand(-1, ids.shape[1], -1)

    batch = target.sample(256, "train", torch.Generator().manual_seed(0))
    values = discrete_progress_measure(target)(Oracle(), {"train": batch})
    assert [values[k] for k in ("r_G", "r_M", "r_I")] == pytest.approx([1, 1, 1], abs=1e-4)


def test_phase_row_reads_the_phase_structure():
    row = stress_tests.phase_row("synthetic", T, {"r_G": LAZY, "r_I": SWITCH, "loss": 1 - 0.9 * SWITCH}, 0.5)
    assert row["4-gram first"] and row["plateau"] and row["sharper switch"]
    assert row["final / initial loss"] == pytest.approx(0.1, rel=1e-3)
    swapped = stress_tests.phase_row("swapped", T, {"r_G": SWITCH, "r_I": LAZY, "loss": LAZY}, 0.5)
    assert not swapped["4-gram first"] and not swapped["plateau"] and not swapped["sharper switch"]
    table = stress_tests.rows_markdown([row, swapped])
    assert table.count("\n") == 3 and "✓" in table and "✗" in table


def test_chapter_runs_cover_the_sweeps_at_the_defaults():
    from ihcore.book.chapters import WANG

    runs = six_parameter.chapter_runs(WANG.parameters.validate({}))
    assert len(runs["grid"]) == 3 * 4 and [c.length for c in runs["length"]] == [16, 32, 64, 128]
    assert {c.normalisation for c in runs["unnormalised"]} == {"none"}
    assert runs["half_lr"][0].lr == runs["default"][0].lr / 2
    restarts = runs["restarts"]
    assert len({c.init_seed for c in restarts}) == len(restarts) == six_parameter.RESTARTS
    assert all(c.shared() == runs["default"][0].shared() for c in restarts)  # batched with the default run


def test_a_run_on_one_component_sees_only_that_component():
    # at σ_init = 1e-8 the model outputs ≈ 0, so the first evaluated loss is ½ mean(target²) on the eval sample
    generator = torch.Generator().manual_seed(0)
    _, x_eval = sample_tokens(64, 10, generator), sample_tokens(64, 10, generator)
    four, induction = MixedTarget(length=10).components(x_eval)
    for part, target in [("four_gram", four), ("induction", induction), ("both", four + induction)]:
        result = six_parameter.run_one(RunConfig(**SMALL, sigma_init=1e-8, target_part=part), progress_bar=False)
        assert result["loss"][0] == pytest.approx(0.5 * target.pow(2).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="target_part"):
        six_parameter.run_one(RunConfig(**SMALL, target_part="bigram"))
