"""The six-parameter two-layer transformer (no FFN, relative positions) and its training.

This book's reconstruction of the paper's minimal model (the ICLR 2025/2026 reviewers describe
"a depth-2 model without FFN and with six learnable parameters"; its forward pass is not public). Parameters, per run:

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
from ihcore.spine.fits import line_fit
from ihcore.spine.train import progress_enabled, run_in_groups
from ihcore.spine.validation import ParameterError, refuse_invalid
from ihcore.wang.mixed_target import (
    NORMALISATIONS, MixedTarget, component_regressors, component_weights, four_gram, induction_head, sample_tokens
)
from ihcore.wang.phases import Phases, detect_phases, phase_one_end, plateau_deviation

PARAMETERS = ("p1", "pA", "vA", "vB", "w_Q", "w_K")
TARGET_PARTS = ("both", "four_gram", "induction")
POSITIONAL = ("linear", "quadratic")
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
    if positional not in POSITIONAL:
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


def exact_solution(target: MixedTarget, slope: float = 50.0, device: str | torch.device = "cpu") -> torch.Tensor:
    """(1, 6) parameters of the exact solution, with slopes ``slope`` for p1, pA (→ ∞)."""
    theta = [slope, slope, target.alpha, (1 - target.alpha) * target.kappa, target.w_star, 1.0]
    return torch.tensor([theta], dtype=torch.float64, device=device)


# ---------------------------------------------------------------------------------------------
# One training run


PER_RUN_FIELDS = ("alpha", "sigma_init", "init_seed")  # the fields runs of one ensemble may differ in


@dataclass(frozen=True)
class SixParameterConfig:
    """One training run of the six-parameter model: target, initialisation, protocol and sizes.

    The defaults are the Wang chapter's (``ihcore.book.chapters.WANG`` reads them from here).
    All sizes, times and the learning rate are this book's reconstruction (the paper's are
    not public); ``time`` is the gradient-flow time lr · steps.
    """

    length: int = 32
    alpha: float = 0.5
    w_star: float = 0.5
    normalisation: str = "sqrt"
    sigma_init: float = 1e-2
    joint: bool = False  # train layer 1 (p1) too, from small init
    factorised: bool = True  # w_KQ = w_Q w_K (False: w_KQ = w_Q, one parameter)
    positional: str = "linear"  # positional logits p (or "quadratic": p²)
    lr: float = 1.0
    time: float = 700.0
    n_train: int = 1024
    n_eval: int = 1024
    n_evals: int = 200  # evaluations, log-spaced in time
    data_seed: int = 0
    target_part: str = "both"  # or one weighted component alone: "four_gram", "induction"
    init_seed: int | None = None  # None: trained parameters start at +σ_init; else N(0, σ_init²) draws

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "length": (isinstance(self.length, int) and self.length >= 4, "an integer >= 4"),
            "alpha": (0.0 < self.alpha < 1.0, "a number in (0, 1)"),
            "normalisation": (self.normalisation in NORMALISATIONS, f"one of {NORMALISATIONS}"),
            "sigma_init": (self.sigma_init > 0, "a number > 0"),
            "positional": (self.positional in POSITIONAL, f"one of {POSITIONAL}"),
            "lr": (self.lr > 0, "a number > 0"),
            "time": (self.time >= self.lr, f"a number >= lr = {self.lr} (at least one step)"),
            "n_train": (isinstance(self.n_train, int) and self.n_train >= 1, "an integer >= 1"),
            "n_eval": (isinstance(self.n_eval, int) and self.n_eval >= 3, "an integer >= 3"),
            "n_evals": (isinstance(self.n_evals, int) and self.n_evals >= 2, "an integer >= 2"),
            "target_part": (self.target_part in TARGET_PARTS, f"one of {TARGET_PARTS}"),
            "init_seed": (self.init_seed is None or (isinstance(self.init_seed, int) and self.init_seed >= 0),
             "None or an integer >= 0"),
        })

    @property
    def target(self) -> MixedTarget:
        return MixedTarget(self.length, self.alpha, self.w_star, self.normalisation)

    def shared(self) -> tuple:
        """The fields the runs of one ensemble must share (all but :data:`PER_RUN_FIELDS`)."""
        return tuple(v for k, v in asdict(self).items() if k not in PER_RUN_FIELDS)


def ratios_to_exact(result: dict) -> dict[str, float]:
    """A run's last evaluated vA/α*, vB/((1 − α*)κ_L) and w_KQ/w* (w_KQ = w_Q w_K, or w_Q when
    not factorised): each is 1 at the exact solution. ``result`` as from :func:`run`."""
    config, theta = SixParameterConfig(**result["config"]), result["theta"][-1]
    w_kq = theta[WQ] * theta[WK] if config.factorised else theta[WQ]
    return {"vA": float(theta[VA] / config.alpha), "vB": float(theta[VB] / ((1 - config.alpha) * config.target.kappa)),
            "w_KQ": float(w_kq / config.w_star)}


def initial_parameters(configs: list[SixParameterConfig]) -> torch.Tensor:
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


def trainable_mask(config: SixParameterConfig, device: str | torch.device = "cpu") -> torch.Tensor:
    """(6,) bool on ``device``: which parameters gradient descent moves."""
    mask = torch.ones(6, dtype=torch.bool, device=device)
    mask[P1] = config.joint
    mask[WK] = config.factorised
    return mask


def output_function(config: SixParameterConfig, theta: torch.Tensor, x: torch.Tensor):
    """(outputs, trained): ``outputs`` maps the trained entries (P,) of the parameters
    ``theta`` (6,) to the model's output f_θ on x (N,), the other entries held;
    ``trained`` (P,) is their value in ``theta``."""
    index = torch.nonzero(trainable_mask(config, theta.device))[:, 0]

    def outputs(trained: torch.Tensor) -> torch.Tensor:
        full = theta.index_put((index,), trained)
        u_A, u_B = forward(full[None], x, factorised=config.factorised, positional=config.positional)
        return (u_A + u_B)[0]

    return outputs, theta[index]


def evaluation_times(config: SixParameterConfig) -> np.ndarray:
    """Steps (ints, unique, from 0) at which a run is evaluated, log-spaced in time."""
    steps = int(round(config.time / config.lr))
    return np.unique(np.concatenate([[0], np.geomspace(1, steps, config.n_evals).round().astype(int)]))


def run_ensemble(
    configs: list[SixParameterConfig], *, device: str | torch.device | None = None, progress: bool | None = None,
) -> list[dict]:
    """Train runs that share :meth:`SixParameterConfig.shared` as one batched computation on
    ``device`` (None: the current device); ``progress``: a progress bar over the steps (None:
    on unless disabled, see :func:`ihcore.spine.train.progress_enabled`). Each member's result
    equals its :func:`run` bit for bit on the CPU (every row's loss, gradient and regression
    depend on that row only): batching only saves time, most on a GPU.

    Returns one dict per config: ``t`` (E,) times lr·step; ``loss``, ``loss_G4``,
    ``loss_IH``, ``loss_lazy`` (the same run with w_Q = w_K = 0, which gradient descent
    cannot leave), ``r_G``, ``r_I``, ``r_M`` each (E,) on the evaluation sample (see
    :func:`ihcore.wang.mixed_target.component_weights`); ``theta`` (E, 6); ``config`` (its fields).
    """
    first = configs[0]
    if any(c.shared() != first.shared() for c in configs):
        raise ParameterError(f"an ensemble needs configs that differ only in {', '.join(PER_RUN_FIELDS)}")
    reference = first.target  # κ_L, regressors
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
    regressors = component_regressors(x_eval, reference)
    frozen_z = {}  # layer 1's output, computed once when layer 1 is frozen (shared by every run)
    if not first.joint:
        p1 = theta[:1, P1].detach()
        frozen_z = {split: previous_token_features(x, p1).expand(2 * R, -1, -1)
                    for split, x in (("train", x_train), ("eval", x_eval))}

    eval_steps = evaluation_times(first)
    evaluate_at = set(eval_steps.tolist())
    records = []
    for step in tqdm(range(eval_steps[-1] + 1), disable=not progress_enabled(progress), desc="six-parameter GD"):
        if step in evaluate_at:
            with torch.no_grad():
                u_A, u_B = forward(theta, x_eval, frozen_z.get("eval"), **options)
                records.append({
                    "loss": 0.5 * (u_A + u_B - eval_four - eval_ih).pow(2).mean(1),
                    "loss_G4": 0.5 * (u_A - eval_four).pow(2).mean(1),
                    "loss_IH": 0.5 * (u_B - eval_ih).pow(2).mean(1),
                    **component_weights(u_A + u_B, regressors, alphas2),
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
        result.update(t=t, loss_lazy=stacked["loss"][:, R + r], config=asdict(config))
        results.append(result)
    return results


def run_groups(configs: list[SixParameterConfig], *, device: str | torch.device | None = None,
               progress: bool | None = None) -> list[dict]:
    """Results of ``configs`` in order, the configs that share :meth:`SixParameterConfig.shared`
    (e.g. the random restarts, which differ only in ``init_seed``) trained together as one
    :func:`run_ensemble`: a sweep's ``run_many``."""
    return run_in_groups(configs, lambda group: run_ensemble(group, device=device, progress=progress),
                         key=SixParameterConfig.shared)


def run(config: SixParameterConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """One run (with its lazy twin) on ``device``; the result's keys as in :func:`run_ensemble`."""
    return run_ensemble([config], device=device, progress=progress)[0]


# ---------------------------------------------------------------------------------------------
# The chapter's lists of runs (the wang-* sweeps of ihcore.book.sweep_registry), from its parameters p


SWEEP_ALPHAS = (0.2, 0.5, 0.8)
UNNORMALISED_LENGTHS = (8, 16, 32)
STRESS_VARIANTS = {  # stress-test rows: label -> the fields changed from the default run
    "six-parameter, layer-wise (default)": {},
    "joint training": {"joint": True},
    "w_KQ as one parameter": {"factorised": False},
    "quadratic positional logits": {"positional": "quadratic"},
}


def chapter_config(p) -> SixParameterConfig:
    """The chapter's default run from its validated parameters ``p`` (see ihcore.book.chapters.WANG)."""
    return SixParameterConfig(length=p.length, alpha=p.alpha, w_star=p.w_star, normalisation=p.normalisation,
                              sigma_init=p.sigma_init, lr=p.lr, time=p.time, n_train=p.n_train, n_eval=p.n_eval,
                              data_seed=p.seed)


def _sweep_default(p) -> SixParameterConfig:
    """The default run at α* = 0.5 and σ_init = 1e-2: the base of the runs that sweep one other field."""
    return replace(chapter_config(p), alpha=0.5, sigma_init=1e-2)


def default_runs(p) -> list[SixParameterConfig]:
    """The default run, alone."""
    return [chapter_config(p)]


def half_lr_runs(p) -> list[SixParameterConfig]:
    """The default run at half the learning rate (a check that lr is a fair gradient-flow proxy)."""
    return [replace(chapter_config(p), lr=p.lr / 2)]


def grid_runs(p) -> list[SixParameterConfig]:
    """α* ∈ SWEEP_ALPHAS × σ_init ∈ {1e-1, ..., 1e-k}, k = sweep_sigma_decades (α* major)."""
    sigmas = [10.0 ** -k for k in range(1, p.sweep_sigma_decades + 1)]
    return [replace(chapter_config(p), alpha=a, sigma_init=s) for a in SWEEP_ALPHAS for s in sigmas]


def length_runs(p) -> list[SixParameterConfig]:
    """L = 16, 32, ... ≤ sweep_max_length with κ_L = √(L−2)."""
    lengths = [2**k for k in range(4, int(math.log2(p.sweep_max_length)) + 1)]
    return [replace(_sweep_default(p), length=L, normalisation="sqrt") for L in lengths]


def unnormalised_runs(p) -> list[SixParameterConfig]:
    """L ∈ UNNORMALISED_LENGTHS with κ_L = 1, for the time unnormalised_time."""
    return [replace(_sweep_default(p), length=L, normalisation="none", time=p.unnormalised_time)
            for L in UNNORMALISED_LENGTHS]


def decoupling_runs(p) -> list[SixParameterConfig]:
    """The default run on each weighted component alone: the 4-gram, then the induction head."""
    return [replace(chapter_config(p), target_part=part) for part in ("four_gram", "induction")]


def restart_runs(p) -> list[SixParameterConfig]:
    """The default run from n_seeds random initialisations N(0, σ_init²), init seeds seed, ...,
    seed + n_seeds − 1 (one restart per chapter seed), on the default run's Monte Carlo sample."""
    return [replace(chapter_config(p), init_seed=p.seed + k) for k in range(p.n_seeds)]


def single_grid_runs(p) -> list[SixParameterConfig]:
    """The σ_init sweep of :func:`grid_runs` at α* = 0.5 with w_KQ as one parameter (the test of the
    quadratic-vs-linear account: a linear w_KQ has no saddle to escape)."""
    sigmas = [10.0 ** -k for k in range(1, p.sweep_sigma_decades + 1)]
    return [replace(_sweep_default(p), sigma_init=s, factorised=False) for s in sigmas]


def joint_restart_runs(p) -> list[SixParameterConfig]:
    """:func:`restart_runs` with joint training: every parameter, p1 included, drawn N(0, σ_init²)."""
    return [replace(config, joint=True) for config in restart_runs(p)]


def variant_runs(p) -> list[SixParameterConfig]:
    """The stress-test variants of the default run, in the order of :data:`STRESS_VARIANTS`."""
    return [replace(chapter_config(p), **changes) for changes in STRESS_VARIANTS.values()]


# ---------------------------------------------------------------------------------------------
# Reading runs: the chapter's summaries


def run_phases(result: dict) -> Phases:
    """The phase times of a run (:func:`ihcore.wang.phases.detect_phases` on its r_G, r_I)."""
    return detect_phases(result["t"], result["r_G"], result["r_I"])


def w_kq(result: dict) -> np.ndarray:
    """(E,) the dot-product weight w_KQ = w_Q w_K along a run."""
    return result["theta"][:, WQ] * result["theta"][:, WK]


def phase_summary(result: dict) -> dict[str, float]:
    """The default run's plateau and phase-1 numbers: ``plateau_deviation`` (max |loss / lazy-twin
    loss − 1| over the plateau window), ``phase_one`` (index of the end of phase 1, r_G ≥ 0.9),
    ``ih_drop`` (relative drop of L_IH from t = 0 to then), ``r_M`` and ``r_I`` then."""
    found = run_phases(result)
    end = phase_one_end(result["r_G"])
    return {
        "plateau_deviation": plateau_deviation(result["t"], result["loss"], result["loss_lazy"],
                                               found.plateau_start, found.plateau_end),
        "phase_one": end,
        "ih_drop": float(1 - result["loss_IH"][end] / result["loss_IH"][0]),
        "r_M": float(result["r_M"][end]),
        "r_I": float(result["r_I"][end]),
    }


def escape_fits(result: dict) -> dict[str, float]:
    """Time scales of a run: ``rate`` and ``r_squared`` of ln w_KQ ≈ a + rate·t while
    2σ_init² ≤ w_KQ ≤ w*/10 (an exponential escape from the saddle), and ``pA_r_squared`` of
    the same fit of ln pA while 0 < t and pA ≤ 1."""
    config, t = SixParameterConfig(**result["config"]), result["t"]
    weight = w_kq(result)
    escape = (weight >= 2 * config.sigma_init**2) & (weight <= config.w_star / 10)
    fit = line_fit(t[escape], np.log(weight[escape]))
    pa = result["theta"][:, PA]
    early = (t > 0) & (pa <= 1.0)
    return {"rate": fit.slope, "r_squared": fit.r_squared, "pA_r_squared": line_fit(t[early], np.log(pa[early])).r_squared}


def decoupling_deviations(mixed: dict, four_gram_only: dict, induction_only: dict) -> dict[str, float]:
    """max over t of |mixed run − run on one component alone|, for vA/α* (against the 4-gram
    run), vB/((1 − α*)κ_L) and w_KQ/w* (against the induction-head run)."""
    config = SixParameterConfig(**mixed["config"])
    theta = mixed["theta"]
    return {
        "vA": np.abs(theta[:, VA] - four_gram_only["theta"][:, VA]).max() / config.alpha,
        "vB": np.abs(theta[:, VB] - induction_only["theta"][:, VB]).max() / ((1 - config.alpha) * config.target.kappa),
        "w_KQ": np.abs(w_kq(mixed) - w_kq(induction_only)).max() / config.w_star,
    }


def plateau_times(result: dict) -> tuple[float, float, float]:
    """(P, T_G4, T_IH) of a run."""
    found = run_phases(result)
    return found.plateau_length, found.t_four_gram, found.t_induction


def plateau_scaling(grid: list[dict], lengths: list[dict], unnormalised: list[dict]) -> dict:
    """The plateau's scaling from the grid, length and κ_L = 1 sweeps' results.

    ``sigmas`` (descending) and ``alphas`` of the grid; ``grid_plateaus[α*]`` (σ, 3) rows (P, T_G4, T_IH);
    ``fits[α*]["P" | "T_IH"]``: (slope, intercept, R²) against ln(1/σ_init); ``lengths``,
    ``length_plateaus``, ``unnormalised_lengths``, ``unnormalised_plateaus``; ``order``: the
    fraction of grid and length runs with T_G4 < T_IH; ``alpha_ratio``: P(α* = 0.8) / P(α* = 0.2)
    at σ_init = 1e-2; ``length_slope``, ``unnormalised_slope``: log-log slopes of P against L.
    """
    sigmas = sorted({r["config"]["sigma_init"] for r in grid}, reverse=True)
    alphas = sorted({r["config"]["alpha"] for r in grid})
    log_inverse_sigma = np.log(1 / np.array(sigmas))
    fits, grid_plateaus = {}, {}
    for a in alphas:
        grid_plateaus[a] = np.array([plateau_times(r) for r in grid if r["config"]["alpha"] == a])
        fits[a] = {}
        for name, column in (("P", 0), ("T_IH", 2)):
            fit = line_fit(log_inverse_sigma, grid_plateaus[a][:, column])
            fits[a][name] = (fit.slope, fit.intercept, fit.r_squared)
    length_values = [r["config"]["length"] for r in lengths]
    unnormalised_values = [r["config"]["length"] for r in unnormalised]
    length_plateaus = np.array([plateau_times(r)[0] for r in lengths])
    unnormalised_plateaus = np.array([plateau_times(r)[0] for r in unnormalised])
    sigma_index = sigmas.index(1e-2)
    return {
        "sigmas": sigmas, "alphas": alphas, "log_inverse_sigma": log_inverse_sigma,
        "grid_plateaus": grid_plateaus, "fits": fits,
        "lengths": length_values, "length_plateaus": length_plateaus,
        "unnormalised_lengths": unnormalised_values, "unnormalised_plateaus": unnormalised_plateaus,
        "order": float(np.mean([plateau_times(r)[1] < plateau_times(r)[2] for r in grid + lengths])),
        "alpha_ratio": grid_plateaus[0.8][sigma_index, 0] / grid_plateaus[0.2][sigma_index, 0],
        "length_slope": line_fit(np.log(length_values), np.log(length_plateaus)).slope,
        "unnormalised_slope": line_fit(np.log(unnormalised_values), np.log(unnormalised_plateaus)).slope,
    }


def sigma_slope(results: list[dict]) -> dict:
    """The plateau against σ_init over runs that differ in it: ``sigmas`` (descending), ``plateaus``
    (P per run, in that order), ``slope``, ``intercept`` and ``r_squared`` of P ≈ a + slope·ln(1/σ_init)."""
    ordered = sorted(results, key=lambda r: -r["config"]["sigma_init"])
    sigmas = [r["config"]["sigma_init"] for r in ordered]
    plateaus = np.array([plateau_times(r)[0] for r in ordered])
    fit = line_fit(np.log(1 / np.array(sigmas)), plateaus)
    return {"sigmas": sigmas, "plateaus": plateaus, "slope": fit.slope, "intercept": fit.intercept,
            "r_squared": fit.r_squared}


def phase_lists(results: list[dict]) -> dict[str, list[float]]:
    """Per run: ``T_G4``, ``T_IH``, ``P`` (plateau length), ``plateau_ratio`` (T_IH / T(r_G ≥ 0.9)) and
    ``order`` (1.0 if T_G4 < T_IH, else 0.0); a time never reached is ∞ (so is what depends on it)."""
    found = [run_phases(r) for r in results]

    def never(value: float) -> float:
        return math.inf if math.isnan(value) else value

    return {
        "T_G4": [never(f.t_four_gram) for f in found],
        "T_IH": [never(f.t_induction) for f in found],
        "P": [never(f.plateau_length) for f in found],
        "plateau_ratio": [never(f.plateau_ratio) for f in found],
        "order": [float(f.t_four_gram < f.t_induction) for f in found],
    }


def restart_summary(restarts: list[dict], default: dict) -> dict:
    """The random restarts against the default run: ``ratios`` (per run, :func:`ratios_to_exact`),
    ``errors`` (per run: max |ratio − 1| over its ratios), ``error`` (their max), ``default_error``, ``phases`` (per run),
    ``t_induction`` (R,), ``growing`` (R,) |w_Q + w_K| at t = 0, ``final_theta`` (R, 6), and the
    fit T_IH ≈ a + slope·ln(1/|w_Q + w_K|(0)) as ``slope`` and ``r_squared``."""
    start = np.array([r["theta"][0] for r in restarts])  # (runs, 6)
    found = [run_phases(r) for r in restarts]
    t_induction = np.array([f.t_induction for f in found])
    growing = np.abs(start[:, WQ] + start[:, WK])
    ratios = [ratios_to_exact(r) for r in restarts]
    fit = line_fit(np.log(1 / growing), t_induction)
    return {
        "ratios": ratios,
        "errors": [max(abs(value - 1) for value in r.values()) for r in ratios],
        "error": max(abs(value - 1) for r in ratios for value in r.values()),
        "default_error": max(abs(v - 1) for v in ratios_to_exact(default).values()),
        "phases": found, "t_induction": t_induction, "growing": growing,
        "final_theta": np.array([r["theta"][-1] for r in restarts]),
        "slope": fit.slope, "r_squared": fit.r_squared,
    }
