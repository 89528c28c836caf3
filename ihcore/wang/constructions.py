"""Hand-set weights: transformers without FFN that implement the induction heads IH₂ and IH_n.

Two constructions (the approximation side of Wang et al.; the weights are the book's,
the paper's constructions were not available):

* :func:`induction_head_transformer` — the spine's two-layer attention-only transformer
  (absolute positions, one head per layer, no self-attention) with weights that compute
  IH₂(X; w*) at the last position. Positions are one-hot in the residual stream; layer 0
  attends from t to t−1 with logit ``sharpness`` (other keys: 0) and copies x_{t−1}; layer 1
  attends with logit w* x_L x̂_{s−1} and copies x_s, with a logit −10⁴ on position 1 (the
  target sums s = 2..L−1). Error ≈ (t−2) e^{−sharpness} per position: grows with L; at
  sharpness ≥ 50 it is below float64 precision, i.e. exact.
* :func:`ngram_head` — IH_n with H first-layer heads using relative positions (ALiBi
  slopes β_h = h). Each head outputs a geometrically weighted mean of the past,
  a^{(h)}_t = Σ_{j<t} ρ_{t,j}(β_h) x_j; fixed mixing coefficients (least squares, see
  :func:`mixing_coefficients`) turn the H means into estimates x̂_{t−i}, i = 1..n−1. The
  second layer matches (x_L, x̂_{L−1}, …, x̂_{L−n+2}) against (x̂_{s−1}, …, x̂_{s−n+1}) with
  weight w* and copies x_s. The coefficients are fitted for an infinitely long past; near
  the start of the sequence the softmax normalisation Σ_{d<t} e^{−β d} is smaller, which is
  the position dependence a reviewer raised; :func:`extraction_error` measures it.

The functions of token tensors work on the tokens' device (slopes and coefficients are moved there).
"""

from __future__ import annotations

import math

import torch

from ihcore.spine import devices
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.wang.six_parameter import previous_token_features

EXCLUDED_LOGIT = -1e4  # exp(-1e4) is 0 in float64


def induction_head_transformer(
    length: int, w_star: float, sharpness: float = 50.0, device: str | torch.device = "cpu",
) -> AttentionOnlyTransformer:
    """Float64 model whose readout at position L is IH₂(X; w*); input tokens (B, L, 1). Built on the
    CPU, then moved to ``device`` (a construction trains nothing, so the default is the CPU, where
    callers' tokens are; None: the current device).

    Residual stream (d = 4 + L): 0 token x_t, 1 previous token x̂_{t−1}, 2 the IH output,
    3 a constant 1, 4.. one-hot position. Head size e = L.
    """
    d, e = 4 + length, length
    config = TransformerConfig(d_input=1, d_output=1, n_positions=length, n_heads=1, d_model=d, d_head=e,
                               attend_to_self=False)
    model = AttentionOnlyTransformer(config).double()
    scale = math.sqrt(e)  # the model divides scores by √e
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.W_E[0, 0] = 1.0
        model.W_pos[:, 3] = 1.0
        model.W_pos[:, 4:] = torch.eye(length, dtype=torch.float64)
        previous, induction = model.layers
        for t in range(1, length):  # query at position t looks for key position t−1
            previous.W_Q[0, 4 + t, t - 1] = sharpness * scale
        previous.W_K[0, 4:, :] = torch.eye(length, dtype=torch.float64)
        previous.W_V[0, 0, 0] = 1.0
        previous.W_O[0, 0, 1] = 1.0
        induction.W_Q[0, 0, 0] = w_star * scale  # query x_t · key x̂_{s−1}
        induction.W_K[0, 1, 0] = 1.0
        induction.W_Q[0, 3, 1] = EXCLUDED_LOGIT * scale  # constant · [position is 1]
        induction.W_K[0, 4, 1] = 1.0
        induction.W_V[0, 0, 0] = 1.0
        induction.W_O[0, 0, 2] = 1.0
        model.W_U[2, 0] = 1.0
    return model.to(devices.pick(device))


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """(H,) slopes β_h = 1, 2, ..., H."""
    return torch.arange(1, n_heads + 1, dtype=torch.float64)


def mixing_coefficients(slopes: torch.Tensor, n_offsets: int, n_distances: int = 64) -> torch.Tensor:
    """(n_offsets, H) least-squares C with Σ_h C_ih (1−q_h) q_h^d ≈ [d = i], q_h = e^{−β_h}.

    (1−q) q^d is a head's weight on the key at distance d = t−1−j for an infinitely long
    past; the fit runs over d = 0..n_distances−1.
    """
    q = torch.exp(-slopes)
    d = torch.arange(n_distances, dtype=torch.float64)
    basis = (1 - q) * q ** d[:, None]  # (D, H)
    targets = torch.eye(n_distances, n_offsets, dtype=torch.float64)  # (D, n_offsets)
    return torch.linalg.lstsq(basis, targets).solution.T


def extracted_previous_tokens(x: torch.Tensor, slopes: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Layer 1: (N, L) -> (n_offsets, N, L) estimates of x_{t−i}, i = 1..n_offsets (0 where t ≤ i)."""
    means = previous_token_features(x, slopes.to(x.device))  # (H, N, L): a^{(h)}_t, the exact finite-t weights
    return torch.einsum("ih,hnt->int", coefficients.to(x.device), means)


def extraction_error(x: torch.Tensor, slopes: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """(n_offsets, L) RMS over sequences of x̂_{t−i} − x_{t−i} at each position t (0 where t ≤ i)."""
    estimates = extracted_previous_tokens(x, slopes, coefficients)
    L = x.shape[1]
    errors = torch.zeros(coefficients.shape[0], L, dtype=x.dtype, device=x.device)
    for i in range(1, coefficients.shape[0] + 1):
        errors[i - 1, i:] = (estimates[i - 1, :, i:] - x[:, :-i]).pow(2).mean(0).sqrt()
    return errors


def ngram_head(x: torch.Tensor, n: int, w_star: float, slopes: torch.Tensor) -> torch.Tensor:
    """The two-layer IH_n construction with len(slopes) first-layer heads: (N, L) -> (N,)."""
    coefficients = mixing_coefficients(slopes, n - 1)
    previous = extracted_previous_tokens(x, slopes, coefficients)  # (n−1, N, L): x̂_{t−i}
    L = x.shape[1]
    query = [x[:, L - 1]] + [previous[i - 2, :, L - 1] for i in range(2, n)]  # x_{L+1−i}
    logits = sum(q[:, None] * previous[i, :, n - 1 : L - 1] for i, q in enumerate(query))  # keys s = n..L−1
    return (torch.softmax(w_star * logits, dim=1) * x[:, n - 1 : L - 1]).sum(dim=1)
