"""Masks, causality, residual bookkeeping, seeding and config validation of the model."""

import pytest
import torch
import torch.nn.functional as F

from ihcore.spine.transformer import (
    AttentionOnlyTransformer,
    TransformerConfig,
    causal_mask,
    head_products,
    masked_softmax,
    rotary,
    rotary_angles,
)

B, T, D_IN, D_OUT = 2, 6, 5, 4
TOKENS = torch.randn(B, T, D_IN, generator=torch.Generator().manual_seed(0))


def make_model(seed=0, **overrides):
    config = dict(d_input=D_IN, d_output=D_OUT, n_positions=T, n_layers=2, n_heads=2, d_model=8)
    return AttentionOnlyTransformer(TransformerConfig(**(config | overrides)), seed=seed)


# --- masks -------------------------------------------------------------------------------


def test_causal_mask_allows_exactly_keys_at_or_before_the_query():
    assert causal_mask(3, attend_to_self=True).tolist() == [
        [True, False, False],
        [True, True, False],
        [True, True, True],
    ]
    assert torch.equal(causal_mask(7, attend_to_self=True), torch.ones(7, 7).tril().bool())


def test_causal_mask_without_self_allows_exactly_strictly_earlier_keys():
    assert causal_mask(3, attend_to_self=False).tolist() == [
        [False, False, False],
        [True, False, False],
        [True, True, False],
    ]
    assert torch.equal(causal_mask(7, attend_to_self=False), torch.ones(7, 7).tril(-1).bool())


@pytest.mark.parametrize("attend_to_self", [True, False])
def test_masked_softmax_is_softmax_over_allowed_keys_and_zero_elsewhere(attend_to_self):
    mask = causal_mask(5, attend_to_self)
    scores = torch.randn(3, 5, 5, generator=torch.Generator().manual_seed(1))
    pattern = masked_softmax(scores.masked_fill(~mask, float("-inf")), mask)
    assert torch.all(pattern[:, ~mask] == 0)
    has_keys = mask.any(-1)
    torch.testing.assert_close(pattern.sum(-1)[:, has_keys], torch.ones(3, int(has_keys.sum())))
    for t in torch.nonzero(has_keys).flatten():
        allowed = mask[t]
        torch.testing.assert_close(pattern[:, t, allowed], scores[:, t, allowed].softmax(-1))


def test_masked_softmax_without_empty_rows_skips_only_fills_that_change_nothing():
    mask = causal_mask(5, attend_to_self=True)  # every row has a key
    raw = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(4), requires_grad=True)
    full, fast = masked_softmax(raw, mask), masked_softmax(raw, mask, empty_rows=False)
    assert torch.equal(full, fast)  # bit for bit: the eager runs are unchanged by the shortcut
    weights = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(5))
    (grad_full,), (grad_fast,) = (torch.autograd.grad((p * weights).sum(), raw) for p in (full, fast))
    assert torch.equal(grad_full, grad_fast)


def test_head_products_broadcast_equal_the_einsums_to_rounding_with_their_gradients():
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(3, 5, 2, 4, generator=g, requires_grad=True) for _ in range(3))  # (B, T, H, e)
    W_O = torch.randn(2, 4, 7, generator=g, requires_grad=True)  # (H, e, d)
    weights = torch.randn(3, 5, 2, 7, generator=g)
    mask = causal_mask(5)
    seen = []

    def pattern_of(scores):
        seen.append(scores)
        return masked_softmax(scores, mask)

    outputs = {broadcast: head_products(q, k, v, W_O, pattern_of, broadcast=broadcast) for broadcast in (False, True)}
    torch.testing.assert_close(seen[1], seen[0])  # the hooks see the same scaled scores
    torch.testing.assert_close(outputs[True], outputs[False])
    grads = {b: torch.autograd.grad((out * weights).sum(), (q, k, v, W_O)) for b, out in outputs.items()}
    for fused, reference in zip(grads[True], grads[False]):
        torch.testing.assert_close(fused, reference)
    # Outside torch.compile the default is the einsums: the eager reference arithmetic, bit for bit.
    assert torch.equal(head_products(q, k, v, W_O, pattern_of), outputs[False])


def test_masked_softmax_empty_row_is_exactly_zero_with_finite_zero_gradient():
    mask = causal_mask(4, attend_to_self=False)  # row 0 has no key
    raw = torch.randn(4, 4, generator=torch.Generator().manual_seed(2), requires_grad=True)
    pattern = masked_softmax(raw.masked_fill(~mask, float("-inf")), mask)
    assert torch.equal(pattern[0], torch.zeros(4))
    (pattern * torch.randn(4, 4, generator=torch.Generator().manual_seed(3))).sum().backward()
    assert torch.isfinite(raw.grad).all()
    assert torch.equal(raw.grad[0], torch.zeros(4))
    assert torch.all(raw.grad[~mask] == 0)
    assert raw.grad[mask].abs().sum() > 0


def test_model_without_self_attention_has_zero_diagonal_and_empty_first_row():
    model = make_model(attend_to_self=False)
    logits, cache = model.run_with_cache(TOKENS)
    for layer in range(2):
        pattern = cache[f"layer{layer}.attn.pattern"]
        assert torch.all(pattern.diagonal(dim1=-2, dim2=-1) == 0)
        assert torch.all(pattern[:, :, 0] == 0)
        torch.testing.assert_close(pattern[:, :, 1:].sum(-1), torch.ones(B, 2, T - 1))
        assert torch.all(cache[f"layer{layer}.head_out"][:, 0] == 0)
    logits.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("attend_to_self", [True, False])
@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_changing_token_t_leaves_logits_before_t_unchanged(attend_to_self, layer_norm, positional):
    model = make_model(attend_to_self=attend_to_self, layer_norm=layer_norm, positional=positional)
    t = 3
    changed = TOKENS.clone()
    changed[:, t] += 1.0
    before, after = model(TOKENS), model(changed)
    assert torch.equal(before[:, :t], after[:, :t])
    assert not torch.allclose(before[:, t:], after[:, t:])


def test_scores_replaced_by_a_hook_still_respect_the_causal_mask():
    from ihcore.spine.hooks import replace

    model = make_model()
    uniform = {f"layer{layer}.attn.scores": replace(torch.zeros(())) for layer in range(2)}
    changed = TOKENS.clone()
    changed[:, 3] += 1.0
    with model.hooks(uniform):
        _, cache = model.run_with_cache(TOKENS, names=["layer0.attn.pattern"])
        before, after = model(TOKENS), model(changed)
    expected = causal_mask(T).float() / causal_mask(T).sum(-1, keepdim=True)
    torch.testing.assert_close(cache["layer0.attn.pattern"], expected.expand(B, 2, T, T))
    assert torch.equal(before[:, :3], after[:, :3])


def test_logits_of_a_prefix_equal_the_prefix_of_the_logits():
    model = make_model()
    torch.testing.assert_close(model(TOKENS[:, :3]), model(TOKENS)[:, :3])


def test_sequence_longer_than_n_positions_raises():
    with pytest.raises(ValueError, match="n_positions"):
        make_model()(torch.zeros(1, T + 1, D_IN))


# --- residual stream ---------------------------------------------------------------------


@pytest.mark.parametrize("layer_norm", [False, True])
def test_head_outputs_summed_over_heads_plus_resid_equal_next_resid(layer_norm):
    _, cache = make_model(layer_norm=layer_norm).run_with_cache(TOKENS)
    torch.testing.assert_close(cache["resid.0"], cache["embed"] + cache["pos_embed"])
    for layer in range(2):
        torch.testing.assert_close(
            cache[f"resid.{layer + 1}"], cache[f"resid.{layer}"] + cache[f"layer{layer}.head_out"].sum(2)
        )


def test_layer_norm_keeps_hook_points_and_normalises_attention_inputs_and_readout():
    plain, normed = make_model(), make_model(layer_norm=True)
    assert set(normed.hook_points) == set(plain.hook_points)
    logits, cache = normed.run_with_cache(TOKENS)
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits, plain(TOKENS))
    for layer in range(2):
        attn_in = F.layer_norm(cache[f"resid.{layer}"], (8,))  # fresh LayerNorms are weight 1, bias 0
        q = torch.einsum("btd,hde->bthe", attn_in, normed.layers[layer].W_Q)
        torch.testing.assert_close(cache[f"layer{layer}.attn.q"], q)
    readout = F.layer_norm(cache["resid.2"], (8,)) @ normed.W_U + normed.b_U
    torch.testing.assert_close(logits, readout)


def test_no_positional_embedding_means_zero_pos_embed_and_no_parameter():
    model = make_model(positional="none")
    _, cache = model.run_with_cache(TOKENS)
    assert model.W_pos is None
    assert torch.equal(cache["pos_embed"], torch.zeros(B, T, 8))


# --- rotary positions (RoPE) ------------------------------------------------------------


def _rotary_scores(q, k, positions):
    angles = rotary_angles(positions, q.shape[-1])
    return torch.einsum("bqhe,bkhe->bhqk", rotary(q, angles), rotary(k, angles))


@pytest.mark.parametrize("shift", [1, 7, 1000])
def test_rotary_scores_depend_only_on_relative_position(shift):
    generator = torch.Generator().manual_seed(4)
    q, k = torch.randn(2, T, 3, 8, generator=generator), torch.randn(2, T, 3, 8, generator=generator)
    positions = torch.arange(T)
    torch.testing.assert_close(_rotary_scores(q, k, positions + shift), _rotary_scores(q, k, positions),
                               atol=1e-4, rtol=1e-4)
    assert not torch.allclose(_rotary_scores(q, k, positions * 2), _rotary_scores(q, k, positions), atol=1e-3)


def test_rotary_is_a_rotation_and_the_identity_at_position_zero():
    x = torch.randn(2, T, 3, 8, generator=torch.Generator().manual_seed(5))
    rotated = rotary(x, rotary_angles(torch.arange(T), 8))
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[:, 0], x[:, 0])


@pytest.mark.parametrize("layer_norm", [False, True])
def test_rotary_model_scores_are_rotated_hooked_queries_and_keys_with_no_position_embedding(layer_norm):
    model = make_model(positional="rotary", layer_norm=layer_norm)
    assert model.W_pos is None
    _, cache = model.run_with_cache(TOKENS)
    assert torch.equal(cache["pos_embed"], torch.zeros(B, T, 8))
    for layer in range(2):
        q, k = cache[f"layer{layer}.attn.q"], cache[f"layer{layer}.attn.k"]
        expected = _rotary_scores(q, k, torch.arange(T)) / 2.0  # head size 4: scores / sqrt(4)
        torch.testing.assert_close(cache[f"layer{layer}.attn.scores"], expected.masked_fill(~causal_mask(T), float("-inf")))


def test_rotary_model_keeps_its_hook_points():
    assert set(make_model(positional="rotary", layer_norm=True).hook_points) == set(make_model().hook_points)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_a_clamp_overrides_what_it_names_in_the_rotary_model(layer_norm):
    from ihcore.spine.hooks import replace

    model = make_model(positional="rotary", layer_norm=layer_norm)
    uniform = causal_mask(T).float() / causal_mask(T).sum(-1, keepdim=True)  # (T, T)
    with model.hooks({"layer1.attn.pattern": replace(uniform.expand(B, 2, T, T))}):
        clamped, cache = model.run_with_cache(TOKENS)
    torch.testing.assert_close(cache["layer1.attn.pattern"], uniform.expand(B, 2, T, T))
    torch.testing.assert_close(cache["layer1.head_out"],
                               torch.einsum("bhqk,bkhe,hed->bqhd", uniform.expand(B, 2, T, T), cache["layer1.attn.v"],
                                            model.layers[1].W_O))
    assert not torch.allclose(clamped, model(TOKENS))
    # a replaced key is rotated like the projection it replaces: scores follow the clamped keys
    keys = torch.ones(B, T, 2, 4)
    with model.hooks({"layer0.attn.k": replace(keys)}):
        _, cache = model.run_with_cache(TOKENS)
    expected = _rotary_scores(cache["layer0.attn.q"], keys, torch.arange(T)) / 2.0
    torch.testing.assert_close(cache["layer0.attn.scores"], expected.masked_fill(~causal_mask(T), float("-inf")))


def test_rotary_needs_an_even_head_size():
    with pytest.raises(ValueError, match="even head size"):
        TransformerConfig(d_input=D_IN, d_output=D_OUT, n_positions=T, d_model=9, n_heads=3, positional="rotary")


# --- initialisation ----------------------------------------------------------------------


def test_same_seed_gives_identical_parameters_and_different_seed_different():
    a, b, c = make_model(seed=0), make_model(seed=0), make_model(seed=1)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if name != "b_U":  # zero-initialised bias
            assert not torch.equal(pa, pc), name


def test_initialisation_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_model(seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_init_scale_multiplies_every_weight():
    unit, doubled = make_model(), make_model(init_scale=2.0)
    for (name, p1), p2 in zip(unit.named_parameters(), doubled.parameters()):
        torch.testing.assert_close(p2, 2 * p1, msg=name)


# --- config validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(n_heads=3), "divisible"),
        (dict(positional="sinusoidal"), "positional"),
        (dict(d_model=0), "d_model"),
        (dict(n_layers=0), "n_layers"),
        (dict(n_positions=0), "n_positions"),
    ],
)
def test_invalid_config_raises_value_error(overrides, message):
    config = dict(d_input=D_IN, d_output=D_OUT, n_positions=T, d_model=8) | overrides
    with pytest.raises(ValueError, match=message):
        TransformerConfig(**config)


def test_explicit_d_head_allows_heads_not_dividing_d_model():
    model = make_model(n_heads=3, d_head=4)
    assert model.config.head_size == 4
    assert model.layers[0].W_Q.shape == (3, 8, 4)
    assert model.layers[0].W_O.shape == (3, 4, 8)
    assert model(TOKENS).shape == (B, T, D_OUT)


@pytest.mark.parametrize("d_head", [0, -1])
def test_non_positive_d_head_raises_value_error(d_head):
    with pytest.raises(ValueError, match="d_head"):
        TransformerConfig(d_input=D_IN, d_output=D_OUT, n_positions=T, d_model=8, d_head=d_head)
