"""Musat et al.'s two tasks: the continuous minimal task and the token task of the standard model.

**Continuous minimal task** (Musat et al., section 3; the paper's text was not available, so
the exact construction below is this book's reconstruction from the ICLR 2026 reviews). A
sequence is 2N + 1 tokens ``item_1 label_1 ... item_N label_N query`` of size 2D, each
``[content; position]``:

* item i: ``[x_i; p_i]``, label i: ``[y_i; M p_i]`` (the "rotational cue"), query ``[x_q; p_Q]``;
* the target is ``y_q``; q is the last pair (``query="last"``) or uniform (``"random"``);
* M = J rotates each coordinate pair by 90 degrees (``J [a, b] = [-b, a]``), so D is even;
* ``data="isotropic"``: all vectors i.i.d. N(0, I/D), fresh per sequence (Theorem 1);
  ``data="orthonormal"``: the 2N contents are orthonormal, and so are
  ``{p_i, M p_i, p_Q}`` (Theorem 2; needs D >= 2N + 2);
* ``label_cue="rotated"`` (``M p_i``, the reviewers' "built-in rotational clue"), ``"same"``
  (``p_i``) or ``"none"`` (zero position): the last two are stress tests beyond the paper;
* ``label_map="shift"`` replaces M = J by a one-step position shift (a follow-up by overlapping
  authors reportedly uses one; unverified): every token n has the fixed position ``e_n``
  (the n-th basis vector of R^D, not fresh per sequence) and M is the cyclic shift
  ``M e_n = e_(n+1)``, so that a label's position is M times its item's (needs D >= 2N + 1).

The loss is ``1/2 E ||y_hat - y_q||^2`` (summed over D, averaged over the batch), 1/2 at
``y_hat = 0``.

**Token task** (the standard model's; this book's reconstruction). ``n_tokens`` one-hot tokens; 2N distinct
tokens are drawn per sequence, items ``a_i`` and labels ``b_i``; the input is
``a_1 b_1 ... a_N b_N a_q`` and the target ``b_q``, with q uniform (a fixed q = N could be
solved by position alone, without an induction head).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ihcore.spine.validation import refuse_invalid
from ihcore.spine import devices
from ihcore.spine.item_label_task import Batch, query_cross_entropy
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig


DATA_MODES = ("isotropic", "orthonormal")
QUERY_MODES = ("last", "random")
LABEL_CUES = ("rotated", "same", "none")
LABEL_MAPS = ("rotation", "shift")  # M = J with fresh positions, or a one-step shift of fixed positions


def rotate(vectors: torch.Tensor) -> torch.Tensor:
    """Apply M = J to the last axis (size D, even): each pair (a, b) becomes (-b, a)."""
    pairs = vectors.unflatten(-1, (-1, 2))
    return torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)


def rotation_matrix(dim: int) -> torch.Tensor:
    """(D, D) matrix of M = J, so that ``rotate(v) == v @ M.T``."""
    return rotate(torch.eye(dim)).T


def shift_matrix(dim: int) -> torch.Tensor:
    """(D, D) cyclic shift ``M e_n = e_(n+1)`` (indices mod D): the shift-type M."""
    return torch.roll(torch.eye(dim), 1, dims=0)


def label_map_matrix(dim: int, label_map: str = "rotation") -> torch.Tensor:
    """The (D, D) matrix M of ``label_map`` (:data:`LABEL_MAPS`)."""
    return rotation_matrix(dim) if label_map == "rotation" else shift_matrix(dim)


@dataclass(frozen=True)
class ContinuousBatch(devices.TensorBatch):
    """tokens (B, 2N+1, 2D); target (B, D) = y_q; query_index (B,) long, q - 1 in 0..N-1."""

    tokens: torch.Tensor
    target: torch.Tensor
    query_index: torch.Tensor


@dataclass(frozen=True)
class ContinuousTask:
    """Sampler of the continuous minimal task; every vector is fresh in every sequence.

    n_pairs: N; dim: D (even); the run configurations hold their defaults
    (:class:`ihcore.musat.minimal_runs.MinimalRunConfig`).
    """

    n_pairs: int
    dim: int
    data: str = "isotropic"  # or "orthonormal"
    query: str = "last"  # or "random"
    label_cue: str = "rotated"  # or "same", "none"
    label_map: str = "rotation"  # or "shift"

    def __post_init__(self) -> None:
        smallest_dim = 2 * self.n_pairs + 2 if self.data == "orthonormal" or self.label_map == "shift" else 2
        refuse_invalid(self, {
            "n_pairs": (self.n_pairs >= 1, "an integer >= 1"),
            "dim": (self.dim >= smallest_dim and self.dim % 2 == 0,
                    f"an even integer >= {smallest_dim}" + (" (2N + 2, orthonormal data)" if self.data == "orthonormal" else "")),
            "data": (self.data in DATA_MODES, f"one of {DATA_MODES}"),
            "query": (self.query in QUERY_MODES, f"one of {QUERY_MODES}"),
            "label_cue": (self.label_cue in LABEL_CUES, f"one of {LABEL_CUES}"),
            "label_map": (self.label_map in LABEL_MAPS and (self.label_map == "rotation" or self.label_cue == "rotated"),
                          f"one of {LABEL_MAPS} (the shift only with label_cue 'rotated')"),
        })

    @property
    def n_positions(self) -> int:
        return 2 * self.n_pairs + 1

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> ContinuousBatch:
        """``batch_size`` sequences; ``split`` exists for the training loop and must be "train"."""
        if split != "train":
            raise ValueError(f"the continuous task has only the 'train' split, got {split!r}")
        B, N, D = batch_size, self.n_pairs, self.dim
        if self.data == "isotropic":
            contents = torch.randn(B, 2 * N, D, generator=generator) / math.sqrt(D)
            positions = torch.randn(B, N + 1, D, generator=generator) / math.sqrt(D)
        else:
            contents = torch.linalg.qr(torch.randn(B, D, 2 * N, generator=generator))[0].transpose(1, 2)
            positions = _complex_orthonormal(B, N + 1, D, generator)
        items, labels = contents[:, :N], contents[:, N:]  # (B, N, D)
        item_positions, query_position = positions[:, :N], positions[:, N]
        label_positions = {
            "rotated": rotate(item_positions), "same": item_positions, "none": torch.zeros_like(item_positions),
        }[self.label_cue]
        if self.query == "last":
            query_index = torch.full((B,), N - 1)
        else:
            query_index = torch.randint(N, (B,), generator=generator)
        rows = torch.arange(B)
        tokens = torch.zeros(B, 2 * N + 1, 2 * D)
        tokens[:, 0:-1:2] = torch.cat([items, item_positions], dim=-1)
        tokens[:, 1::2] = torch.cat([labels, label_positions], dim=-1)
        tokens[:, -1] = torch.cat([items[rows, query_index], query_position], dim=-1)
        if self.label_map == "shift":  # fixed positions e_1 .. e_(2N+1): label 2i is M = shift of item 2i - 1
            tokens[:, :, D:] = torch.eye(D)[: 2 * N + 1]
        return ContinuousBatch(tokens=tokens, target=labels[rows, query_index], query_index=query_index)

    def loss(self, prediction: torch.Tensor, batch: ContinuousBatch) -> torch.Tensor:
        """1/2 squared error summed over D, mean over the batch; prediction (B, D)."""
        return 0.5 * (prediction - batch.target).pow(2).sum(-1).mean()


def _complex_orthonormal(B: int, n: int, D: int, generator: torch.Generator) -> torch.Tensor:
    """(B, n, D) vectors p_j with {p_j, J p_j} orthonormal in R^D (needs D >= 2n).

    R^D is C^(D/2) with pair (a, b) as a + ib, so J is multiplication by i; the columns of
    a complex QR factor are orthonormal in C^(D/2), hence {p, ip} are orthonormal in R^D.
    """
    gaussian = torch.complex(
        torch.randn(B, D // 2, n, generator=generator), torch.randn(B, D // 2, n, generator=generator)
    )
    q = torch.linalg.qr(gaussian)[0].transpose(1, 2)  # (B, n, D/2) complex
    return torch.stack([q.real, q.imag], dim=-1).flatten(-2)


@dataclass(frozen=True)
class TokenTask:
    """Sampler of the standard model's token task; batches are the spine's :class:`Batch`.

    The defaults are the standard run's (:class:`ihcore.musat.standard_runs.StandardRunConfig`).
    """

    n_pairs: int
    n_tokens: int

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "n_pairs": (self.n_pairs >= 2, "an integer >= 2"),
            "n_tokens": (self.n_tokens >= 2 * self.n_pairs, f"an integer >= 2 n_pairs = {2 * self.n_pairs}"),
        })

    @property
    def n_positions(self) -> int:
        return 2 * self.n_pairs + 1

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> Batch:
        """One-hot tokens (B, 2N+1, n_tokens); only the "train" split (pairings are new per sequence)."""
        if split != "train":
            raise ValueError(f"the token task has only the 'train' split, got {split!r}")
        B, N = batch_size, self.n_pairs
        drawn = torch.rand(B, self.n_tokens, generator=generator).argsort(dim=1)[:, : 2 * N]
        items, labels = drawn[:, :N], drawn[:, N:]
        pick = torch.randint(N, (B,), generator=generator)
        rows = torch.arange(B)
        sequence = torch.empty(B, 2 * N + 1, dtype=torch.long)
        sequence[:, 0:-1:2], sequence[:, 1::2], sequence[:, -1] = items, labels, items[rows, pick]
        return Batch(
            tokens=F.one_hot(sequence, self.n_tokens).float(),
            target=labels[rows, pick],
            context_labels=labels,
            context_matches=torch.arange(N)[None, :] == pick[:, None],
        )

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy of the readout at the query position; logits (B, T, n_tokens)."""
        return query_cross_entropy(logits, batch)


def token_task_model(task: TokenTask, d_model: int, seed: int, n_heads: int = 1) -> AttentionOnlyTransformer:
    """Musat et al.'s standard model for the token task (the Musat chapter's, and the cross-paper N-scaling runs').

    2 layers, ``n_heads`` (1) heads, additive residual, learned positions, no LayerNorm;
    one-hot tokens in, one logit per token out.
    """
    config = TransformerConfig(d_input=task.n_tokens, d_output=task.n_tokens, n_positions=task.n_positions,
                               n_heads=n_heads, d_model=d_model)
    return AttentionOnlyTransformer(config, seed=seed)
