"""Beyond six parameters: the two-layer attention-only transformer with relative positions on d_x-dimensional tokens.

This book's reconstruction of the paper's "higher-dimensional" synthetic run (the v3
abstract and the ICLR 2026 reviewers report that a higher-dimensional run trained with Adam
shows several plateaus; its setup is not public). Everything below is this book's choice.

**Data** (:class:`VectorMixedTarget`). Tokens x_1..x_L i.i.d. N(0, I_{d_x}) (tensor (N, L, d_x)).
Target at position L: f* = α* g(X) + (1 − α*) κ_L IH₂(X; W*), with g = x_{L−2} (the 4-gram)
or x_{L−1} (``gram=3``, the 3-gram), IH₂(X; W*) = Σ_{s=2}^{L−1} softmax_s(x_Lᵀ W* x_{s−1}) x_s,
W* = (w*/√d_x) I and κ_L as in :mod:`ihcore.wang.mixed_target`. Loss ½ E ‖f − f*‖² / d_x
(the d_x = 1 case is the six-parameter chapter's loss). ``planted=True`` is the
inductive-bias data: every training sequence has x_{L−3} = x_L and the target is x_{L−2},
the answer both mechanisms give on it (the 4-gram reads it by position, an induction head
by the exact match x_{L−3} = x_L); evaluation (split ``"test"``) uses unplanted sequences,
where they disagree.

**Model** (:class:`RPETransformer`). Embedding h⁰_s = E x_s with E = [I_{d_x}; 0] ∈ R^{d×d_x}
fixed. Layers ℓ = 1, 2 with H_ℓ heads (default 1, 2); head h's logits over the keys j < t
(no self-attention; position 1 has no key and adds 0):

    λ_{t,j} = (W_Q h_t)ᵀ (W_K h_j) − m_{ℓh} (t − 1 − j),

the update h^ℓ_t = h^{ℓ−1}_t + Σ_h W_O Σ_j softmax_j(λ_{t,j}) W_V h_j, the readout
f = W_out h²_L ∈ R^{d_x}. Shapes: W_Q, W_K, W_V (d_k, d); W_O (d, d_k); W_out (d_x, d); the
slopes m scalar (the linear RPE of the six-parameter model). Entries N(0, σ_init²), slopes 0.
``layerwise=True`` replaces layer 1 by the ideal previous-token head (buffers, not trained):
W_Q = W_K = 0, slope IDEAL_SLOPE, W_V reading x and W_O writing it into coordinates
d_x..2d_x − 1, so h¹_t = (x_t, x_{t−1}, 0, ...) — the layer-wise protocol's stage 1.

**Training**: the spine's :func:`ihcore.spine.train.train_members` (seeds as one ensemble),
fresh batches every step, Adam or plain gradient steps (``"sgd"``: the gradient-descent run,
on fresh batches rather than one fixed sample, so a noisy proxy of gradient flow). **Measures** on a fixed evaluation batch: the loss and the learned
fractions r_G, r_M, r_I of :func:`ihcore.wang.mixed_target.component_weights`, with the output
coordinates pooled (regressors g, κ m̄, κ (IH₂ − m̄), each (N·d_x,)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from ihcore.spine import devices
from ihcore.spine.curves import first_crossing
from ihcore.spine.train import Member, Seeds, run_in_groups, train_members
from ihcore.spine.validation import ParameterError, refuse_invalid
from ihcore.wang.mixed_target import NORMALISATIONS, component_weights, normalisation_factor
from ihcore.wang.phases import SMOOTHING, LossPlateaus, count_plateaus

IDEAL_SLOPE = 15.0  # layer-wise runs: weight >= 1 - 1e-6 on the previous token
OPTIMISERS = ("adam", "sgd")
GRAMS = (3, 4)


def vector_induction_head(x: torch.Tensor, w: float) -> torch.Tensor:
    """IH₂(X; W) with W = (w/√d_x) I: x (N, L, d_x) -> (N, d_x)."""
    d_x = x.shape[2]
    logits = torch.einsum("nd,nsd->ns", x[:, -1], x[:, :-2]) * (w / math.sqrt(d_x))  # keys x_{s-1}, s = 2..L-1
    return torch.einsum("ns,nsd->nd", torch.softmax(logits, dim=1), x[:, 1:-1])


@dataclass(frozen=True)
class VectorBatch(devices.TensorBatch):
    """tokens (B, L, d_x) float32; target (B, d_x)."""

    tokens: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class VectorMixedTarget:
    """The mixed target on d_x-dimensional Gaussian tokens (module docstring); a task of the spine's loop."""

    d_x: int
    length: int
    alpha: float
    w_star: float
    normalisation: str = "sqrt"
    gram: int = 4
    planted: bool = False

    @property
    def kappa(self) -> float:
        return normalisation_factor(self.length, self.normalisation)

    def n_gram(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed-position component: x_{L−2} (gram 4) or x_{L−1} (gram 3), (N, d_x)."""
        return x[:, -3] if self.gram == 4 else x[:, -2]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """f*(X) on unplanted data: (N, L, d_x) -> (N, d_x)."""
        return self.alpha * self.n_gram(x) + (1 - self.alpha) * self.kappa * vector_induction_head(x, self.w_star)

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> VectorBatch:
        """Fresh sequences; planted ones (x_{L−3} = x_L, target x_{L−2}) for planted training
        data, unplanted ones with f* otherwise (and for a planted task's ``"test"`` split)."""
        x = torch.randn(batch_size, self.length, self.d_x, generator=generator, dtype=torch.float64)
        if self.planted and split == "train":
            x[:, -4] = x[:, -1]
            return VectorBatch(x.float(), x[:, -3].float())
        return VectorBatch(x.float(), self(x).float())

    def loss(self, logits: torch.Tensor, batch: VectorBatch) -> torch.Tensor:
        """½ mean over the batch and the d_x coordinates of (f − f*)²; logits (B, L, d_x)."""
        return 0.5 * (logits[:, -1] - batch.target).pow(2).mean()

    def regressors(self, x: torch.Tensor) -> torch.Tensor:
        """(N·d_x, 3): g, κ m̄, κ (IH₂(W*) − m̄), output coordinates pooled; x (N, L, d_x) float64."""
        mean = x[:, 1:-1].mean(dim=1)
        columns = [self.n_gram(x), self.kappa * mean, self.kappa * (vector_induction_head(x, self.w_star) - mean)]
        return torch.stack([c.reshape(-1) for c in columns], dim=1)


def vector_measure(task: VectorMixedTarget):
    """Measure: ``loss`` on the ``"train"`` evaluation batch; ``r_G``, ``r_M``, ``r_I`` of the readout
    at position L on the ``"test"`` batch (unplanted sequences; the same distribution when not planted)."""

    def measure(model, batches: Mapping[str, VectorBatch]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            train_loss = task.loss(model(batches["train"].tokens), batches["train"])
            test = batches["test"]
            outputs = model(test.tokens)[:, -1].double().reshape(1, -1)
        x = test.tokens.double()
        # planted data have no mixed target: report the raw coefficients (r_G = 1: the output is x_{L-2})
        alpha = torch.tensor([0.5 if task.planted else task.alpha], dtype=torch.float64, device=x.device)
        values = component_weights(outputs, task.regressors(x), alpha)
        if task.planted:
            values = {k: 0.5 * v for k, v in values.items()}
        values["loss"] = train_loss
        return {k: np.asarray(float(v.squeeze())) for k, v in values.items()}

    return measure


class RPETransformer(nn.Module):
    """Two attention layers, no FFN, linear relative positions, fixed embedding (module docstring).

    ``forward(tokens (B, T, d_x)) -> (B, T, d_x)``, the readout at every position.
    """

    def __init__(self, d_x: int, d: int, heads: tuple[int, int], sigma_init: float, seed: int,
                 layerwise: bool = False) -> None:
        super().__init__()
        if d < 2 * d_x:
            raise ParameterError(f"d = {d} is invalid: expected >= 2 d_x = {2 * d_x} (room for x_t and x_(t-1))")
        generator = torch.Generator().manual_seed(seed)

        def draw(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * sigma_init)

        self.register_buffer("E", torch.eye(d, d_x))  # [I; 0]: x_s in the first d_x coordinates
        self.layerwise = layerwise
        for layer, n in enumerate(heads, start=1):
            weights = {"W_Q": draw(n, d, d), "W_K": draw(n, d, d), "W_V": draw(n, d, d), "W_O": draw(n, d, d),
                       "slope": nn.Parameter(torch.zeros(n))}
            if layer == 1 and layerwise:
                ideal = {"W_Q": torch.zeros(n, d, d), "W_K": torch.zeros(n, d, d), "W_V": torch.zeros(n, d, d),
                         "W_O": torch.zeros(n, d, d), "slope": torch.full((n,), IDEAL_SLOPE)}
                ideal["W_V"][0, :d_x, :d_x] = torch.eye(d_x)  # (d_k, d): reads x_j
                ideal["W_O"][0, d_x:2 * d_x, :d_x] = torch.eye(d_x)  # (d, d_k): writes it beside x_t
                for name, value in ideal.items():
                    self.register_buffer(f"{name}{layer}", value)
            else:
                for name, value in weights.items():
                    setattr(self, f"{name}{layer}", value)
        self.W_out = draw(d_x, d)

    def attention(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """One layer's summed head outputs: h (B, T, d) -> (B, T, d)."""
        W_Q, W_K, W_V, W_O, slope = (getattr(self, f"{name}{layer}") for name in ("W_Q", "W_K", "W_V", "W_O", "slope"))
        T = h.shape[1]
        arange = torch.arange(T, device=h.device, dtype=h.dtype)
        distance = arange[:, None] - 1 - arange[None, :]  # (T, T): t − 1 − j, negative where j >= t
        q = torch.einsum("btd,hed->bhte", h, W_Q)  # (B, H, T, d_k)
        k = torch.einsum("btd,hed->bhte", h, W_K)
        v = torch.einsum("btd,hed->bhte", h, W_V)
        logits = torch.einsum("bhte,bhje->bhtj", q, k) - slope[None, :, None, None] * distance  # (B, H, T, T)
        logits = logits.masked_fill(distance < 0, float("-inf"))
        pattern = torch.softmax(logits[:, :, 1:], dim=-1)  # query rows t = 2..T (row 1 has no key)
        z = torch.einsum("bhtj,bhje->bhte", pattern, v)  # (B, H, T-1, d_k)
        out = torch.einsum("bhte,hde->btd", z, W_O)  # (B, T-1, d)
        return torch.cat([torch.zeros_like(h[:, :1]), out], dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = tokens @ self.E.T  # (B, T, d)
        h = h + self.attention(h, 1)
        h = h + self.attention(h, 2)
        return h @ self.W_out.T  # (B, T, d_x)


@dataclass(frozen=True)
class FullTransformerConfig:
    """One run of :class:`RPETransformer` on :class:`VectorMixedTarget`; all values this book's choice.

    ``d`` 0 means 8 for d_x = 1 and 16 otherwise (d = d_k). ``optimiser`` "adam" or "sgd" (plain
    gradient steps on fresh batches: the gradient-descent proxy). Evaluations every ``eval_every`` steps on ``eval_batch`` sequences.
    """

    d_x: int = 4
    length: int = 32
    alpha: float = 0.5
    w_star: float = 0.5
    normalisation: str = "sqrt"
    gram: int = 4
    planted: bool = False
    d: int = 0
    heads: tuple[int, int] = (1, 2)
    sigma_init: float = 1e-2
    layerwise: bool = False
    optimiser: str = "adam"
    lr: float = 1e-3
    steps: int = 4000
    batch_size: int = 256
    eval_every: int = 10
    eval_batch: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "d_x": (self.d_x >= 1, "an integer >= 1"),
            "length": (self.length >= 5, "an integer >= 5"),
            "alpha": (0.0 < self.alpha < 1.0, "a number in (0, 1)"),
            "normalisation": (self.normalisation in NORMALISATIONS, f"one of {NORMALISATIONS}"),
            "gram": (self.gram in GRAMS, f"one of {GRAMS}"),
            "optimiser": (self.optimiser in OPTIMISERS, f"one of {OPTIMISERS}"),
            "lr": (self.lr > 0, "a number > 0"),
            "steps": (self.steps >= 1, "an integer >= 1"),
            "eval_every": (1 <= self.eval_every <= self.steps, "an integer in [1, steps]"),
            "sigma_init": (self.sigma_init > 0, "a number > 0"),
        })

    @property
    def width(self) -> int:
        return self.d or (8 if self.d_x == 1 else 16)

    def task(self) -> VectorMixedTarget:
        return VectorMixedTarget(self.d_x, self.length, self.alpha, self.w_star, self.normalisation, self.gram,
                                 self.planted)

    def model(self) -> RPETransformer:
        return RPETransformer(self.d_x, self.width, tuple(self.heads), self.sigma_init, Seeds.from_base(self.seed).init,
                              self.layerwise)


def _train_group(group: list[FullTransformerConfig], device, progress) -> list[dict]:
    first = group[0]
    members = [Member(c.model(), c.task(), Seeds.from_base(c.seed), [vector_measure(c.task())]) for c in group]
    histories = train_members(members, steps=first.steps, lr=first.lr, batch_size=first.batch_size,
                              eval_every=first.eval_every, eval_splits=("train", "test"),
                              eval_batch_size=first.eval_batch, optimizer=first.optimiser,
                              progress=progress, device=device)
    results = []
    for config, member, history in zip(group, members, histories):
        slopes = [float(getattr(member.model, f"slope{layer}")[h].detach()) for layer, n in ((1, config.heads[0]),
                                                                                    (2, config.heads[1])) for h in range(n)]
        results.append({"steps": history.eval_steps, **{k: history[k] for k in ("loss", "r_G", "r_M", "r_I")},
                        "final_slopes": np.array(slopes), "config": asdict(config)})
    return results


def run_many(configs: list[FullTransformerConfig], *, device: str | torch.device | None = None,
             progress: bool | None = None) -> list[dict]:
    """Results of ``configs`` in order; configs that differ only in ``seed`` train as one ensemble.

    Each result: ``steps`` (E,) evaluation steps; ``loss`` (E,) on the training distribution;
    ``r_G``, ``r_M``, ``r_I`` (E,) on unplanted sequences; ``final_slopes`` (H₁ + H₂,) the RPE slopes at the end; ``config``.
    """
    return run_in_groups(configs, lambda group: _train_group(group, device, progress))


def run(config: FullTransformerConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """One run (:func:`run_many` of one config)."""
    return run_many([config], device=device, progress=progress)[0]


def seed_configs(config: FullTransformerConfig, n_seeds: int) -> list[FullTransformerConfig]:
    """``config`` at seeds config.seed, ..., config.seed + n_seeds − 1."""
    return [replace(config, seed=config.seed + k) for k in range(n_seeds)]


# ---------------------------------------------------------------------------------------------
# The chapter's runs (the sweep wang-full of ihcore.book.sweep_registry), from its parameters p

SCALES = ("quick", "paper")
# setting -> the fields changed from the base run; "paper" runs every setting, "quick" the first, shorter
# (steps set by the CPU budget of this round: 2 shared cores)
SETTINGS = {
    "Adam, joint": {},
    "Adam, layer-wise": {"layerwise": True, "steps": 3000},
    "gradient descent, joint": {"optimiser": "sgd", "lr": 0.5, "steps": 20_000, "eval_every": 25},
    "gradient descent, layer-wise": {"optimiser": "sgd", "lr": 0.5, "steps": 10_000, "eval_every": 25, "layerwise": True},
    "Adam, planted (inductive bias)": {"planted": True, "steps": 6000},
    "Adam, 3-gram target": {"gram": 3, "steps": 6000},
}
QUICK_SETTINGS = ("Adam, joint",)
QUICK_STEPS = 400


def base_config(p) -> FullTransformerConfig:
    """The base run from the chapter's parameters: its target (α*, w*, κ_L) and first seed; L = 16,
    batches of 64, Adam at lr 1e-3 for 4000 steps (this book's sizes, set by the CPU budget)."""
    return FullTransformerConfig(d_x=4, length=16, alpha=p.alpha, w_star=p.w_star, normalisation=p.normalisation,
                                 batch_size=64, eval_batch=256, lr=1e-3, steps=4000, eval_every=10, seed=p.seed)


def chapter_configs(p) -> list[FullTransformerConfig]:
    """Every setting of :data:`SETTINGS` at the n_seeds seeds (setting major) at ``p.scale = "paper"``;
    at ``"quick"`` the :data:`QUICK_SETTINGS` for :data:`QUICK_STEPS` steps."""
    base = base_config(p)
    if p.scale == "quick":
        runs = [replace(base, **{**SETTINGS[name], "steps": QUICK_STEPS}) for name in QUICK_SETTINGS]
    else:
        runs = [replace(base, **changes) for changes in SETTINGS.values()]
    return [config for run in runs for config in seed_configs(run, p.n_seeds)]


def by_setting(configs: list[FullTransformerConfig], results: list[dict], scale: str) -> dict[str, list[dict]]:
    """The results of :func:`chapter_configs` grouped by setting name, in order."""
    names = QUICK_SETTINGS if scale == "quick" else tuple(SETTINGS)
    n_seeds = len(configs) // len(names)
    return {name: results[k * n_seeds:(k + 1) * n_seeds] for k, name in enumerate(names)}


# ---------------------------------------------------------------------------------------------
# Reading runs


PLATEAU_WIDTHS = (0.15, SMOOTHING, 0.5)  # the smoothing widths the counts are reported at (SMOOTHING judged)


def learned_time(result: dict, name: str) -> float:
    """First evaluation step with progress ``name`` (``"r_G"``, ``"r_I"``) ≥ ½; inf if never."""
    time = first_crossing(result["steps"], result[name], 0.5)
    return math.inf if math.isnan(time) else time


def order_ratio(result: dict) -> float:
    """T_IH / T_G (T_G: the fixed-position n-gram's time): > 1 when the n-gram is learned first;
    inf when only the n-gram is learned, 0 when only the induction head is, 1 when neither is."""
    t_g, t_ih = learned_time(result, "r_G"), learned_time(result, "r_I")
    if math.isinf(t_g) and math.isinf(t_ih):
        return 1.0
    return t_ih / t_g


def loss_plateaus(result: dict, width: float = SMOOTHING) -> LossPlateaus:
    """:func:`ihcore.wang.phases.count_plateaus` of a run's loss against its step (step 0 left out)."""
    return count_plateaus(result["steps"][1:], result["loss"][1:], width)


LEFT_START = 0.9  # post hoc (set after seeing the gradient-descent runs): the loss below this fraction of its start


def plateaus_after_start(result: dict, width: float = SMOOTHING) -> LossPlateaus:
    """:func:`loss_plateaus` on the part of the curve after the loss first falls below LEFT_START
    times its initial value: a diagnostic added after the gradient-descent runs showed the rule
    counting evaluation noise in the flat initial stretch (not the judged count)."""
    loss = result["loss"]
    start = int(np.flatnonzero(loss < LEFT_START * loss[0])[0]) if (loss < LEFT_START * loss[0]).any() else len(loss) - 1
    start = max(start, 1)
    return count_plateaus(result["steps"][start:], loss[start:], width)


def setting_summary(results: list[dict]) -> dict[str, list[float]]:
    """Per seed: ``plateaus`` (:func:`loss_plateaus` at :data:`SMOOTHING`), ``plateaus_at`` {width:
    counts} over :data:`PLATEAU_WIDTHS`, ``plateaus_after_start`` (:func:`plateaus_after_start`) and
    ``phases`` (:func:`phase_count` of that: the initial stretch, then the drops and plateaus after it), ``T_G``, ``T_IH`` (steps; inf if never), ``order`` (:func:`order_ratio`),
    ``plateau`` (T_IH − T_G; seeds that learned neither left out), ``final_loss_ratio`` (last loss / first) and ``r_G``, ``r_I`` at the end."""
    found = [loss_plateaus(r) for r in results]
    after = [plateaus_after_start(r) for r in results]
    return {
        "plateaus": [f.n_plateaus for f in found],
        "phases": [phase_count(f) for f in after],
        "plateaus_at": {w: [loss_plateaus(r, w).n_plateaus for r in results] for w in PLATEAU_WIDTHS},
        "plateaus_after_start": [f.n_plateaus for f in after],
        "T_G": [learned_time(r, "r_G") for r in results],
        "T_IH": [learned_time(r, "r_I") for r in results],
        "order": [order_ratio(r) for r in results],
        "plateau": [p for p in (learned_time(r, "r_I") - learned_time(r, "r_G") for r in results) if not math.isnan(p)],
        "final_loss_ratio": [float(r["loss"][-1] / r["loss"][0]) for r in results],
        "r_G": [float(r["r_G"][-1]) for r in results],
        "r_I": [float(r["r_I"][-1]) for r in results],
    }


def phase_count(found: LossPlateaus) -> int:
    """Phases of a loss curve from small init: the initial stretch (the loss at its starting value
    before the first drop), then its drops and plateaus (:attr:`LossPlateaus.n_phases` + 1)."""
    return found.n_phases + 1
