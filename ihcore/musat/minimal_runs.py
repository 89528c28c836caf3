"""One training run of the minimal model (full, 19-coefficient or 3-parameter) per configuration.

A sweep is a list of configuration dicts (:func:`minimal_config` fills in defaults) and
:func:`run_minimal` maps one configuration to a small result dict; runs are independent.
Training is plain SGD on fresh batches from the spine's loop; the learning rate is
``eta * D`` for the full model and ``eta`` for coefficient models, so that one step is
``eta`` units of ``tau`` for both (see :mod:`ihcore.musat.reduced`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ihcore.musat.disentangled import DisentangledConfig, DisentangledTransformer
from ihcore.musat.reduced import CoefficientModel, emergence_times
from ihcore.musat.subspace import KEY_COEFFICIENTS, BlockBasis, block_basis
from ihcore.musat.tasks import ContinuousTask
from ihcore.spine import devices
from ihcore.spine.fits import loglog_slope
from ihcore.spine.train import Seeds, train

DEFAULTS = dict(
    model="full",  # "full", "coefficients" (all 19) or "three" (alpha3, beta2, gamma3)
    n_pairs=8, dim=32, data="isotropic", query="last", label_cue="rotated",
    residual="concat", attend_to_self=False, init_scale=0.0,
    batch_size=128, eta=1.0, tau_max=300.0, n_evals=80, seed=0, progress=False,
    variant="",  # a label for sweeps; not used by the run
)


def minimal_config(**overrides) -> dict:
    """A run configuration: :data:`DEFAULTS` with ``overrides`` (unknown keys are refused)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown configuration keys {sorted(unknown)}")
    return {**DEFAULTS, **overrides}


def subspace_measure(basis: BlockBasis, initial, task: ContinuousTask):
    """Measure for :func:`ihcore.spine.train.train`: coefficients (K,), in-subspace share of W - W_0, loss."""

    def measure(model, batches) -> dict[str, np.ndarray]:
        weights = model.weights()
        with torch.no_grad():
            loss = task.loss(model(batches["train"].tokens), batches["train"]).item()
        share = basis.share_inside([w - w0 for w, w0 in zip(weights, initial)])["all"]
        return {"coefficients": basis.coefficients(weights), "share_inside": np.array(share), "loss": np.array(loss)}

    return measure


def run_minimal(config: dict, device: str | torch.device | None = None) -> dict:
    """Train one configuration on ``device`` (None: the current device); returns its
    trajectory (against tau) and emergence times (CPU arrays).

    Keys: the configuration, ``names`` (K,), ``tau`` (E,), ``coefficients`` (E, K),
    ``share_inside`` (E,) (NaN at tau = 0), ``loss`` (E,), and ``T_<name>@<c>`` for the
    three key coefficients at thresholds 0.5 and 0.1.
    """
    c = minimal_config(**config)
    task = ContinuousTask(c["n_pairs"], c["dim"], c["data"], c["query"], c["label_cue"])
    model_config = DisentangledConfig(c["dim"], c["residual"], c["attend_to_self"], c["init_scale"])
    if c["model"] == "full":
        model, lr = DisentangledTransformer(model_config, seed=c["seed"]), c["eta"] * c["dim"]
    else:
        trained = None if c["model"] == "coefficients" else KEY_COEFFICIENTS
        model, lr = CoefficientModel(model_config, trained), c["eta"]
    device = devices.pick(device)
    model.to(device)  # built on the CPU from its seed, then moved
    basis = block_basis(c["dim"], c["residual"])
    initial = [w.detach().clone() for w in model.weights()]
    steps = math.ceil(c["tau_max"] / c["eta"])
    history = train(
        model, task, steps=steps, lr=lr, batch_size=c["batch_size"], eval_every=max(1, steps // c["n_evals"]),
        measures=[subspace_measure(basis, initial, task)], eval_batch_size=c["batch_size"],
        seeds=Seeds.from_base(c["seed"]), optimizer="sgd", progress=None if c["progress"] else False,
        device=device,
    )
    tau = history.eval_steps * c["eta"]
    final_weights = tuple(w.detach().cpu().numpy().copy() for w in model.weights())
    coefficients = history["coefficients"]
    key = coefficients[:, [basis.index(name) for name in KEY_COEFFICIENTS]]
    return {
        **c, "names": basis.names, "tau": tau, "coefficients": coefficients,
        "share_inside": history["share_inside"], "loss": history["loss"], "weights": final_weights,
        **emergence_times(tau, key),
    }


# The reviewers' doubts (musat.md, section 6), as overrides of the baseline configuration.
STRESS_VARIANTS = {
    "baseline (zero init, concatenated)": {},
    "small random init (scale 0.1)": {"init_scale": 0.1},
    "default-scale random init (scale 1)": {"init_scale": 1.0},
    "additive residual (eta 0.5)": {"residual": "additive", "eta": 0.5},
    "attention to the current position": {"attend_to_self": True},
    "random query position": {"query": "random"},
    "no positional cue on labels": {"label_cue": "none"},
    "SGD noise (batch 16, eta 0.25)": {"batch_size": 16, "eta": 0.25},
}
SURVIVAL_RULES = {
    "confinement": "in-subspace share of W - W_0 at the end >= 0.9 at the largest N",
    "order": "T_gamma3 < T_beta2 < T_alpha3 (threshold 0.5) at every N",
    "N-scaling": "alpha3 emerges at every N and the log-log slope of T_alpha3 (threshold 0.5) "
    "is within 0.4 of the baseline's on the same N",
}


def stress_configs(n_list, tau_factor: float, **base) -> list[dict]:
    """One configuration per (variant, N) of :data:`STRESS_VARIANTS`, on top of ``base``; tau_max = tau_factor N^2."""
    return [
        minimal_config(**{**base, **overrides, "n_pairs": n, "tau_max": tau_factor * n**2, "variant": variant})
        for variant, overrides in STRESS_VARIANTS.items() for n in n_list
    ]


def power_of_two_ns(n_max: int) -> list[int]:
    """N = 2, 4, ..., n_max (n_max a power of 2)."""
    return [2**k for k in range(1, int(math.log2(n_max)) + 1)]


def chapter_base(p) -> dict:
    """The Musat chapter's base overrides of every minimal-model run, from its validated parameters ``p``."""
    return dict(dim=p.dim, eta=p.eta, batch_size=p.batch_size, seed=p.seed, progress=p.show_progress)


def chapter_stress_configs(p) -> list[dict]:
    """The chapter's stress tests: :func:`stress_configs` at N = stress_n_max / 2 and stress_n_max."""
    return stress_configs([p.stress_n_max // 2, p.stress_n_max], p.tau_factor, **chapter_base(p))


def scaling_configs(p) -> list[dict]:
    """The chapter's full-model N-scaling runs: orthonormal data, N = 2, 4, ..., n_max_full, tau_max = tau_factor N^2.

    The run at N = n_pairs is the chapter's "full model, projected" run of the reduced-model comparison.
    """
    return [minimal_config(**chapter_base(p), model="full", n_pairs=n, data="orthonormal", tau_max=p.tau_factor * n**2)
            for n in power_of_two_ns(p.n_max_full)]


def stress_summary(results: list[dict]) -> list[dict]:
    """One row per variant: final share, emergence order, slope of T_alpha3 and the verdicts of
    :data:`SURVIVAL_RULES` (bools); the first variant is the baseline."""
    rows = []
    for variant in dict.fromkeys(r["variant"] for r in results):
        runs = sorted((r for r in results if r["variant"] == variant), key=lambda r: r["n_pairs"])
        share = float(runs[-1]["share_inside"][-1])
        ordered = all(r["T_gamma3@0.5"] < r["T_beta2@0.5"] < r["T_alpha3@0.5"] for r in runs)
        times = [r["T_alpha3@0.5"] for r in runs]
        slope = loglog_slope([r["n_pairs"] for r in runs], times) if np.all(np.isfinite(times)) else float("nan")
        rows.append({
            "variant": variant, "share_inside": share, "T_alpha3": times, "slope": slope,
            "confinement": share >= 0.9, "order": ordered,
            "N-scaling": bool(abs(slope - (rows[0]["slope"] if rows else slope)) <= 0.4),
        })
    return rows
