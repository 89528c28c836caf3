"""Coefficient models between 3 and 19 coefficients, the shift-type M, the Theorem 2 runs and the gradient-flow reference."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ihcore.musat.disentangled import DisentangledConfig
from ihcore.musat.minimal_runs import MinimalRunConfig, reference_configs, reference_dims, reference_etas, run
from ihcore.musat.reduced import CoefficientModel
from ihcore.musat.reduction_runs import (
    ALL,
    COMBINATIONS,
    OTHER_COEFFICIENTS,
    ReductionRunConfig,
    diagnosis_configs,
    gap_closed,
    theorem2_configs,
)
from ihcore.musat.reduction_runs import run as reduction_run
from ihcore.musat.subspace import block_basis
from ihcore.musat.tasks import ContinuousTask, shift_matrix
from ihcore.spine.validation import ParameterError

CHAPTER = SimpleNamespace(n_pairs=4, dim=10, eta=1.0, batch_size=8, tau_factor=2.0, seed=3, n_seeds=2,
                          ref_dim=24, ref_batch_size=16, ref_halvings=2, ref_tau_factor=2.0,
                          theorem2_n_max=8, theorem2_tau_factor=2.0)


def test_freed_names_must_be_other_coefficients():
    with pytest.raises(ParameterError, match="freed"):
        ReductionRunConfig(freed=("alpha3",))
    assert ReductionRunConfig(freed=(ALL,)).label == "19 coefficients"
    assert ReductionRunConfig().label == "3 parameters"
    assert ReductionRunConfig(freed=("gamma4",)).trained == ("alpha3", "beta2", "gamma3", "gamma4")


def test_the_three_parameter_run_matches_the_minimal_models_three_parameter_run():
    mine = reduction_run(ReductionRunConfig(n_pairs=2, dim=6, tau_factor=6.0), progress=False)
    theirs = run(MinimalRunConfig(model="three", n_pairs=2, dim=6, data="orthonormal", batch_size=4, tau_factor=6.0),
                 progress=False)
    assert mine["T_gamma3@0.5"] == pytest.approx(theirs["T_gamma3@0.5"], rel=1e-4)
    np.testing.assert_allclose(mine["loss"], theirs["loss"], atol=1e-5)
    # with nothing freed, the alpha3 gradient "without the freed ones" is the alpha3 gradient itself
    np.testing.assert_allclose(mine["alpha3_gradient_without_freed"], mine["gradient"][:, mine["names"].index("alpha3")])


def test_a_coefficient_models_loss_is_the_same_on_every_sequence_with_either_m():
    for label_map in ("rotation", "shift"):
        task = ContinuousTask(3, 10, "orthonormal", label_map=label_map)
        model = CoefficientModel(DisentangledConfig(10), None, label_map)
        with torch.no_grad():
            model.coefficients.copy_(torch.randn(19, generator=torch.Generator().manual_seed(0)))
            batch = task.sample(16, "train", torch.Generator().manual_seed(1))
            per_sequence = 0.5 * (model(batch.tokens) - batch.target).pow(2).sum(-1)
        assert per_sequence.std() < 1e-5, label_map


def test_shift_positions_put_each_label_one_step_after_its_item():
    task = ContinuousTask(3, 10, "orthonormal", label_map="shift")
    tokens = task.sample(2, "train", torch.Generator().manual_seed(0)).tokens
    positions = tokens[:, :, 10:]
    torch.testing.assert_close(positions[0], torch.eye(10)[:7])
    M = shift_matrix(10)
    torch.testing.assert_close(positions[0, 1::2], positions[0, 0:-1:2] @ M.T)  # label i = M item i
    assert torch.equal(block_basis(10, label_map="shift").matrices[0][2][10:, 10:], M)  # alpha3's block holds M


def test_the_diagnosis_frees_every_other_coefficient_once_then_the_combinations():
    configs = diagnosis_configs(SimpleNamespace(n_pairs=4, dim=10, tau_factor=2.0))
    rotation = [c.freed for c in configs if c.label_map == "rotation"]
    assert rotation[0] == () and rotation[-1] == (ALL,)
    assert [f[0] for f in rotation if len(f) == 1 and f != (ALL,)] == list(OTHER_COEFFICIENTS)
    assert all(combination in rotation for combination in COMBINATIONS)
    assert [c.freed for c in configs if c.label_map == "shift"] == [(), COMBINATIONS[0], (ALL,)]


def test_gap_closed_is_0_at_three_parameters_and_1_at_nineteen():
    three, nineteen = {"T_alpha3@0.5": 200.0}, {"T_alpha3@0.5": 100.0}
    assert gap_closed(three, three, nineteen) == 0 and gap_closed(nineteen, three, nineteen) == 1
    assert gap_closed({"T_alpha3@0.5": 150.0}, three, nineteen) == 0.5


def test_theorem2_runs_use_dim_at_least_2n_plus_2_and_two_step_sizes():
    configs = theorem2_configs(CHAPTER)
    assert sorted({(c.eta, c.n_pairs) for c in configs}) == [(0.5, 2), (0.5, 4), (0.5, 8), (1.0, 2), (1.0, 4), (1.0, 8)]
    assert all(c.dim == max(10, 2 * c.n_pairs + 2) and c.freed == (ALL,) for c in configs)


def test_the_reference_halves_eta_and_sweeps_d_on_both_kinds_of_data():
    assert reference_etas(CHAPTER) == [1.0, 0.5, 0.25]
    assert reference_dims(CHAPTER) == [10, 12, 24]
    configs = reference_configs(CHAPTER)
    for data in ("orthonormal", "isotropic"):
        own = [c for c in configs if c.data == data]
        assert [c.eta for c in own if c.dim == 24] == [1.0, 0.5, 0.25]
        assert sorted((c.dim, c.seed) for c in own if c.eta == 0.25) == [(10, 3), (10, 4), (12, 3), (24, 3)]
        assert all(c.model == "full" and c.batch_size == 16 and c.n_pairs == 4 for c in own)


def test_at_a_small_step_the_full_models_loss_never_rises_above_l0():
    # gradient flow never raises the loss; SGD at a large step does (here eta = 1 at D = 8, N = 2)
    small = run(MinimalRunConfig(n_pairs=2, dim=8, data="orthonormal", batch_size=256, eta=0.25, n_evals=40),
                progress=False)
    assert small["loss"][0] == pytest.approx(0.5, abs=1e-6)
    assert small["loss"].max() <= 0.5 + 1e-6 and small["loss"][-1] < 0.1
    large = run(MinimalRunConfig(n_pairs=2, dim=8, data="orthonormal", batch_size=256, eta=1.0, n_evals=40),
                progress=False)
    assert large["loss"].max() > 0.5
