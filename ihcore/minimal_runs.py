"""One training run of the minimal model (full, 19-coefficient or 3-parameter) per configuration.

A sweep is a list of configuration dicts (:func:`minimal_config` fills in defaults) and
:func:`run_minimal` maps one configuration to a small result dict; runs are independent.
Training is plain SGD on fresh batches from the spine's loop; the learning rate is
``eta * D`` for the full model and ``eta`` for coefficient models, so that one step is
``eta`` units of ``tau`` for both (see :mod:`ihcore.reduced`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ihcore.disentangled import DisentangledConfig, DisentangledTransformer
from ihcore.musat_tasks import ContinuousTask
from ihcore.reduced import CoefficientModel, emergence_times
from ihcore.subspace import KEY_COEFFICIENTS, BlockBasis, block_basis
from ihcore.train import Seeds, train

DEFAULTS = dict(
    model="full",  # "full", "coefficients" (all 19) or "three" (alpha3, beta2, gamma3)
    n_pairs=8, dim=32, data="isotropic", query="last", label_cue="rotated",
    residual="concat", attend_to_self=False, init_scale=0.0,
    batch_size=256, eta=0.5, tau_max=400.0, n_evals=80, seed=0, progress=False,
)


def minimal_config(**overrides) -> dict:
    """A run configuration: :data:`DEFAULTS` with ``overrides`` (unknown keys are refused)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown configuration keys {sorted(unknown)}")
    return {**DEFAULTS, **overrides}


def subspace_measure(basis: BlockBasis, initial, task: ContinuousTask):
    """Measure for :func:`ihcore.train.train`: coefficients (K,), in-subspace share of W - W_0, loss."""

    def measure(model, batches) -> dict[str, np.ndarray]:
        weights = model.weights()
        with torch.no_grad():
            loss = task.loss(model(batches["train"].tokens), batches["train"]).item()
        share = basis.share_inside([w - w0 for w, w0 in zip(weights, initial)])["all"]
        return {"coefficients": basis.coefficients(weights), "share_inside": np.array(share), "loss": np.array(loss)}

    return measure


def run_minimal(config: dict) -> dict:
    """Train one configuration; returns its trajectory (against tau) and emergence times.

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
    basis = block_basis(c["dim"], c["residual"])
    initial = [w.detach().clone() for w in model.weights()]
    steps = math.ceil(c["tau_max"] / c["eta"])
    with np.errstate(invalid="ignore"):
        history = train(
            model, task, steps=steps, lr=lr, batch_size=c["batch_size"], eval_every=max(1, steps // c["n_evals"]),
            measures=[subspace_measure(basis, initial, task)], eval_batch_size=c["batch_size"],
            seeds=Seeds.from_base(c["seed"]), optimizer="sgd", progress=None if c["progress"] else False,
        )
    tau = history.eval_steps * c["eta"]
    coefficients = history["coefficients"]
    key = coefficients[:, [basis.index(name) for name in KEY_COEFFICIENTS]]
    return {
        **c, "names": basis.names, "tau": tau, "coefficients": coefficients,
        "share_inside": history["share_inside"], "loss": history["loss"], **emergence_times(tau, key),
    }
