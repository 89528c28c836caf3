"""The induction circuit read off the weights of the standard model (:class:`AttentionOnlyTransformer`).

For a 2-layer model with learned positions (layers 0 and 1 here; 1 and 2 in Musat et al.),
row-vector convention (``q = x W_Q``), scores scaled by ``1/sqrt(d_head)`` as in the model,
t_v = token v's embedding (row v of W_E), p_n = position n's (row n of W_pos):

* :func:`position_qk` (T, T): ``S[n, m] = (p_n W_Q0) . (p_m W_K0)``, the layer-0 score of
  query position n on key position m through positions alone. Previous-token head:
  a stripe at m = n - 1.
* :func:`token_qk` (V, V): layer 0's token-to-token score, a control.
* :func:`matching_qk` (V, V): ``S[v, u] = (t_v W_Q1) . (t_u W_V0 W_O0 W_K1)``, the layer-1
  score of a query token v on a key that layer 0 copied token u into. Matching: a diagonal.
* :func:`copying_ov` (V, V): ``C[w, u] = (t_u W_V1 W_O1 W_U)[w]``, the logit of w when
  layer 1 attends to token u. Copying: a diagonal.

The circuit read-outs (:func:`circuit_readouts`; Musat et al.'s "progress measures", v2
Eqs. 20-22, known here from a secondary summary) are the mean of the stripe or diagonal: ``alpha3_tilde = mean_n S_pos[n, n-1]``,
``beta2_tilde = mean_v S_match[v, v]``, ``gamma3_tilde = mean_v C[v, v]``. Each is a
function of the model alone (no data). With several heads, choose the previous-token head
of layer 0 and the induction head of layer 1 (``prev_head``, ``induction_head``; default 0).
The Musat chapter reads them off the standard model; the cross-paper chapter off Singh's.

The matrices are computed on the model's device and returned on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ihcore.spine.transformer import AttentionOnlyTransformer

READOUT_NAMES = ("alpha3_tilde", "beta2_tilde", "gamma3_tilde")


def _layer(model: AttentionOnlyTransformer, layer: int, head: int):
    attention = model.layers[layer]
    return attention.W_Q[head], attention.W_K[head], attention.W_V[head], attention.W_O[head]


def position_qk(model: AttentionOnlyTransformer, head: int = 0) -> torch.Tensor:
    """(n_positions, n_positions) layer-0 (head ``head``) position-to-position scores (query rows, key columns)."""
    if model.W_pos is None:
        raise ValueError("position_qk needs a model with learned positions")
    W_Q, W_K, _, _ = _layer(model, 0, head)
    return ((model.W_pos @ W_Q) @ (model.W_pos @ W_K).T / math.sqrt(W_Q.shape[1])).cpu()


def token_qk(model: AttentionOnlyTransformer, head: int = 0) -> torch.Tensor:
    """(V, V) layer-0 token-to-token scores: a control with no induction structure expected."""
    W_Q, W_K, _, _ = _layer(model, 0, head)
    return ((model.W_E @ W_Q) @ (model.W_E @ W_K).T / math.sqrt(W_Q.shape[1])).cpu()


def _embedded(model: AttentionOnlyTransformer, tokens: torch.Tensor | None) -> torch.Tensor:
    """(K, d) embeddings of ``tokens`` (K, d_input); None: the one-hot tokens, i.e. the rows of W_E."""
    return model.W_E if tokens is None else tokens.to(model.W_E.device) @ model.W_E


def matching_qk(model: AttentionOnlyTransformer, prev_head: int = 0, induction_head: int = 0,
                tokens: torch.Tensor | None = None) -> torch.Tensor:
    """(V, V) layer-1 score of query token v (rows) on a key holding layer 0's copy of token u (columns).

    ``tokens`` (K, d_input): other input vectors in the token's roles (e.g. class prototypes
    when inputs are features); the matrix is then (K, K). None: the one-hot tokens.
    """
    _, _, W_V0, W_O0 = _layer(model, 0, prev_head)
    W_Q1, W_K1, _, _ = _layer(model, 1, induction_head)
    embedded = _embedded(model, tokens)
    return ((embedded @ W_Q1) @ (embedded @ W_V0 @ W_O0 @ W_K1).T / math.sqrt(W_Q1.shape[1])).cpu()


def copying_ov(model: AttentionOnlyTransformer, head: int = 0, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """(V_out, V) logits written by layer 1 (head ``head``) (rows: output token) when it attends to token u (columns).

    ``tokens`` (K, d_input) as in :func:`matching_qk`: the matrix is then (V_out, K).
    """
    _, _, W_V1, W_O1 = _layer(model, 1, head)
    return (_embedded(model, tokens) @ W_V1 @ W_O1 @ model.W_U).T.cpu()


def stripe_contrast(matrix: torch.Tensor, offset: int = 0) -> float:
    """(mean on the diagonal ``offset`` - mean elsewhere) / std elsewhere: how clearly a weight
    product shows the stripe or diagonal of Musat et al.'s Fig. 2 (this book's measure).

    ``offset=-1`` is the stripe key = query - 1 of a position matrix; there only the causal
    part (key <= query) counts as "elsewhere", since later keys are never attended to.
    """
    matrix = matrix.detach()
    n, device = matrix.shape[0], matrix.device
    stripe = torch.diag(torch.ones(n - abs(offset), dtype=torch.bool, device=device), offset)
    allowed = torch.ones(n, n, dtype=torch.bool, device=device)
    allowed = allowed.tril() if offset < 0 else allowed
    rest = matrix[allowed & ~stripe]
    return float((matrix[stripe].mean() - rest.mean()) / rest.std())


def circuit_readouts(model: AttentionOnlyTransformer, prev_head: int = 0, induction_head: int = 0) -> dict[str, float]:
    """alpha3_tilde, beta2_tilde, gamma3_tilde of ``model`` (see the module docstring)."""
    with torch.no_grad():
        return {
            "alpha3_tilde": float(torch.diagonal(position_qk(model, prev_head), -1).mean()),
            "beta2_tilde": float(torch.diagonal(matching_qk(model, prev_head, induction_head)).mean()),
            "gamma3_tilde": float(torch.diagonal(copying_ov(model, induction_head)).mean()),
        }


def circuit_readout_measure(prev_head: int = 0, induction_head: int = 0):
    """Measure for :func:`ihcore.spine.train.train`: the three circuit read-outs (scalars)."""

    def measure(model, batches) -> dict[str, np.ndarray]:
        return {name: np.array(value) for name, value in circuit_readouts(model, prev_head, induction_head).items()}

    return measure
