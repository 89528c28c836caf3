"""The block basis of the 19-dimensional subspace, the projection and the symmetry behind it."""

import pytest
import torch

from ihcore.musat.disentangled import DisentangledConfig, DisentangledTransformer
from ihcore.musat.reduced import CoefficientModel
from ihcore.musat.subspace import block_basis
from ihcore.musat.tasks import ContinuousTask, rotation_matrix


@pytest.mark.parametrize("residual, count", [("concat", 19), ("additive", 7)])
def test_basis_is_orthogonal_with_squared_norm_dim(residual, count):
    basis = block_basis(4, residual)
    assert len(basis.names) == sum(len(E) for E in basis.matrices) == count
    for E in basis.matrices:
        gram = E.flatten(1) @ E.flatten(1).T
        assert torch.allclose(gram, 4 * torch.eye(len(E)))


def random_weights(shapes, generator):
    return [torch.randn(*shape, generator=generator) for shape in shapes]


def test_a_matrix_in_the_subspace_projects_to_itself():
    basis = block_basis(4)
    coefficients = torch.randn(19, generator=torch.Generator().manual_seed(0))
    weights = basis.build(coefficients)
    assert all(torch.allclose(p, w, atol=1e-6) for p, w in zip(basis.project(weights), weights))
    assert torch.allclose(torch.as_tensor(basis.coefficients(weights)), coefficients, atol=1e-6)
    assert basis.share_inside(weights)["all"] == pytest.approx(1.0)


def test_a_matrix_orthogonal_to_the_subspace_projects_to_zero():
    basis = block_basis(4)
    generator = torch.Generator().manual_seed(1)
    weights = random_weights(DisentangledConfig(4).shapes, generator)
    off = [w - p for w, p in zip(weights, basis.project(weights))]
    assert all(p.abs().max() < 1e-5 for p in basis.project(off))
    assert basis.share_inside(off)["all"] < 1e-10
    # a random matrix has a small share inside (19 directions out of 28 D^2 = 448)
    assert basis.share_inside(weights)["all"] < 0.2


def complex_rotation(D, generator):
    """A random (D, D) rotation commuting with M: a unitary of C^(D/2) acting on the pairs (a, b)."""
    Q = torch.linalg.qr(torch.complex(torch.randn(D // 2, D // 2, generator=generator),
                                      torch.randn(D // 2, D // 2, generator=generator)))[0]
    U = torch.zeros(D, D)
    U[0::2, 0::2], U[0::2, 1::2], U[1::2, 0::2], U[1::2, 1::2] = Q.real, -Q.imag, Q.imag, Q.real
    return U


def test_subspace_weights_commute_with_the_task_symmetry():
    """Rotating contents by O and positions by a rotation commuting with M rotates y_hat by O."""
    D = 4
    model = CoefficientModel(DisentangledConfig(D))
    with torch.no_grad():
        model.coefficients.copy_(torch.randn(19, generator=torch.Generator().manual_seed(2)))
    tokens = ContinuousTask(3, D).sample(5, "train", torch.Generator().manual_seed(3)).tokens
    O = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(4)))[0]
    M = rotation_matrix(D)
    U = complex_rotation(D, torch.Generator().manual_seed(5))
    assert torch.allclose(U @ M, M @ U, atol=1e-6) and torch.allclose(U @ U.T, torch.eye(D), atol=1e-6)
    rotated = torch.cat([tokens[..., :D] @ O.T, tokens[..., D:] @ U.T], dim=-1)
    with torch.no_grad():
        assert torch.allclose(model(rotated), model(tokens) @ O.T, atol=1e-5)
    full = DisentangledTransformer(DisentangledConfig(D, init_scale=1.0))
    with torch.no_grad():
        assert not torch.allclose(full(rotated), full(tokens) @ O.T, atol=1e-3)  # generic weights do not


def test_zero_init_gradient_of_the_readout_lies_in_the_subspace_on_average():
    task = ContinuousTask(3, 4)
    model = DisentangledTransformer(DisentangledConfig(4))
    b = task.sample(20_000, "train", torch.Generator().manual_seed(5))
    task.loss(model(b.tokens), b).backward()
    basis = block_basis(4)
    grads = [model.W1.grad, model.W2.grad, model.W3.grad]
    assert basis.share_inside(grads)["all"] > 0.95
