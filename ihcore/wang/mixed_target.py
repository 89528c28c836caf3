"""Wang, Yu, E, Wu's mixed target: a 4-gram plus an in-context 2-gram (induction head).

Tokens are i.i.d. N(0, 1) scalars x_1..x_L (tensor (N, L), 0-indexed in code: x_s is
``x[:, s - 1]``). The two components, read out at the last position L (Wang et al. 2024,
abstract: "a 4-gram plus an in-context 2-gram"; the Gaussian inputs, the position L−2 of
the 4-gram and the key x_{s−1} of IH₂ are as the ICLR 2025/2026 reviewers quote v1's Eq. 4;
the exact forms are this book's reconstruction):

* 4-gram:  f_G4(X) = x_{L-2}, a fixed position, learnable by positional attention alone.
* in-context n-gram (n = 2: the induction head IH₂):
  IH_n(X; w) = Σ_{s=n}^{L-1} π_s x_s,  π_s ∝ exp(w Σ_{i=1}^{n-1} x_{L+1-i} x_{s-i}),
  i.e. attend to the tokens whose n-1 predecessors match the last n-1 tokens, copy them.
  For n = 2 the key of x_s is its predecessor x_{s-1} and the query is x_L.

Mixed target: f*(X) = α* f_G4(X) + (1 − α*) κ_L IH₂(X; w*).

**Normalisation κ_L** (the book's choice; the paper's is not public). With κ_L = 1 (the
literal reading) IH₂ is a weighted mean of L−2 unit-variance values: at w* = 0 its
variance is exactly 1/(L−2), and its selective part (IH₂ − mean) is O(w*/√L). The IH
component's share of the loss and its gradient then vanish as L grows, so any
L-dependence of the dynamics would mostly measure this shrinking scale. The default
``normalisation="sqrt"`` sets κ_L = √(L−2): at w* = 0, κ_L IH₂ is then exactly N(0, 1),
like the 4-gram, and the selective part is O(w*) for every L, so both components keep
unit scale and α* alone sets their relative weight. ``"none"`` gives κ_L = 1.

**Learned fractions** (:func:`component_weights`, this book's reconstruction): a model's
outputs are regressed on the 4-gram, the context mean and the selective part IH₂ − mean;
each coefficient over its value in the target says how much of that mechanism is learned
(1 = all): r_G (4-gram), r_M (mean-matching), r_I (induction head). :class:`DiscreteMixedTarget`
is the same target on one-hot tokens with a cross-entropy loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ihcore.spine import devices
from ihcore.spine.validation import ParameterError

NORMALISATIONS = ("sqrt", "none")


def sample_tokens(n_sequences: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(n_sequences, length) i.i.d. N(0, 1) tokens, float64."""
    return torch.randn(n_sequences, length, generator=generator, dtype=torch.float64)


def four_gram(x: torch.Tensor) -> torch.Tensor:
    """f_G4 = x_{L-2}: (N, L) -> (N,)."""
    return x[:, -3]


def in_context_ngram(x: torch.Tensor, n: int, w: float) -> torch.Tensor:
    """IH_n(X; w): (N, L) -> (N,); attention over s = n..L-1 as in the module docstring."""
    L = x.shape[1]
    if not 2 <= n <= L - 1:
        raise ValueError(f"need 2 <= n <= L-1, got n={n}, L={L}")
    # keys of x_s (0-indexed s = n-1 .. L-2): its n-1 predecessors x_{s-i}, i = 1..n-1
    logits = sum(x[:, L - i, None] * x[:, n - 1 - i : L - 1 - i] for i in range(1, n))  # (N, L-n)
    return (torch.softmax(w * logits, dim=1) * x[:, n - 1 : L - 1]).sum(dim=1)


def induction_head(x: torch.Tensor, w: float) -> torch.Tensor:
    """IH₂(X; w) = Σ_{s=2}^{L-1} softmax_s(w x_L x_{s-1}) x_s: (N, L) -> (N,)."""
    return in_context_ngram(x, 2, w)


def normalisation_factor(length: int, normalisation: str) -> float:
    """κ_L: √(L−2) for ``"sqrt"``, 1 for ``"none"``."""
    if normalisation not in NORMALISATIONS:
        raise ParameterError(f"normalisation = {normalisation!r} is invalid: expected one of {NORMALISATIONS}")
    return math.sqrt(length - 2) if normalisation == "sqrt" else 1.0


def induction_head_scale(lengths: list[int], w: float, n_sequences: int = 8192, seed: int = 0) -> dict[str, list[float]]:
    """Standard deviations of IH₂(X; w) (``"total"``) and of its selective part IH₂ − m̄
    (``"selective"``; m̄ the mean of x_2..x_{L−1}) at κ_L = 1, one sample of ``n_sequences``
    per length L in ``lengths``, each drawn from a generator seeded with ``seed``."""
    scale: dict[str, list[float]] = {"total": [], "selective": []}
    for length in lengths:
        x = sample_tokens(n_sequences, length, torch.Generator().manual_seed(seed))
        ih = induction_head(x, w)
        scale["total"].append(ih.std().item())
        scale["selective"].append((ih - x[:, 1:-1].mean(1)).std().item())
    return scale


@dataclass(frozen=True)
class RegressionBatch(devices.TensorBatch):
    """Sequences for the spine's :func:`ihcore.spine.train.train`.

    tokens: (B, L, 1) float; target: (B,) f*(X); four_gram: (B,) α* f_G4;
    induction: (B,) (1 − α*) κ_L IH₂ — the two weighted components of the target.
    """

    tokens: torch.Tensor
    target: torch.Tensor
    four_gram: torch.Tensor
    induction: torch.Tensor


@dataclass(frozen=True)
class MixedTarget:
    """f* = α* x_{L-2} + (1 − α*) κ_L IH₂(X; w*) on L Gaussian tokens.

    Also a task for the spine's training loop: ``sample`` gives float32 sequences as
    tokens (B, L, 1) and ``loss`` is ½E(readout at position L − f*)².
    """

    length: int
    alpha: float
    w_star: float
    normalisation: str

    def __post_init__(self) -> None:
        if self.length < 4:
            raise ParameterError(f"length = {self.length} is invalid: expected an integer >= 4")
        if not 0.0 <= self.alpha <= 1.0:
            raise ParameterError(f"alpha = {self.alpha} is invalid: expected a number in [0, 1]")
        normalisation_factor(self.length, self.normalisation)

    @property
    def kappa(self) -> float:
        return normalisation_factor(self.length, self.normalisation)

    def components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The weighted components (α* f_G4, (1 − α*) κ_L IH₂), each (N,)."""
        return self.alpha * four_gram(x), (1 - self.alpha) * self.kappa * induction_head(x, self.w_star)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """f*(X): (N, L) -> (N,)."""
        four, induction = self.components(x)
        return four + induction

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> RegressionBatch:
        """A fresh batch (every split draws from the same distribution)."""
        x = sample_tokens(batch_size, self.length, generator)
        four, induction = self.components(x)
        return RegressionBatch(x.float()[:, :, None], (four + induction).float(), four.float(), induction.float())

    def loss(self, logits: torch.Tensor, batch: RegressionBatch) -> torch.Tensor:
        """½ mean (logits[:, -1, 0] − f*)²; logits (B, L, d_output)."""
        return 0.5 * (logits[:, -1, 0] - batch.target).pow(2).mean()


def component_regressors(x: torch.Tensor, target: MixedTarget) -> torch.Tensor:
    """(N, 3) regressors g1 = x_{L-2}, κ m̄, κ (IH₂(w*) − m̄); m̄ = mean of x_2..x_{L-1}.

    The context mean is split off because head B at w_KQ = 0 outputs it, and it is
    strongly correlated with IH₂: one IH regressor would report a false induction head.
    """
    mean = x[:, 1:-1].mean(dim=1)
    kappa = target.kappa
    return torch.stack([four_gram(x), kappa * mean, kappa * (induction_head(x, target.w_star) - mean)], dim=1)


def component_weights(outputs: torch.Tensor, regressors: torch.Tensor, alphas: torch.Tensor) -> dict[str, torch.Tensor]:
    """Learned fractions r_G = c_G/α*, r_M = c_M/(1−α*), r_I = c_S/(1−α*); each (R,).

    outputs (R, N) are fitted as c_G g1 + c_M g2 + c_S g3 (+ c_k g_k for further columns of
    ``regressors`` (N, K ≥ 3), nuisance terms such as an intercept); no implicit intercept.
    """
    # One QR solve (LAPACK gels) per row: the same bits run after run (the CPU default, gelsy,
    # varies in the last bit from call to call), and a row's fit never depends on the other rows.
    # One solve with all R rows as right-hand sides rounds a row differently for different R on
    # some CPUs (measured on an AMD EPYC; not on Intel Xeons).
    coefficients = torch.stack([torch.linalg.lstsq(regressors, row[:, None], driver="gels").solution[:, 0]
                                for row in outputs])  # (R, K)
    return {"r_G": coefficients[:, 0] / alphas, "r_M": coefficients[:, 1] / (1 - alphas),
            "r_I": coefficients[:, 2] / (1 - alphas)}


def component_measure(target: MixedTarget):
    """Measure for :func:`ihcore.spine.train.train`: ``loss``, ``r_G``, ``r_I``, ``r_M`` of the
    readout at position L on the ``"train"`` evaluation batch."""

    def measure(model, batches: Mapping[str, RegressionBatch]) -> dict[str, np.ndarray]:
        batch = batches["train"]
        x = batch.tokens[:, :, 0].double()
        with torch.no_grad():
            outputs = model(batch.tokens)[:, -1, 0].double()
        alpha = torch.tensor([target.alpha], dtype=torch.float64, device=x.device)
        values = component_weights(outputs[None], component_regressors(x, target), alpha)
        values["loss"] = 0.5 * (outputs - target(x)).pow(2).mean()
        return {k: np.asarray(float(v.squeeze())) for k, v in values.items()}

    return measure


@dataclass(frozen=True)
class DiscreteBatch(devices.TensorBatch):
    """tokens: (B, L, V) one-hot float; ids: (B, L) long; target: (B, V) the distribution p*."""

    tokens: torch.Tensor
    ids: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class DiscreteMixedTarget:
    """The mixed target on discrete tokens (a reviewer's question; the book's construction).

    Tokens are i.i.d. uniform over a vocabulary of V, one-hot encoded. The next-token
    distribution is p*(v) = α* 1[v = x_{L-2}] + (1 − α*) Σ_{s=2}^{L-1} π_s 1[v = x_s] with
    π_s ∝ exp(w* 1[x_{s-1} = x_L]): the induction head upweights tokens that follow an
    earlier copy of the last token. Loss: cross-entropy of the readout at position L.
    """

    length: int
    vocabulary: int
    alpha: float
    w_star: float

    def components(self, ids: torch.Tensor, w: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(one-hot x_{L-2}, Σ_s π_s(w) one-hot x_s), each (N, V); ids (N, L) long."""
        onehot = F.one_hot(ids, self.vocabulary).double()  # (N, L, V)
        matches = (ids[:, :-2] == ids[:, -1:]).double()  # (N, L-2): x_{s-1} = x_L for s = 2..L-1
        weights = torch.softmax(w * matches, dim=1)
        return onehot[:, -3], torch.einsum("ns,nsv->nv", weights, onehot[:, 1:-1])

    def distribution(self, ids: torch.Tensor) -> torch.Tensor:
        """p* (N, V)."""
        four, induction = self.components(ids, self.w_star)
        return self.alpha * four + (1 - self.alpha) * induction

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> DiscreteBatch:
        ids = torch.randint(self.vocabulary, (batch_size, self.length), generator=generator)
        tokens = F.one_hot(ids, self.vocabulary).float()
        return DiscreteBatch(tokens, ids, self.distribution(ids).float())

    def loss(self, logits: torch.Tensor, batch: DiscreteBatch) -> torch.Tensor:
        """Cross-entropy −Σ_v p*(v) log softmax(logits[:, -1])_v, averaged over the batch."""
        return -(batch.target * torch.log_softmax(logits[:, -1], dim=-1)).sum(-1).mean()


def discrete_component_measure(target: DiscreteMixedTarget):
    """Measure: ``loss``, ``r_G``, ``r_M``, ``r_I`` for :class:`DiscreteMixedTarget`.

    The model's next-token probabilities (N, V), pooled over N·V entries, are regressed on
    the one-hot 4-gram token, the context's empirical distribution (the w* = 0 head: the
    analogue of the mean), the selective part (IH distribution − context distribution) and
    a constant 1/V (the uniform guess of an untrained model).
    """

    def measure(model, batches: Mapping[str, DiscreteBatch]) -> dict[str, np.ndarray]:
        batch = batches["train"]
        with torch.no_grad():
            logits = model(batch.tokens)[:, -1].double()
        four, context = target.components(batch.ids, 0.0)
        _, induction = target.components(batch.ids, target.w_star)
        uniform = torch.full_like(four, 1 / target.vocabulary)
        regressors = torch.stack([four, context, induction - context, uniform], dim=-1).reshape(-1, 4)
        alpha = torch.tensor([target.alpha], device=regressors.device)
        values = component_weights(torch.softmax(logits, -1).reshape(1, -1), regressors, alpha)
        values["loss"] = target.loss(logits.float()[:, None], batch)
        return {k: np.asarray(float(v.squeeze())) for k, v in values.items()}

    return measure
