"""The reduced models and the 3-parameter closed form."""


import numpy as np
import pytest
import torch

from ihcore.musat.disentangled import DisentangledConfig, DisentangledTransformer
from ihcore.musat.minimal_runs import MinimalRunConfig, run
from ihcore.musat.reduced import (
    CoefficientModel, closed_form_gap, three_parameter_flow, three_parameter_gradient, three_parameter_loss,
)
from ihcore.musat.subspace import KEY_COEFFICIENTS
from ihcore.musat.tasks import ContinuousTask
from ihcore.spine.curves import first_crossing


@pytest.mark.parametrize("theta, n_pairs", [((0.0, 0.0, 0.0), 3), ((1.3, 2.1, 0.7), 4), ((4.0, -1.0, 1.5), 2)])
def test_closed_form_equals_the_three_parameter_model_on_sampled_orthonormal_batches(theta, n_pairs):
    task = ContinuousTask(n_pairs, 2 * n_pairs + 4, data="orthonormal")
    model = CoefficientModel(DisentangledConfig(task.dim), KEY_COEFFICIENTS)
    with torch.no_grad():
        model.coefficients.copy_(torch.tensor(theta))
    for seed in range(3):  # Monte Carlo batches: the loss is the same on every one
        batch = task.sample(64, "train", torch.Generator().manual_seed(seed))
        assert task.loss(model(batch.tokens), batch).item() == pytest.approx(three_parameter_loss(*theta, n_pairs), abs=1e-5)


def test_hand_derived_gradient_matches_finite_differences():
    for theta in [(0.3, 0.5, 0.2), (2.0, 3.0, 1.1), (0.0, 0.0, 0.0)]:
        numeric = [
            (three_parameter_loss(*(np.array(theta) + h), 5) - three_parameter_loss(*(np.array(theta) - h), 5)) / 2e-6
            for h in 1e-6 * np.eye(3)
        ]
        assert np.allclose(three_parameter_gradient(*theta, 5), numeric, atol=1e-7)


def test_coefficient_gradient_is_the_projection_of_the_full_gradient():
    """Chain rule: dL/dc_k = <dL/dW, E_k> at any point of the subspace, for any batch."""
    D = 4
    task = ContinuousTask(3, D)
    batch = task.sample(32, "train", torch.Generator().manual_seed(0))
    reduced = CoefficientModel(DisentangledConfig(D))
    with torch.no_grad():
        reduced.coefficients.copy_(0.5 * torch.randn(19, generator=torch.Generator().manual_seed(1)))
    full = DisentangledTransformer(DisentangledConfig(D))
    with torch.no_grad():
        for parameter, weight in zip((full.W1, full.W2, full.W3), reduced.weights()):
            parameter.copy_(weight)
    task.loss(reduced(batch.tokens), batch).backward()
    task.loss(full(batch.tokens), batch).backward()
    projected = D * reduced.basis.coefficients([full.W1.grad, full.W2.grad, full.W3.grad])
    assert np.allclose(reduced.coefficients.grad.numpy(), projected, atol=1e-5)


def test_nineteen_coefficient_model_follows_the_projected_full_model():
    """Same batches, zero init, tau-matched learning rates: trajectories agree (small size, large batch)."""
    config = MinimalRunConfig(n_pairs=3, dim=8, batch_size=2048, eta=1.0, tau_factor=40.0 / 9, n_evals=10)
    full = run(config, progress=False)
    reduced = run(MinimalRunConfig(**{**vars(config), "model": "coefficients"}), progress=False)
    assert np.allclose(full["tau"], reduced["tau"])
    gap = np.abs(full["coefficients"] - reduced["coefficients"]).max()
    assert gap < 0.05 * np.abs(reduced["coefficients"]).max()
    assert reduced["share_inside"][-1] == pytest.approx(1.0) and full["share_inside"][-1] > 0.9


def test_zero_init_loss_is_one_half_and_flow_starts_with_gamma3():
    assert three_parameter_loss(0, 0, 0, 7) == 0.5
    assert np.array_equal(three_parameter_gradient(0, 0, 0, 7)[:2], [0.0, 0.0])
    assert three_parameter_gradient(0, 0, 0, 7)[2] == pytest.approx(-1 / 14)


def test_flow_lowers_the_loss_and_is_converged_in_its_step():
    coarse = three_parameter_flow(4, 200.0)
    fine = three_parameter_flow(4, 200.0, step=0.002)
    assert np.all(np.diff(coarse.loss) <= 1e-12)
    for k in range(3):
        assert first_crossing(coarse.tau, coarse.theta[:, k], 0.5, interpolate=True) == pytest.approx(
            first_crossing(fine.tau, fine.theta[:, k], 0.5, interpolate=True), rel=0.01)


def test_closed_form_gap_is_rounding_error():
    assert closed_form_gap(3, 10, draws=2) < 1e-5
