"""The reduced models of Musat et al.: the 19-coefficient model, the 3-parameter model and its closed form.

:class:`CoefficientModel` is the minimal model whose only parameters are coefficients of
the block basis (:mod:`ihcore.musat.subspace`); the others are held at 0. With all 19 it is the
19-coefficient model, with ``KEY_COEFFICIENTS`` the 3-parameter model (alpha3, beta2,
gamma3).

**Time units.** A step of SGD with learning rate ``lr`` on the full matrices moves a
coefficient c = <W, E>/D by ``-(lr / D) dL/dc``, since ``||E||^2 = D``. So the full model at
``lr`` and the coefficient model at ``lr / D`` take the same step, and both are plotted
against ``tau = lr * steps / D`` (full) = ``lr * steps`` (coefficients).

**Closed form (derived here; musat.md 4.4).** Orthonormal data, q = N, M = J. In layer 1,
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
from ihcore.spine.curves import first_crossing


class CoefficientModel(DisentangledBase):
    """Minimal model with weights ``sum_k c_k E_k``; only the coefficients in ``trained`` are parameters."""

    def __init__(self, config: DisentangledConfig, trained: tuple[str, ...] | None = None) -> None:
        super().__init__(config)
        self.basis: BlockBasis = block_basis(config.dim, config.residual)
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
    batches (drawn on the CPU, the model evaluated on ``device``; None: the current device)."""
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
    return max(gaps)


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


def emergence_time(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """First time ``values`` reaches ``threshold``, linearly interpolated; NaN if never. times, values (S,)."""
    return first_crossing(times, values, threshold, interpolate=True)


def emergence_times(times: np.ndarray, theta: np.ndarray, thresholds=(0.5, 0.1)) -> dict[str, float]:
    """``T_<name>@<c>`` for alpha3, beta2, gamma3 (columns of theta (S, 3)) at each threshold c."""
    return {
        f"T_{name}@{c:g}": emergence_time(times, theta[:, k], c)
        for c in thresholds for k, name in enumerate(KEY_COEFFICIENTS)
    }


def crossing_times(times: np.ndarray, values: np.ndarray, levels) -> np.ndarray:
    """(C, K) first time each column of ``values`` (S, K) reaches each of the C ``levels``; NaN if never.

    ``times`` (S,); each entry is :func:`emergence_time`. Pass ``np.abs(values)`` for the
    first time a coefficient passes a level in absolute value.
    """
    values = np.asarray(values)
    return np.array([[emergence_time(times, values[:, k], c) for k in range(values.shape[1])] for c in levels])


def order_holds(crossings: np.ndarray) -> np.ndarray:
    """(C,) bool: T_gamma3 < T_beta2 < T_alpha3 in each row of ``crossings`` (C, 3), columns in
    ``KEY_COEFFICIENTS`` order (alpha3, beta2, gamma3); False where a time is NaN (never reached)."""
    t = np.asarray(crossings)
    return (t[:, 2] < t[:, 1]) & (t[:, 1] < t[:, 0])


def longest_run(levels, holds) -> tuple[float, float]:
    """(lowest, highest) level of the longest run of consecutive ``levels`` (C,) where ``holds`` (C,) is True;
    (NaN, NaN) if it never holds."""
    best, start = (0, None), None
    for i, ok in enumerate(list(holds) + [False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[0]:
                best = (i - start, start)
            start = None
    length, first = best
    return (float(levels[first]), float(levels[first + length - 1])) if length else (float("nan"), float("nan"))


def flow_sweep_configs(n_list, tau_factor: float = 40.0) -> list[dict]:
    """One configuration per context length N for the closed-form sweep (independent runs)."""
    return [{"n_pairs": n, "tau_max": tau_factor * n**2, "stop_alpha3": 1.0} for n in n_list]


def run_flow_config(config: dict) -> dict:
    """Emergence times and gradient sizes of the closed-form flow for one configuration of :func:`flow_sweep_configs`.

    Gradients (spec T6, the mechanism of C7): ``grad_gamma3@0`` = |dL/dgamma3| at zero;
    ``grad_beta2@gamma3`` = |dL/dbeta2| and ``grad_alpha3/beta2@gamma3`` = |dL/dalpha3| / beta2
    at the first point where gamma3 >= 0.5 (NaN if it never does).
    """
    n = config["n_pairs"]
    trajectory = three_parameter_flow(n, config["tau_max"], config["stop_alpha3"])
    reached = np.flatnonzero(trajectory.theta[:, 2] >= 0.5)
    gradient = three_parameter_gradient(*trajectory.theta[reached[0]], n) if reached.size else np.full(3, np.nan)
    beta2 = trajectory.theta[reached[0], 1] if reached.size else np.nan
    return {
        "n_pairs": n, **emergence_times(trajectory.tau, trajectory.theta),
        "grad_gamma3@0": abs(three_parameter_gradient(0.0, 0.0, 0.0, n)[2]),
        "grad_beta2@gamma3": abs(gradient[1]), "grad_alpha3/beta2@gamma3": abs(gradient[0]) / beta2,
    }
