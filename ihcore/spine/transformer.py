"""The standard attention-only transformer, with a named hook point at every activation.

Input tokens are vectors (``d_input``): an item is its feature vector, a label is its
one-hot code (see :mod:`ihcore.spine.item_label_task`), so one linear embedding serves both. Blocks are
``resid = resid + Attn(resid)`` (additive residual, no MLP, no LayerNorm by default);
the readout is a linear map of the residual stream at every position.

Hook points (``l`` counts layers from 0; shapes with B batch, T positions, H heads,
d = d_model, e = d_head):

=========================  ===================  =============================================
name                       shape                what
=========================  ===================  =============================================
``embed``                  (B, T, d)            token embedding ``W_E x``
``pos_embed``              (B, T, d)            learned position embedding (zeros otherwise)
``resid.0``                (B, T, d)            residual stream entering layer 0
``layer{l}.attn.q``        (B, T, H, e)         queries
``layer{l}.attn.k``        (B, T, H, e)         keys
``layer{l}.attn.v``        (B, T, H, e)         values
``layer{l}.attn.scores``   (B, H, T, T)         scaled scores, ``-inf`` where masked
``layer{l}.attn.pattern``  (B, H, T, T)         attention weights (query row, key column)
``layer{l}.head_out``      (B, T, H, d)         each head's write to the residual stream
``resid.{l+1}``            (B, T, d)            residual stream after layer l
``logits``                 (B, T, d_output)     readout at every position
=========================  ===================  =============================================

With ``layer_norm=True`` the blocks are pre-LN and a final LayerNorm precedes the readout;
the hook points above are unchanged. With ``positional="rotary"`` there is no additive
position embedding (``pos_embed`` is zeros); each head's queries and keys are rotated by
their position (RoPE, :func:`rotary`) after the ``q`` and ``k`` hook points and before the
scores, so the scores depend on positions only through their difference, and a hook that
replaces ``q`` or ``k`` (a clamp) is rotated like the projections it replaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ihcore.spine.hooks import HookedModule, HookPoint

POSITIONALS = ("learned", "none", "rotary")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and switches of :class:`AttentionOnlyTransformer`."""

    d_input: int
    d_output: int
    n_positions: int
    n_layers: int = 2
    n_heads: int = 1
    d_model: int = 64
    d_head: int | None = None  # default: d_model // n_heads
    attend_to_self: bool = True  # False: position t sees only keys s < t
    positional: str = "learned"  # "learned", "none" or "rotary" (RoPE on queries and keys)
    rotary_base: float = 10_000.0
    layer_norm: bool = False
    init_scale: float = 1.0  # weights ~ N(0, init_scale^2 / fan_in)

    def __post_init__(self) -> None:
        if self.positional not in POSITIONALS:
            raise ValueError(f"positional must be one of {POSITIONALS}, got {self.positional!r}")
        for name in ("d_input", "d_output", "n_positions", "n_layers", "n_heads", "d_model"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_head is not None and self.d_head < 1:
            raise ValueError(f"d_head must be >= 1, got {self.d_head}")
        if self.d_head is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.positional == "rotary" and self.head_size % 2:
            raise ValueError(f"rotary positions need an even head size, got {self.head_size}")

    @property
    def head_size(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads


def causal_mask(n_positions: int, attend_to_self: bool = True) -> torch.Tensor:
    """Boolean (query, key) mask, True where query t may attend to key s.

    ``attend_to_self=True`` allows s <= t; False allows only s < t, so position 0 has no
    key at all and its attention output is zero.
    """
    query = torch.arange(n_positions)[:, None]
    key = torch.arange(n_positions)[None, :]
    return key <= query if attend_to_self else key < query


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, *, empty_rows: bool = True) -> torch.Tensor:
    """Softmax of scores (..., T, T) over the keys ``mask`` allows; rows with no allowed key are 0.

    The mask is applied here, so scores replaced by a hook cannot break causality.
    ``empty_rows=False`` promises that every row allows a key (a mask with ``attend_to_self``):
    the two fills that zero empty rows are then skipped, which changes no value.
    """
    scores = scores.masked_fill(~mask, float("-inf"))
    if not empty_rows:
        return torch.softmax(scores, dim=-1)
    empty = ~mask.any(dim=-1, keepdim=True)  # (T, 1)
    return torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)


def rotary_angles(positions: torch.Tensor, head_size: int, base: float = 10_000.0) -> torch.Tensor:
    """RoPE angles (T, e/2): position t times frequency ``base^(-2i/e)`` of coordinate pair i."""
    frequencies = base ** (-torch.arange(0, head_size, 2, dtype=torch.float64) / head_size)  # (e/2,)
    return (positions.to(torch.float64)[:, None] * frequencies[None, :]).float()


def rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each head's vectors x (B, T, H, e) by ``angles`` (T, e/2): coordinate i and
    i + e/2 form a pair, turned by the pair's angle at the token's position (RoPE, the
    half-split layout). Rotations by t and s give ``<R_t q, R_s k> = <q, R_{s-t} k>``."""
    return _rotate(x, *_cos_sin(angles))


def _cos_sin(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, e) cosines and signed sines of ``angles`` (T, e/2) for :func:`_rotate`."""
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)  # (second, first)
    return x * cos[:, None, :] + swapped * signed_sin[:, None, :]


# Compiled, forward and gradient of head_products at B = 32, H = 8, e = 8 on one thread (AMD EPYC,
# family 25): broadcast against einsum 0.49 / 1.21 ms at T = 5, 2.8 / 3.3 ms at T = 17, but 25.8 / 23.9 ms
# at T = 65 and 645 / 394 ms at T = 257, where the matrix products are worth their call.
BROADCAST_MAX_POSITIONS = 32


def head_products(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, W_O: torch.Tensor, pattern_of, *, broadcast: bool | None = None
) -> torch.Tensor:
    """Attention's per-head matrix products: the scaled scores ``q k^T / sqrt(e)``, then each head's write.

    q, k, v: (B, T, H, e); ``pattern_of`` maps the scaled scores (B, H, T, T) to the attention
    pattern (B, H, T, T) (the hooks and the masked softmax); W_O: (H, e, d). Returns the heads'
    writes (B, T, H, d). The products are einsums (batched matrix products), the reference
    arithmetic; with ``broadcast`` (None: while ``torch.compile`` traces, for sequences of at most
    :data:`BROADCAST_MAX_POSITIONS`) they are broadcast multiply-sums, the same functions rounded
    differently, which the compiler fuses into its own kernels: as matrix products, each would be
    a library call on matrices of T x e (5 x 8 in Singh's model), mostly call overhead.
    """
    if broadcast is None:
        broadcast = torch.compiler.is_compiling() and q.shape[1] <= BROADCAST_MAX_POSITIONS
    scale = math.sqrt(q.shape[-1])
    if not broadcast:
        pattern = pattern_of(torch.einsum("bqhe,bkhe->bhqk", q, k) / scale)
        z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)  # (B, T, H, e)
        return torch.einsum("bqhe,hed->bqhd", z, W_O)
    q, k, v = (x.transpose(1, 2)[..., None, :] for x in (q, k, v))  # (B, H, T, 1, e)
    pattern = pattern_of((q * k.transpose(2, 3)).sum(-1) / scale)
    z = (pattern[..., None] * v.transpose(2, 3)).sum(-2).transpose(1, 2)  # (B, T, H, e)
    return (z[..., None] * W_O).sum(-2)


def _normal(generator: torch.Generator, *shape: int, fan_in: int, scale: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape, generator=generator) * scale / math.sqrt(fan_in))


class Attention(nn.Module):
    """Multi-head causal self-attention without biases; one hook point per activation."""

    def __init__(self, config: TransformerConfig, generator: torch.Generator) -> None:
        super().__init__()
        d, h, e, s = config.d_model, config.n_heads, config.head_size, config.init_scale
        self.W_Q = _normal(generator, h, d, e, fan_in=d, scale=s)
        self.W_K = _normal(generator, h, d, e, fan_in=d, scale=s)
        self.W_V = _normal(generator, h, d, e, fan_in=d, scale=s)
        self.W_O = _normal(generator, h, e, d, fan_in=h * e, scale=s)
        self.register_buffer(
            "mask", causal_mask(config.n_positions, config.attend_to_self), persistent=False
        )
        self.attend_to_self = config.attend_to_self  # every query row has a key: no empty rows to zero
        self.rotary = config.positional == "rotary"
        if self.rotary:
            cos, signed_sin = _cos_sin(rotary_angles(torch.arange(config.n_positions), e, config.rotary_base))
            self.register_buffer("rotary_cos", cos, persistent=False)  # (T, e)
            self.register_buffer("rotary_sin", signed_sin, persistent=False)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_scores, self.hook_pattern = HookPoint(), HookPoint()
        self.hook_head_out = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, d) -> per-head outputs (B, T, H, d)."""
        T = x.shape[1]
        q = self.hook_q(torch.einsum("btd,hde->bthe", x, self.W_Q))  # (B, T, H, e)
        k = self.hook_k(torch.einsum("btd,hde->bthe", x, self.W_K))
        v = self.hook_v(torch.einsum("btd,hde->bthe", x, self.W_V))
        if self.rotary:
            cos, sin = self.rotary_cos[:T], self.rotary_sin[:T]
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        mask = self.mask[:T, :T]

        def pattern_of(scores: torch.Tensor) -> torch.Tensor:
            scores = self.hook_scores(scores.masked_fill(~mask, float("-inf")))
            return self.hook_pattern(masked_softmax(scores, mask, empty_rows=not self.attend_to_self))

        return self.hook_head_out(head_products(q, k, v, self.W_O, pattern_of))


class AttentionOnlyTransformer(HookedModule):
    """Attention-only transformer; ``forward(tokens (B, T, d_input)) -> logits (B, T, d_output)``.

    Parameters are drawn from a generator seeded by ``seed``, so the initialisation does
    not depend on (or disturb) torch's global random state.
    """

    def __init__(self, config: TransformerConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        d = config.d_model
        self.W_E = _normal(generator, config.d_input, d, fan_in=config.d_input, scale=config.init_scale)
        self.W_pos = (
            _normal(generator, config.n_positions, d, fan_in=d, scale=config.init_scale)
            if config.positional == "learned"
            else None
        )
        self.layers = nn.ModuleList(Attention(config, generator) for _ in range(config.n_layers))
        n_norms = config.n_layers + 1 if config.layer_norm else 0
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(n_norms))
        self.W_U = _normal(generator, d, config.d_output, fan_in=d, scale=config.init_scale)
        self.b_U = nn.Parameter(torch.zeros(config.d_output))
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.hook_resid = nn.ModuleList(HookPoint() for _ in range(config.n_layers + 1))
        self.hook_logits = HookPoint()
        self.setup_hooks()

    def hook_name(self, module_path: str) -> str:
        # "layers.0.hook_pattern" -> "layer0.attn.pattern"; "hook_resid.1" -> "resid.1"
        parts = module_path.split(".")
        if parts[0] == "layers":
            leaf = parts[2].removeprefix("hook_")
            return f"layer{parts[1]}.{leaf}" if leaf == "head_out" else f"layer{parts[1]}.attn.{leaf}"
        if parts[0] == "hook_resid":
            return f"resid.{parts[1]}"
        return parts[0].removeprefix("hook_")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B, T, _ = tokens.shape
        if T > self.config.n_positions:
            raise ValueError(f"sequence of {T} tokens exceeds n_positions={self.config.n_positions}")
        embed = self.hook_embed(tokens @ self.W_E)  # (B, T, d)
        pos = self.W_pos[:T].expand(B, T, -1) if self.W_pos is not None else torch.zeros_like(embed)
        resid = self.hook_resid[0](embed + self.hook_pos_embed(pos))
        for layer, attention in enumerate(self.layers):
            attn_in = self.norms[layer](resid) if self.config.layer_norm else resid
            resid = self.hook_resid[layer + 1](resid + attention(attn_in).sum(dim=2))
        final = self.norms[-1](resid) if self.config.layer_norm else resid
        return self.hook_logits(final @ self.W_U + self.b_U)
