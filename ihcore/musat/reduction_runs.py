"""Coefficient models between the 3-parameter and the 19-coefficient model: :class:`ReductionRunConfig` and :func:`run`.

Musat et al. report that training alpha3, beta2, gamma3 alone reproduces the emergence; in this
book's reconstruction the 3-parameter model emerges about twice as late as the 19-coefficient
model. These runs say which of the other 16 coefficients make the difference: alpha3, beta2,
gamma3 and the coefficients in ``freed`` are trained, the rest held at 0 (``freed = ("all",)``:
the 19-coefficient model). At every evaluation they also record the gradient of the loss on all
19 coefficients, and dL/dalpha3 at the same point with the freed coefficients set to 0 (what
the 3-parameter model would feel there), so a freed coefficient's effect on alpha3 can be read
as the gradient it adds.

All runs are on orthonormal data with q = N, where the loss of every coefficient model is the
same on every sequence (the data enter only through orthonormal inner products), so one
sequence per step is the population loss and SGD from zero is gradient descent on it, with no
randomness: each run is measured once. ``label_map="shift"`` uses the shift-type M of
:class:`ihcore.musat.tasks.ContinuousTask` (fixed positions), with the same 19 blocks built on
that M. The same runs at growing N (the sweep ``musat-theorem2``) measure Theorem 2's slope in
the trained 19-coefficient model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ihcore.musat.disentangled import DisentangledConfig
from ihcore.musat.emergence import emergence_times
from ihcore.musat.reduced import CoefficientModel
from ihcore.musat.subspace import CONCAT_COEFFICIENTS, KEY_COEFFICIENTS
from ihcore.musat.tasks import LABEL_MAPS, ContinuousTask
from ihcore.spine import devices
from ihcore.spine.fits import loglog_slope
from ihcore.spine.train import Member, Seeds, train_members
from ihcore.spine.validation import refuse_invalid

OTHER_COEFFICIENTS = tuple(name for name in CONCAT_COEFFICIENTS if name not in KEY_COEFFICIENTS)
ALL = "all"


@dataclass(frozen=True)
class ReductionRunConfig:
    """A coefficient model trained from zero on orthonormal data, q = N, one sequence per step.

    freed: the coefficients trained besides alpha3, beta2, gamma3 (``("all",)``: all 19);
    label_map: M (``"rotation"`` = J, or ``"shift"``); eta: the SGD step (tau per step); the run
    lasts ``tau = tau_factor * n_pairs^2``, evaluated about ``n_evals`` times.
    """

    freed: tuple[str, ...] = ()
    label_map: str = "rotation"
    n_pairs: int = 8
    dim: int = 20
    eta: float = 1.0
    tau_factor: float = 6.0
    n_evals: int = 80

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "freed": (self.freed == (ALL,) or all(name in OTHER_COEFFICIENTS for name in self.freed),
                      f"('all',) or names among {OTHER_COEFFICIENTS}"),
            "label_map": (self.label_map in LABEL_MAPS, f"one of {LABEL_MAPS}"),
            "n_pairs": (isinstance(self.n_pairs, int) and self.n_pairs >= 1, "an integer >= 1"),
            "dim": (isinstance(self.dim, int) and self.dim >= 2 * self.n_pairs + 2 and self.dim % 2 == 0,
                    "an even integer >= 2 n_pairs + 2"),
            "eta": (self.eta > 0, "a number > 0"),
            "tau_factor": (self.tau_factor > 0, "a number > 0"),
            "n_evals": (isinstance(self.n_evals, int) and self.n_evals >= 1, "an integer >= 1"),
        })

    @property
    def trained(self) -> tuple[str, ...]:
        """The trained coefficients, in the basis order."""
        if self.freed == (ALL,):
            return tuple(CONCAT_COEFFICIENTS)
        return tuple(name for name in CONCAT_COEFFICIENTS if name in KEY_COEFFICIENTS or name in self.freed)

    @property
    def label(self) -> str:
        """"3 parameters", "19 coefficients" or "3 + beta10, gamma2"."""
        if self.freed == (ALL,):
            return "19 coefficients"
        return "3 parameters" if not self.freed else "3 + " + ", ".join(self.freed)


def gradient_measure(task: ContinuousTask, config: ReductionRunConfig):
    """Measure: the 19 coefficients (K,), the loss, dL/dc of all 19 at that point (K,) and
    dL/dalpha3 there with the freed coefficients set to 0."""
    probe = CoefficientModel(DisentangledConfig(config.dim), None, config.label_map)
    names = list(probe.basis.names)
    alpha3 = names.index("alpha3")
    freed = [names.index(name) for name in config.trained if name not in KEY_COEFFICIENTS]

    def gradient(values: torch.Tensor, batch) -> torch.Tensor:
        with torch.enable_grad():
            probe.coefficients.data = values.clone()
            loss = task.loss(probe(batch.tokens), batch)
            return torch.autograd.grad(loss, probe.coefficients)[0].detach(), loss.item()

    def measure(model, batches) -> dict[str, np.ndarray]:
        batch = batches["train"]
        probe.to(devices.of(model))
        values = torch.as_tensor(model.basis.coefficients(model.weights()), device=devices.of(model))
        full, loss = gradient(values, batch)
        zeroed = values.clone()
        zeroed[freed] = 0
        without = gradient(zeroed, batch)[0][alpha3]
        return {"coefficients": values.cpu().numpy(), "loss": np.array(loss), "gradient": full.cpu().numpy(),
                "alpha3_gradient_without_freed": np.array(without.item())}

    return measure


def run(config: ReductionRunConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train ``config`` (``device``, ``progress``: as every run). Returns its fields, ``label``, ``names`` (19,),
    ``tau`` (E,), ``coefficients`` (E, 19), ``loss`` (E,), ``gradient`` (E, 19), ``alpha3_gradient_without_freed``
    (E,) and ``T_<name>@<c>`` of the three key coefficients (thresholds 0.5 and 0.1)."""
    task = ContinuousTask(config.n_pairs, config.dim, "orthonormal", label_map=config.label_map)
    model = CoefficientModel(DisentangledConfig(config.dim), config.trained, config.label_map)
    steps = math.ceil(config.tau_factor * config.n_pairs**2 / config.eta)
    history = train_members(
        [Member(model, task, Seeds.from_base(0), [gradient_measure(task, config)])], steps=steps, lr=config.eta,
        batch_size=1, eval_every=max(1, steps // config.n_evals), eval_batch_size=1, optimizer="sgd",
        progress=progress, device=device,
    )[0]
    tau = history.eval_steps * config.eta
    coefficients = history["coefficients"]
    names = list(model.basis.names)
    return {
        **asdict(config), "label": config.label, "names": names, "tau": tau, "coefficients": coefficients,
        "loss": history["loss"], "gradient": history["gradient"],
        "alpha3_gradient_without_freed": history["alpha3_gradient_without_freed"],
        **emergence_times(tau, coefficients[:, [names.index(n) for n in KEY_COEFFICIENTS]]),
    }


def run_many(configs: Sequence[ReductionRunConfig], *, device=None, progress: bool | None = None) -> list[dict]:
    """:func:`run` of each config, in order."""
    return [run(config, device=device, progress=progress) for config in configs]


# ------------------------------------------------------------------------------------------
# The chapter's lists of runs

# Chosen after the single-coefficient runs, not before: the four that shorten T_alpha3 most alone
# (gamma4, gamma1, beta10, beta1, in that order), freed cumulatively.
COMBINATIONS = (("gamma4",), ("gamma4", "gamma1"), ("gamma4", "gamma1", "beta10"), ("gamma4", "gamma1", "beta10", "beta1"))


def diagnosis_configs(p) -> list[ReductionRunConfig]:
    """The sweep ``musat-diagnosis`` at N = n_pairs, D = dim: the 3-parameter model, 3 + each other coefficient,
    3 + the :data:`COMBINATIONS` of two or more, the 19-coefficient model; then the 3-parameter model, 3 + gamma4 and
    the 19-coefficient model with the shift-type M."""
    base = ReductionRunConfig(n_pairs=p.n_pairs, dim=p.dim, tau_factor=p.tau_factor)
    rotation = [(), *((name,) for name in OTHER_COEFFICIENTS), *COMBINATIONS[1:], (ALL,)]
    shift = [(), COMBINATIONS[0], (ALL,)]
    return ([replace(base, freed=freed) for freed in rotation]
            + [replace(base, freed=freed, label_map="shift") for freed in shift])


def theorem2_ns(p) -> list[int]:
    """N of the trained-model Theorem 2 sweep: 2, 4, ..., theorem2_n_max."""
    return [2**k for k in range(1, int(math.log2(p.theorem2_n_max)) + 1)]


def theorem2_configs(p) -> list[ReductionRunConfig]:
    """The sweep ``musat-theorem2``: the 19-coefficient model at each N of :func:`theorem2_ns`, D = max(dim, 2N + 2),
    at eta = 1 and eta = 1/2 (the step-size check), runs of tau = theorem2_tau_factor * N^2."""
    return [ReductionRunConfig(freed=(ALL,), n_pairs=n, dim=max(p.dim, 2 * n + 2), eta=eta,
                               tau_factor=p.theorem2_tau_factor)
            for eta in (1.0, 0.5) for n in theorem2_ns(p)]


def slope(results: Sequence[dict], ns: Sequence[int], name: str = "alpha3", c: float = 0.5) -> float:
    """Log-log slope of T_<name>(c) against N over the runs at ``ns``."""
    times = {r["n_pairs"]: r[f"T_{name}@{c:g}"] for r in results}
    return loglog_slope(list(ns), [times[n] for n in ns])


def gap_closed(result: dict, three: dict, nineteen: dict) -> float:
    """The share of the 3-parameter model's excess T_alpha3(0.5) over the 19-coefficient model's that
    ``result`` removes: 0 = no better than 3 parameters, 1 = as fast as 19 coefficients."""
    t3, t19 = three["T_alpha3@0.5"], nineteen["T_alpha3@0.5"]
    return (t3 - result["T_alpha3@0.5"]) / (t3 - t19)
