"""The six-parameter two-layer transformer (no FFN, relative positions) and its training.

A reconstruction (wang.md §4.1) of the paper's minimal model. Parameters, per run:

    θ = (p1, pA, vA, vB, w_Q, w_K)          (index order of :data:`PARAMETERS`)

* Layer 1, one RPE-only head with slope p1 and unit value (v1 = 1): for positions t ≥ 2,
  z_t = Σ_{j<t} ρ_{t,j}(p1) x_j, z_1 = 0, with the ALiBi-type positional softmax
  ρ_{t,j}(p) ∝ exp(−p (t−1−j)) over keys j < t (the nearest key has distance 0).
  p1 → ∞ gives the previous-token head z_t = x_{t-1}.
* Layer 2, read out at position L only:
  head A (positional, "lazy"):  u_A = vA Σ_{j<L} ρ_{L,j}(pA) z_j  → vA x_{L-2};
  head B (dot product, "rich"): u_B = vB Σ_{j=2}^{L-1} softmax_j(w_Q w_K x_L z_j) x_j  → vB IH₂.
* Output f_θ = u_A + u_B.

The dot-product logit is quadratic in the parameters (w_KQ = w_Q w_K), the positional
logits linear (p): this is the reading in which "six learnable parameters" and the
reviewers' "quadratic dependence on w_KQ against linear dependence on the RPE" are both
literal. Variants: ``factorised=False`` uses w_KQ = w_Q as one parameter (w_K unused);
``positional="quadratic"`` uses slopes p² (a proxy for absolute positions, where
positional attention goes through a product W_Qᵀ W_K as well).

Training is full-batch gradient descent in float64 on a fixed Monte Carlo sample (a
population-loss proxy), vectorised over R runs that share data and sizes: θ is (R, 6)
and every run's loss depends on its own row only. Layer-wise training (the default)
freezes layer 1 as an ideal previous-token head (p1 = 15) and trains layer 2 from small
initialisation; joint training starts p1 small as well.

Devices: a batch of runs works on ``device`` (:func:`ihcore.spine.devices.pick`); the Monte Carlo
samples and random initialisations are drawn on the CPU from seeded CPU generators, then
moved, so they are the same everywhere. Results are CPU NumPy arrays. The other functions
work on the device of their tensor arguments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from ihcore.spine import devices
from ihcore.spine.train import progress_enabled
from ihcore.wang.mixed_target import (
    MixedTarget, four_gram, induction_head, normalisation_factor, progress, progress_regressors, sample_tokens
)

PARAMETERS = ("p1", "pA", "vA", "vB", "w_Q", "w_K")
TARGET_PARTS = ("both", "four_gram", "induction")
P1, PA, VA, VB, WQ, WK = range(6)
IDEAL_P1 = 15.0  # weight ≥ 1 − 1e-6 on the previous token


def positional_weights(slope: torch.Tensor, n_keys: int) -> torch.Tensor:
    """ρ(p) over keys at distances n_keys−1, ..., 1, 0 (key order): slope (R,) -> (R, n_keys)."""
    distance = torch.arange(n_keys - 1, -1, -1, dtype=slope.dtype, device=slope.device)
    return torch.softmax(-slope[:, None] * distance, dim=1)


def previous_token_features(x: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    """Layer 1's output z: x (N, L), p1 (R,) -> (R, N, L), z_1 = 0."""
    R, (N, L) = p1.shape[0], x.shape
    arange = torch.arange(L, dtype=x.dtype, device=x.device)
    distance = arange[:, None] - 1 - arange  # (t, j): t−1−j
    logits = -p1[:, None, None] * distance  # (R, L, L)
    logits = logits.masked_fill(distance < 0, float("-inf"))
    pattern = torch.softmax(logits[:, 1:], dim=2)  # query rows t = 2..L
    z = torch.einsum("rtj,nj->rnt", pattern, x)  # (R, N, L-1)
    return torch.cat([torch.zeros(R, N, 1, dtype=x.dtype, device=x.device), z], dim=2)


def effective(theta: torch.Tensor, factorised: bool = True, positional: str = "linear") -> dict[str, torch.Tensor]:
    """Slopes, values and dot-product weight the forward pass uses; each (R,)."""
    if positional not in ("linear", "quadratic"):
        raise ValueError(f"positional must be 'linear' or 'quadratic', got {positional!r}")
    slope = (lambda p: p) if positional == "linear" else (lambda p: p.pow(2))
    return {
        "p1": slope(theta[:, P1]), "pA": slope(theta[:, PA]), "vA": theta[:, VA], "vB": theta[:, VB],
        "w_KQ": theta[:, WQ] * theta[:, WK] if factorised else theta[:, WQ],
    }


def forward(
    theta: torch.Tensor, x: torch.Tensor, z: torch.Tensor | None = None, *,
    factorised: bool = True, positional: str = "linear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heads' outputs (u_A, u_B), each (R, N); theta (R, 6), x (N, L).

    ``z`` (R, N, L), layer 1's output, may be passed when layer 1 is frozen.
    """
    e = effective(theta, factorised, positional)
    z = previous_token_features(x, e["p1"]) if z is None else z
    L = x.shape[1]
    u_A = e["vA"][:, None] * torch.einsum("rj,rnj->rn", positional_weights(e["pA"], L - 1), z[:, :, : L - 1])
    logits = e["w_KQ"][:, None, None] * x[None, :, L - 1, None] * z[:, :, 1 : L - 1]  # (R, N, L-2)
    u_B = e["vB"][:, None] * (torch.softmax(logits, dim=2) * x[None, :, 1 : L - 1]).sum(dim=2)
    return u_A, u_B


def ratios_to_exact(result: dict) -> dict[str, float]:
    """A run's last evaluated vA/α*, vB/((1 − α*)κ_L) and w_KQ/w* (w_KQ = w_Q w_K, or w_Q when
    not factorised): each is 1 at the exact solution. ``result`` as from :func:`run_batch`."""
    config, theta = result["config"], result["theta"][-1]
    kappa = normalisation_factor(config.length, config.normalisation)
    w_kq = theta[WQ] * theta[WK] if config.factorised else theta[WQ]
    return {"vA": float(theta[VA] / config.alpha), "vB": float(theta[VB] / ((1 - config.alpha) * kappa)),
            "w_KQ": float(w_kq / config.w_star)}


def exact_solution(target: MixedTarget, slope: float = 50.0, device: str | torch.device = "cpu") -> torch.Tensor:
    """(1, 6) parameters of the exact solution, with slopes ``slope`` for p1, pA (→ ∞)."""
    theta = [slope, slope, target.alpha, (1 - target.alpha) * target.kappa, target.w_star, 1.0]
    return torch.tensor([theta], dtype=torch.float64, device=device)


PER_RUN_FIELDS = ("alpha", "sigma_init", "init_seed")  # the RunConfig fields runs of one batch may differ in


@dataclass(frozen=True)
class RunConfig:
    """One training run of the six-parameter model. Runs that share everything except
    ``alpha``, ``sigma_init`` and ``init_seed`` are trained together as one batched computation."""

    length: int = 32
    alpha: float = 0.5
    w_star: float = 0.5
    normalisation: str = "sqrt"
    sigma_init: float = 1e-2
    joint: bool = False  # train layer 1 (p1) too, from small init
    factorised: bool = True
    positional: str = "linear"
    lr: float = 0.2
    time: float = 400.0  # gradient-flow time lr · steps
    n_train: int = 4096
    n_eval: int = 4096
    n_evals: int = 200  # evaluations, log-spaced in time
    data_seed: int = 0
    target_part: str = "both"  # or one weighted component alone: "four_gram", "induction"
    init_seed: int | None = None  # None: trained parameters start at +σ_init; else N(0, σ_init²) draws

    def shared(self) -> tuple:
        """The fields a batch of runs must share (all but alpha, sigma_init and init_seed)."""
        return tuple(v for k, v in asdict(self).items() if k not in PER_RUN_FIELDS)


def initial_parameters(configs: list[RunConfig]) -> torch.Tensor:
    """(R, 6): every trained parameter at +σ_init, or, for a run with an ``init_seed``,
    drawn i.i.d. N(0, σ_init²) (random signs) from a generator seeded with it; layer-wise
    runs get p1 = IDEAL_P1."""
    theta = torch.tensor([[c.sigma_init] * 6 for c in configs], dtype=torch.float64)
    for r, c in enumerate(configs):
        if c.init_seed is not None:
            generator = torch.Generator().manual_seed(c.init_seed)
            theta[r] = c.sigma_init * torch.randn(6, generator=generator, dtype=torch.float64)
        if not c.joint:
            theta[r, P1] = IDEAL_P1 if c.positional == "linear" else math.sqrt(IDEAL_P1)
        if not c.factorised:
            theta[r, WK] = 1.0
    return theta


def trainable_mask(config: RunConfig, device: str | torch.device = "cpu") -> torch.Tensor:
    """(6,) bool on ``device``: which parameters gradient descent moves."""
    mask = torch.ones(6, dtype=torch.bool, device=device)
    mask[P1] = config.joint
    mask[WK] = config.factorised
    return mask


def output_function(config: RunConfig, theta: torch.Tensor, x: torch.Tensor):
    """(outputs, trained): ``outputs`` maps the trained entries (P,) of the parameters
    ``theta`` (6,) to the model's output f_θ on x (N,), the other entries held;
    ``trained`` (P,) is their value in ``theta``."""
    index = torch.nonzero(trainable_mask(config, theta.device))[:, 0]

    def outputs(trained: torch.Tensor) -> torch.Tensor:
        full = theta.index_put((index,), trained)
        u_A, u_B = forward(full[None], x, factorised=config.factorised, positional=config.positional)
        return (u_A + u_B)[0]

    return outputs, theta[index]


def evaluation_times(config: RunConfig) -> np.ndarray:
    """Steps (ints, unique, from 0) at which a run is evaluated, log-spaced in time."""
    steps = int(round(config.time / config.lr))
    return np.unique(np.concatenate([[0], np.geomspace(1, steps, config.n_evals).round().astype(int)]))


def run_batch(
    configs: list[RunConfig], progress_bar: bool | None = None, device: str | torch.device | None = None,
) -> list[dict]:
    """Train runs that share :meth:`RunConfig.shared` as one batched computation on ``device``
    (None: the current device).

    Returns one dict per config: ``t`` (E,) times lr·step; ``loss``, ``loss_G4``,
    ``loss_IH``, ``loss_lazy`` (the same run with w_Q = w_K = 0, which gradient descent
    cannot leave), ``r_G``, ``r_I``, ``r_M`` each (E,) on the evaluation sample; ``theta``
    (E, 6); ``config``.
    """
    first = configs[0]
    if any(c.shared() != first.shared() for c in configs):
        raise ValueError(f"run_batch needs configs that differ only in {', '.join(PER_RUN_FIELDS)}")
    if first.target_part not in TARGET_PARTS:
        raise ValueError(f"target_part must be one of {TARGET_PARTS}, got {first.target_part!r}")
    reference = MixedTarget(first.length, first.alpha, first.w_star, first.normalisation)  # κ_L, regressors
    device = devices.pick(device)
    generator = torch.Generator().manual_seed(first.data_seed)
    x_train, x_eval = (sample_tokens(n, first.length, generator).to(device) for n in (first.n_train, first.n_eval))
    alphas = torch.tensor([c.alpha for c in configs], dtype=torch.float64, device=device)
    R = len(configs)
    # runs 0..R-1 as configured, R..2R-1 their lazy twins (dot product switched off)
    theta = initial_parameters(configs).to(device).repeat(2, 1)
    theta[R:, WQ] = 0.0
    theta[R:, WK] = 0.0 if first.factorised else 1.0
    theta.requires_grad_(True)
    alphas2 = alphas.repeat(2)
    mask = trainable_mask(first, device).to(torch.float64).repeat(2 * R, 1)  # (2R, 6)
    mask[R:, WQ] = mask[R:, WK] = 0.0
    options = dict(factorised=first.factorised, positional=first.positional)

    keep_four, keep_induction = (float(first.target_part != part) for part in ("induction", "four_gram"))

    def components(x):  # (2R, N) each: α* x_{L-2} and (1 − α*) κ IH₂, unless switched off
        ih = induction_head(x, first.w_star)
        four = keep_four * alphas2[:, None] * four_gram(x)[None]
        return four, keep_induction * ((1 - alphas2) * reference.kappa)[:, None] * ih[None]

    train_four, train_ih = components(x_train)
    eval_four, eval_ih = components(x_eval)
    regressors = progress_regressors(x_eval, reference)
    frozen_z = {}  # layer 1's output, computed once when layer 1 is frozen (shared by every run)
    if not first.joint:
        p1 = theta[:1, P1].detach()
        frozen_z = {split: previous_token_features(x, p1).expand(2 * R, -1, -1)
                    for split, x in (("train", x_train), ("eval", x_eval))}

    eval_steps = evaluation_times(first)
    evaluate_at = set(eval_steps.tolist())
    records = []
    for step in tqdm(range(eval_steps[-1] + 1), disable=not progress_enabled(progress_bar), desc="six-parameter GD"):
        if step in evaluate_at:
            with torch.no_grad():
                u_A, u_B = forward(theta, x_eval, frozen_z.get("eval"), **options)
                records.append({
                    "loss": 0.5 * (u_A + u_B - eval_four - eval_ih).pow(2).mean(1),
                    "loss_G4": 0.5 * (u_A - eval_four).pow(2).mean(1),
                    "loss_IH": 0.5 * (u_B - eval_ih).pow(2).mean(1),
                    **progress(u_A + u_B, regressors, alphas2),
                    "theta": theta.detach().clone(),
                })
        if step == eval_steps[-1]:
            break
        u_A, u_B = forward(theta, x_train, frozen_z.get("train"), **options)
        loss = 0.5 * (u_A + u_B - train_four - train_ih).pow(2).mean(1).sum()
        (gradient,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta -= first.lr * gradient * mask

    stacked = {k: torch.stack([r[k] for r in records]).cpu().numpy() for k in records[0]}  # (E, 2R, ...)
    t = eval_steps * first.lr
    results = []
    for r, config in enumerate(configs):
        result = {k: v[:, r] for k, v in stacked.items()}
        result.update(t=t, loss_lazy=stacked["loss"][:, R + r], config=config)
        results.append(result)
    return results


def run_sweep(
    configs: list[RunConfig], progress_bar: bool | None = None, device: str | torch.device | None = None,
) -> list[dict]:
    """Run every config (batched where they share sizes) on ``device``; results in config order."""
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.shared(), []).append(index)
    results: list[dict] = [{}] * len(configs)
    for indices in groups.values():
        for index, result in zip(indices, run_batch([configs[i] for i in indices], progress_bar, device)):
            results[index] = result
    return results


SWEEP_ALPHAS = (0.2, 0.5, 0.8)
UNNORMALISED_LENGTHS = (8, 16, 32)
RESTARTS = 12  # random initialisations of the default run


def chapter_runs(p) -> dict[str, list[RunConfig]]:
    """The Wang chapter's runs from its validated parameters ``p`` (see ihcore.book.chapters.WANG).

    ``default``: one run; ``half_lr``: the default at half the learning rate; ``grid``:
    α* ∈ SWEEP_ALPHAS × σ_init ∈ {1e-1, ..., 1e-k} (α* major); ``length``: L = 16, 32, ...
    ≤ sweep_max_length with κ_L = √(L−2); ``unnormalised``: L ∈ UNNORMALISED_LENGTHS with
    κ_L = 1 (a longer time); ``decoupling``: the default on each weighted component alone
    (4-gram, then induction head); ``restarts``: the default from RESTARTS random
    initialisations N(0, σ_init²) (init seeds RESTARTS·seed + k). Sweep runs use α* = 0.5
    and σ_init = 1e-2 unless swept.
    """
    default = RunConfig(length=p.length, alpha=p.alpha, w_star=p.w_star, normalisation=p.normalisation,
                        sigma_init=p.sigma_init, lr=p.lr, time=p.time, n_train=p.n_train, n_eval=p.n_eval,
                        data_seed=p.seed)
    sigmas = [10.0 ** -k for k in range(1, p.sweep_sigma_decades + 1)]
    lengths = [2**k for k in range(4, int(math.log2(p.sweep_max_length)) + 1)]
    sweep = replace(default, alpha=0.5, sigma_init=1e-2)
    return {
        "default": [default],
        "half_lr": [replace(default, lr=p.lr / 2)],
        "grid": [replace(default, alpha=a, sigma_init=s) for a in SWEEP_ALPHAS for s in sigmas],
        "length": [replace(sweep, length=L, normalisation="sqrt") for L in lengths],
        "unnormalised": [replace(sweep, length=L, normalisation="none", time=p.unnormalised_time)
                         for L in UNNORMALISED_LENGTHS],
        "decoupling": [replace(default, target_part=part) for part in ("four_gram", "induction")],
        "restarts": [replace(default, init_seed=RESTARTS * p.seed + k) for k in range(RESTARTS)],
    }


def run_named(
    runs: dict[str, list[RunConfig]], progress_bar: bool | None = None, device: str | torch.device | None = None,
) -> dict[str, list[dict]]:
    """:func:`run_sweep` over every list at once (so runs of equal sizes batch together)."""
    configs = [config for group in runs.values() for config in group]
    results = iter(run_sweep(configs, progress_bar, device))
    return {name: [next(results) for _ in group] for name, group in runs.items()}


def run_one(config: RunConfig, progress_bar: bool | None = None, device: str | torch.device | None = None) -> dict:
    """One run on ``device`` (see :func:`run_batch` for the result's keys)."""
    return run_batch([config], progress_bar, device)[0]
