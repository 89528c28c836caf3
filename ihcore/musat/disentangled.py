"""Musat et al.'s minimal "disentangled" transformer (section 3 of the paper; the concatenated
residual, the merged key-query matrices and the mask are as the ICLR 2026 reviewers describe
them, the exact forward pass below is this book's reconstruction).

Two attention layers with merged key-query matrices and no value, output or embedding
matrices. With the default concatenated residual each layer *appends* its attention output
to the stream instead of adding it, so the stream keeps every intermediate in its own block:

* layer 1: ``A1_n = sum_{m<n} softmax_m(h_n^T W1 h_m) h_m``; ``h1_n = [h_n; A1_n]`` (4D),
  blocks ``(e, p, a1e, a1p)``;
* layer 2: ``A2_n = sum_{m<n} softmax_m(h1_n^T W2 h1_m) h1_m``; ``h2_n = [h1_n; A2_n]`` (8D),
  blocks ``(e, p, a1e, a1p, a2e, a2p, a2a1e, a2a1p)``;
* readout ``y_hat = W3 h2_{last}``: W1 (2D, 2D), W2 (4D, 4D), W3 (D, 8D), 28 D^2 weights.

Scores are (query side)^T W (key side), without 1/sqrt(d). By default a position does not
attend to itself (keys m < n), so the first token's attention output is zero. Variants
(stress tests beyond the paper): ``residual="additive"`` (``h1 = h + A1``, ``h2 = h1 + A2``; W2 (2D, 2D),
W3 (D, 2D)) and ``attend_to_self=True`` (keys m <= n).

Hook points (B batch, T = 2N + 1 positions, widths as above):
``resid.0`` (B, T, 2D), ``layer{l}.attn.scores`` (B, T, T, -inf where masked),
``layer{l}.attn.pattern`` (B, T, T), ``resid.1``, ``resid.2``, ``output`` (B, D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ihcore.spine.validation import refuse_invalid
from ihcore.spine.hooks import HookedModule, HookPoint
from ihcore.spine.transformer import causal_mask, masked_softmax


RESIDUALS = ("concat", "additive")


@dataclass(frozen=True)
class DisentangledConfig:
    """dim: D (content and position size); init_scale 0 is the paper's zero init."""

    dim: int
    residual: str = "concat"  # or "additive"
    attend_to_self: bool = False
    init_scale: float = 0.0  # else entries ~ N(0, init_scale^2 / fan_in)

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "dim": (self.dim >= 1, "an integer >= 1"),
            "residual": (self.residual in RESIDUALS, f"one of {RESIDUALS}"),
            "init_scale": (self.init_scale >= 0, "a number >= 0"),
        })

    @property
    def widths(self) -> tuple[int, int, int]:
        """Widths of the residual stream entering layer 1, layer 2 and the readout."""
        D = self.dim
        return (2 * D, 4 * D, 8 * D) if self.residual == "concat" else (2 * D, 2 * D, 2 * D)

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shapes of W1, W2, W3."""
        w1, w2, w3 = self.widths
        return (w1, w1), (w2, w2), (self.dim, w3)


class DisentangledBase(HookedModule):
    """The forward pass, for weights given by :meth:`weights` (full matrices or coefficients)."""

    def __init__(self, config: DisentangledConfig) -> None:
        super().__init__()
        self.config = config
        self.hook_resid = nn.ModuleList(HookPoint() for _ in range(3))
        self.hook_scores = nn.ModuleList(HookPoint() for _ in range(2))
        self.hook_pattern = nn.ModuleList(HookPoint() for _ in range(2))
        self.hook_output = HookPoint()
        self.setup_hooks()

    def hook_name(self, module_path: str) -> str:
        # "hook_scores.1" -> "layer1.attn.scores"; "hook_resid.2" -> "resid.2"
        kind, _, index = module_path.removeprefix("hook_").partition(".")
        return f"layer{index}.attn.{kind}" if kind in ("scores", "pattern") else module_path.removeprefix("hook_")

    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """W1, W2, W3 with the shapes of ``config.shapes``."""
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, 2D) -> prediction (B, D) read out at the last position."""
        T = tokens.shape[1]
        mask = causal_mask(T, self.config.attend_to_self).to(tokens.device)
        W1, W2, W3 = self.weights()
        h = self.hook_resid[0](tokens)
        for layer, W in enumerate((W1, W2)):
            scores = ((h @ W) @ h.transpose(1, 2)).masked_fill(~mask, float("-inf"))  # (B, T, T)
            pattern = self.hook_pattern[layer](masked_softmax(self.hook_scores[layer](scores), mask))
            attended = pattern @ h  # (B, T, width)
            h = torch.cat([h, attended], dim=-1) if self.config.residual == "concat" else h + attended
            h = self.hook_resid[layer + 1](h)
        return self.hook_output(h[:, -1] @ W3.T)


class DisentangledTransformer(DisentangledBase):
    """The full model: W1, W2, W3 are free matrices, zero or random (seeded) at init."""

    def __init__(self, config: DisentangledConfig, seed: int = 0) -> None:
        super().__init__(config)
        generator = torch.Generator().manual_seed(seed)
        self.W1, self.W2, self.W3 = (
            nn.Parameter(torch.randn(*shape, generator=generator) * config.init_scale / math.sqrt(shape[1]))
            for shape in config.shapes
        )

    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.W1, self.W2, self.W3
