"""The reduced models of Musat et al.: the 19-coefficient model, the 3-parameter model and its closed form.

:class:`CoefficientModel` is the minimal model whose only parameters are coefficients of
the block basis (:mod:`ihcore.musat.subspace`); the others are held at 0. With all 19 it is the
19-coefficient model, with ``KEY_COEFFICIENTS`` the 3-parameter model (alpha3, beta2,
gamma3).

**Time units.** A step of SGD with learning rate ``lr`` on the full matrices moves a
coefficient c = <W, E>/D by ``-(lr / D) dL/dc``, since ``||E||^2 = D``. So the full model at
``lr`` and the coefficient model at ``lr / D`` take the same step, and both are plotted
against ``tau = lr * steps / D`` (full) = ``lr * steps`` (coefficients). This time unit is this
book's reconstruction; the exponents in N do not depend on it.

**Closed form** (this book's derivation; Musat et al.'s own closed forms, in their Appendix
B, were not available, so it may differ from them). Orthonormal data, q = N, M = J. In layer 1,
label N scores alpha3 on item N (``(M p_N)^T M p_N = 1``) and 0 on its other 2N - 2 keys,
so it puts ``a = e^alpha3 / (e^alpha3 + 2N - 2)`` on item N and copies ``a x_N`` into its
a1e block; no other token holds x_N in a1e. In layer 2 the query x_N scores ``beta2 a`` on
label N and 0 on its other 2N - 1 keys: ``b = e^(beta2 a) / (e^(beta2 a) + 2N - 1)``. The
readout is ``gamma3 (b y_N + (1 - b)/(2N - 1) * (sum of the 2N - 1 other contents))``, so

    L = 1/2 (1 - gamma3 b)^2 + 1/2 gamma3^2 (1 - b)^2 / (2N - 1),

exactly, for every batch (the data enter only through orthonormal inner products).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ihcore.musat.disentangled import DisentangledBase, DisentangledConfig
from ihcore.musat.subspace import KEY_COEFFICIENTS, BlockBasis, block_basis
from ihcore.musat.tasks import ContinuousTask
from ihcore.spine import devices

LOSS_RESOLUTION = 1e-6  # float32 rounding of a loss of order 1 (over a batch of 64 sequences)


class CoefficientModel(DisentangledBase):
    """Minimal model with weights ``sum_k c_k E_k``; only the coefficients in ``trained`` are parameters."""

    def __init__(self, config: DisentangledConfig, trained: tuple[str, ...] | None = None,
                 label_map: str = "rotation") -> None:
        super().__init__(config)
        self.basis: BlockBasis = block_basis(config.dim, config.residual, label_map)
        self.trained = tuple(self.basis.names if trained is None else trained)
        self.coefficients = nn.Parameter(torch.zeros(len(self.trained)))
        self.register_buffer("placement", torch.tensor([self.basis.index(n) for n in self.trained]), persistent=False)
        for layer, matrices in enumerate(self.basis.matrices):  # buffers, so that they follow the model's device
            self.register_buffer(f"basis{layer}", matrices, persistent=False)

    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        every = torch.zeros(len(self.basis.names), device=self.coefficients.device).index_put(
            (self.placement,), self.coefficients)
        return self.basis.build(every, (self.basis0, self.basis1, self.basis2))


def _attention_weights(alpha3: float, beta2: float, n_pairs: int) -> tuple[float, float]:
    """(a, b) of the closed form: label N's weight on item N, the query's weight on label N."""
    a = 1.0 / (1.0 + (2 * n_pairs - 2) * math.exp(-alpha3))
    b = 1.0 / (1.0 + (2 * n_pairs - 1) * math.exp(-beta2 * a))
    return a, b


def three_parameter_loss(alpha3: float, beta2: float, gamma3: float, n_pairs: int) -> float:
    """Closed-form loss of the 3-parameter model (orthonormal data, q = N, M = J)."""
    _, b = _attention_weights(alpha3, beta2, n_pairs)
    return 0.5 * (1 - gamma3 * b) ** 2 + 0.5 * gamma3**2 * (1 - b) ** 2 / (2 * n_pairs - 1)


def three_parameter_gradient(alpha3: float, beta2: float, gamma3: float, n_pairs: int) -> np.ndarray:
    """(3,) gradient (dL/dalpha3, dL/dbeta2, dL/dgamma3) of :func:`three_parameter_loss`, by hand."""
    a, b = _attention_weights(alpha3, beta2, n_pairs)
    others = 2 * n_pairs - 1
    dL_db = -gamma3 * (1 - gamma3 * b) - gamma3**2 * (1 - b) / others
    dL_du = dL_db * b * (1 - b)  # u = beta2 * a
    return np.array([
        dL_du * beta2 * a * (1 - a),
        dL_du * a,
        -b * (1 - gamma3 * b) + gamma3 * (1 - b) ** 2 / others,
    ])


def closed_form_gap(n_pairs: int, dim: int, draws: int = 5, seed: int = 0, device: str | torch.device | None = None) -> float:
    """Max |closed form - 3-parameter model's loss| over random parameters and sampled orthonormal
    batches (drawn on the CPU, the model evaluated on ``device``; None: the current device),
    rounded to :data:`LOSS_RESOLUTION`: the model computes in float32, so what is below it is
    rounding, which differs between CPUs, not a gap."""
    task = ContinuousTask(n_pairs, dim, data="orthonormal")
    model = CoefficientModel(DisentangledConfig(dim), KEY_COEFFICIENTS).to(devices.pick(device))
    generator = torch.Generator().manual_seed(seed)
    gaps = []
    for _ in range(draws):
        theta = 3 * torch.rand(3, generator=generator)
        batch = task.sample(64, "train", generator).to(devices.of(model))
        with torch.no_grad():
            model.coefficients.copy_(theta)
            loss = task.loss(model(batch.tokens), batch).item()
        gaps.append(abs(loss - three_parameter_loss(*theta.tolist(), n_pairs)))
    return round(max(gaps), -int(math.log10(LOSS_RESOLUTION)))


@dataclass(frozen=True)
class Trajectory:
    """tau (S,) times; theta (S, 3) alpha3, beta2, gamma3; loss (S,)."""

    tau: np.ndarray
    theta: np.ndarray
    loss: np.ndarray


def three_parameter_flow(n_pairs: int, tau_max: float, stop_alpha3: float = math.inf, step: float = 0.01) -> Trajectory:
    """Gradient flow of the closed form from zero (Heun's method with adaptive steps).

    Each step moves the parameters by at most ``step`` and keeps ``dt * curvature <= 0.2``
    (curvature: a Gershgorin bound on a finite-difference Hessian), which the plateau's
    small gradients and the end's stiff gamma3 direction both need. Stops at ``tau_max`` or
    once alpha3 >= ``stop_alpha3``.
    """
    def gradient(theta: np.ndarray) -> np.ndarray:
        return three_parameter_gradient(*theta, n_pairs)

    theta, tau = np.zeros(3), 0.0
    taus, thetas = [tau], [theta]
    while tau < tau_max and theta[0] < stop_alpha3:
        g = gradient(theta)
        h = 1e-5
        hessian = np.stack([(gradient(theta + h * e) - g) / h for e in np.eye(3)])
        curvature = np.abs(hessian).sum(axis=1).max()
        dt = min(0.2 / max(curvature, 1e-12), step / max(np.linalg.norm(g), 1e-12), tau_max - tau)
        predictor = theta - dt * g
        theta = theta - 0.5 * dt * (g + gradient(predictor))
        tau += dt
        taus.append(tau)
        thetas.append(theta)
    thetas = np.array(thetas)
    losses = np.array([three_parameter_loss(*t, n_pairs) for t in thetas])
    return Trajectory(np.array(taus), thetas, losses)
