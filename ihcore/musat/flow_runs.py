"""One gradient flow of the 3-parameter closed form at one context length N: :class:`FlowRunConfig` and :func:`run`.

The closed form (:func:`ihcore.musat.reduced.three_parameter_loss`, this book's derivation)
does not depend on D, so its flow is cheap at any N: the chapter's sweep ``musat-flow`` runs
it at N = 2, 4, ..., n_max_reduced to measure the slopes of Theorem 2 and the gradient sizes
of the mechanism a secondary source describes (gamma3's signal Theta(1/N) at zero init,
then beta2's and alpha3's Theta(1/N^2)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ihcore.spine.validation import refuse_invalid
from ihcore.musat.emergence import emergence_times
from ihcore.musat.minimal_runs import power_of_two_ns
from ihcore.musat.reduced import three_parameter_flow, three_parameter_gradient
from ihcore.musat.subspace import KEY_COEFFICIENTS
from ihcore.spine.fits import loglog_slope

# coefficient: the result key of the gradient that drives it
GRADIENT_KEYS = {"gamma3": "grad_gamma3@0", "beta2": "grad_beta2@gamma3", "alpha3": "grad_alpha3/beta2@gamma3"}


@dataclass(frozen=True)
class FlowRunConfig:
    """The flow at N = ``n_pairs`` from zero, until ``tau = tau_factor * N^2`` or alpha3 >= ``stop_alpha3``."""

    n_pairs: int
    tau_factor: float = 40.0
    stop_alpha3: float = 1.0

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "n_pairs": (isinstance(self.n_pairs, int) and self.n_pairs >= 2, "an integer >= 2"),
            "tau_factor": (self.tau_factor > 0, "a number > 0"),
            "stop_alpha3": (self.stop_alpha3 > 0, "a number > 0"),
        })


def run(config: FlowRunConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Emergence times and gradient sizes of the closed-form flow (``device`` and ``progress``
    are those of every run; the closed form runs in numpy on the CPU, without a bar).

    Returns the configuration's fields, ``T_<name>@<c>`` (thresholds 0.5 and 0.1), and
    ``grad_gamma3@0`` = |dL/dgamma3| at zero; ``grad_beta2@gamma3`` = |dL/dbeta2| and
    ``grad_alpha3/beta2@gamma3`` = |dL/dalpha3| / beta2 at the first point where gamma3 >= 0.5
    (NaN if it never does).
    """
    n = config.n_pairs
    trajectory = three_parameter_flow(n, config.tau_factor * n**2, config.stop_alpha3)
    reached = np.flatnonzero(trajectory.theta[:, 2] >= 0.5)
    gradient = three_parameter_gradient(*trajectory.theta[reached[0]], n) if reached.size else np.full(3, np.nan)
    beta2 = trajectory.theta[reached[0], 1] if reached.size else np.nan
    return {
        **asdict(config), **emergence_times(trajectory.tau, trajectory.theta),
        "grad_gamma3@0": abs(three_parameter_gradient(0.0, 0.0, 0.0, n)[2]),
        "grad_beta2@gamma3": abs(gradient[1]), "grad_alpha3/beta2@gamma3": abs(gradient[0]) / beta2,
    }


def sweep_configs(p) -> list[FlowRunConfig]:
    """The chapter's sweep: N = 2, 4, ..., n_max_reduced (its validated parameters ``p``)."""
    return [FlowRunConfig(n) for n in power_of_two_ns(p.n_max_reduced)]


def fit_ns(n_max: int) -> list[int]:
    """The N of the slope fits: the top of 2, 4, ..., n_max (N >= n_max / 8), since Theorem 2's bound is asymptotic."""
    return [n for n in power_of_two_ns(n_max) if n >= n_max // 8]


def slopes(results: list[dict], ns: list[int]) -> dict[str, float]:
    """alpha3, beta2, gamma3 -> log-log slope against N of T_<name>(0.5), over the runs at ``ns``."""
    return {name: loglog_slope(ns, [r[f"T_{name}@0.5"] for r in results if r["n_pairs"] in ns])
            for name in KEY_COEFFICIENTS}


def gradient_slopes(results: list[dict], ns: list[int]) -> dict[str, float]:
    """gamma3, beta2, alpha3 -> log-log slope against N of the gradient of :data:`GRADIENT_KEYS` over the runs at ``ns``."""
    return {name: loglog_slope(ns, [r[key] for r in results if r["n_pairs"] in ns]) for name, key in GRADIENT_KEYS.items()}
