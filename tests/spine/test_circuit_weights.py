"""Weight products and progress measures of the standard model."""

import math

import pytest
import torch

from ihcore.spine.circuit_weights import (
    copying_ov, matching_qk, position_qk, circuit_readouts, stripe_contrast, token_qk
)
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig


def model(seed=0):
    return AttentionOnlyTransformer(TransformerConfig(6, 6, 5, n_layers=2, n_heads=1, d_model=8), seed=seed)


def test_position_qk_is_the_layer0_score_of_an_input_without_tokens():
    m = model()
    _, cache = m.run_with_cache(torch.zeros(1, 5, 6), names=["layer0.attn.scores"])
    scores = cache["layer0.attn.scores"][0, 0]
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    assert torch.allclose(scores[causal], position_qk(m).detach()[causal], atol=1e-6)


def test_token_qk_is_the_layer0_score_of_tokens_without_positions():
    m = AttentionOnlyTransformer(TransformerConfig(6, 6, 5, n_heads=1, d_model=8, positional="none"), seed=1)
    tokens = torch.eye(6)[[2, 4]][None]  # token 2 then token 4
    _, cache = m.run_with_cache(tokens, names=["layer0.attn.scores"])
    assert cache["layer0.attn.scores"][0, 0, 1, 0].item() == pytest.approx(token_qk(m)[4, 2].item(), rel=1e-5)


def test_copying_ov_is_the_logit_change_of_layer1_attending_to_one_token():
    m = model()
    u = 3
    head = m.layers[1]
    write = (m.W_E[u] @ head.W_V[0] @ head.W_O[0] @ m.W_U).detach()
    assert torch.allclose(copying_ov(m).detach()[:, u], write)


def test_matching_qk_factorises_query_and_copied_key():
    m = model()
    v, u = 1, 4
    l0, l1 = m.layers
    key = m.W_E[u] @ l0.W_V[0] @ l0.W_O[0] @ l1.W_K[0]
    expected = (m.W_E[v] @ l1.W_Q[0]) @ key / math.sqrt(8)
    assert matching_qk(m)[v, u].item() == pytest.approx(expected.item(), rel=1e-5)


def test_stripe_contrast_of_a_planted_stripe():
    matrix = torch.zeros(6, 6)
    matrix[torch.arange(1, 6), torch.arange(5)] = 1.0
    matrix[2, 2] = 0.5  # one off-stripe value so that the spread is non-zero
    rest = torch.cat([torch.zeros(15), torch.tensor([0.5])])  # causal and off the stripe: 21 - 5 entries
    assert stripe_contrast(matrix, -1) == pytest.approx(float((1 - rest.mean()) / rest.std()), rel=1e-5)


def test_measures_read_the_chosen_heads():
    m = AttentionOnlyTransformer(TransformerConfig(6, 6, 5, n_heads=2, d_model=8), seed=3)
    l0, l1 = m.layers
    key = m.W_E[4] @ l0.W_V[1] @ l0.W_O[1] @ l1.W_K[0]
    expected = (m.W_E[4] @ l1.W_Q[0]) @ key / math.sqrt(4)
    assert matching_qk(m, prev_head=1, induction_head=0)[4, 4].item() == pytest.approx(expected.item(), rel=1e-5)
    assert circuit_readouts(m, 1, 0)["gamma3_tilde"] != circuit_readouts(m, 1, 1)["gamma3_tilde"]


def test_circuit_readouts_are_the_means_of_the_stripes():
    m = model()
    values = circuit_readouts(m)
    assert values["alpha3_tilde"] == pytest.approx(torch.diagonal(position_qk(m), -1).mean().item(), rel=1e-5)
    assert values["gamma3_tilde"] == pytest.approx(torch.diagonal(copying_ov(m)).mean().item(), rel=1e-5)
