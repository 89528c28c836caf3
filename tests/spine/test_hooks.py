"""Hook points: names and shapes as documented, record, replace, ablate_heads, attach/detach."""

import math
import re

import pytest
import torch

from ihcore.spine import transformer
from ihcore.spine.hooks import ablate_heads, replace
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig, causal_mask

B, T, D_IN, D_OUT, H, D, E = 2, 5, 6, 4, 2, 8, 3  # d_head 3 != d_model / n_heads on purpose
TOKENS = torch.randn(B, T, D_IN, generator=torch.Generator().manual_seed(0))
SIZES = {"B": B, "T": T, "H": H, "d": D, "e": E, "d_output": D_OUT}
UNIFORM = causal_mask(T).float() / causal_mask(T).float().sum(-1, keepdim=True)  # (T, T)
FIRST_KEY = torch.zeros(T, T).index_fill_(1, torch.tensor([0]), 1.0)  # all weight on position 0
LAST_QUERY = torch.arange(T).view(1, 1, T, 1) == T - 1  # where-mask selecting the last query row

# The hook-point table of the transformer module docstring, expanded for a 2-layer model: name -> shape.
DOC_SHAPES = {
    name.replace("{l+1}", str(layer + 1)).replace("{l}", str(layer)): shape
    for name, shape in re.findall(r"^``(\S+)``\s+(\(.*?\))", transformer.__doc__, flags=re.M)
    for layer in range(2)
}


def make_model(**overrides):
    config = dict(d_input=D_IN, d_output=D_OUT, n_positions=T, n_layers=2, n_heads=H, d_model=D, d_head=E)
    return AttentionOnlyTransformer(TransformerConfig(**(config | overrides)), seed=0)


# --- names and shapes --------------------------------------------------------------------


def test_hook_points_are_exactly_the_documented_names():
    assert len(DOC_SHAPES) == 18  # the table parsed: 4 global names, 6 per layer, resid.1..2
    assert set(make_model().hook_points) == set(DOC_SHAPES)


def test_run_with_cache_shapes_match_the_documented_table():
    _, cache = make_model().run_with_cache(TOKENS)
    assert set(cache) == set(DOC_SHAPES)
    for name, shape in DOC_SHAPES.items():
        expected = tuple(SIZES[symbol] for symbol in shape.strip("()").split(", "))
        assert cache[name].shape == expected, name


def test_run_with_cache_records_only_requested_names_detached_and_keeps_output_graph():
    model = make_model()
    logits, cache = model.run_with_cache(TOKENS, names=["embed", "layer1.attn.pattern"])
    assert set(cache) == {"embed", "layer1.attn.pattern"}
    assert logits.requires_grad
    assert not any(value.requires_grad for value in cache.values())
    assert torch.equal(logits, model(TOKENS))


# --- record ------------------------------------------------------------------------------


def test_recorded_pattern_equals_masked_softmax_of_cached_queries_and_keys():
    _, cache = make_model().run_with_cache(TOKENS)
    for layer in range(2):
        q, k = cache[f"layer{layer}.attn.q"], cache[f"layer{layer}.attn.k"]
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(E)
        expected = scores.masked_fill(~causal_mask(T), float("-inf")).softmax(-1)
        torch.testing.assert_close(cache[f"layer{layer}.attn.pattern"], expected)


# --- replace -----------------------------------------------------------------------------


def test_replaced_layer1_pattern_is_used_downstream():
    model = make_model()
    with model.hooks({"layer1.attn.pattern": replace(UNIFORM)}):
        logits, cache = model.run_with_cache(TOKENS)
    assert torch.equal(cache["layer1.attn.pattern"], UNIFORM.expand(B, H, T, T))
    resid = cache["resid.1"]
    v = torch.einsum("btd,hde->bthe", resid, model.layers[1].W_V)
    head_out = torch.einsum("qk,bkhe,hed->bqhd", UNIFORM, v, model.layers[1].W_O)
    expected = (resid + head_out.sum(2)) @ model.W_U + model.b_U
    torch.testing.assert_close(logits, expected)
    assert not torch.allclose(logits, model(TOKENS))


def test_replace_with_where_overwrites_only_masked_entries():
    model = make_model()
    _, clean = model.run_with_cache(TOKENS)
    with model.hooks({"layer0.attn.pattern": replace(FIRST_KEY, where=LAST_QUERY)}):
        _, cache = model.run_with_cache(TOKENS)
    pattern, clean_pattern = cache["layer0.attn.pattern"], clean["layer0.attn.pattern"]
    assert torch.equal(pattern[:, :, :-1], clean_pattern[:, :, :-1])
    assert torch.equal(pattern[:, :, -1], FIRST_KEY[-1].expand(B, H, T))
    assert not torch.equal(clean_pattern[:, :, -1], FIRST_KEY[-1].expand(B, H, T))


def test_replace_passes_gradient_exactly_to_unmasked_entries():
    activation = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    where = torch.tensor([[True, False, False, True]]).expand(3, 4)
    out = replace(torch.tensor(7.0), where)(activation, "x")
    assert torch.equal(out[where], torch.full((6,), 7.0))
    assert torch.equal(out[~where], activation[~where])
    out.sum().backward()
    assert torch.equal(activation.grad, (~where).float())


@pytest.mark.parametrize("where, queries_and_keys_get_gradient", [(None, False), (LAST_QUERY, True)])
def test_gradient_reaches_queries_and_keys_only_through_unreplaced_pattern_entries(
    where, queries_and_keys_get_gradient
):
    model = make_model()
    with model.hooks({"layer0.attn.pattern": replace(FIRST_KEY, where=where)}):
        model(TOKENS).square().sum().backward()
    attention = model.layers[0]
    for weight in (attention.W_Q, attention.W_K):
        gets_gradient = weight.grad is not None and bool(weight.grad.abs().sum() > 0)
        assert gets_gradient == queries_and_keys_get_gradient
    assert attention.W_V.grad.abs().sum() > 0  # values are not behind the pattern
    assert model.W_E.grad.abs().sum() > 0


def test_fully_replaced_residual_cuts_gradient_to_everything_upstream():
    model = make_model()
    constant = torch.randn(B, T, D, generator=torch.Generator().manual_seed(2))
    with model.hooks({"resid.1": replace(constant)}):
        model(TOKENS).square().sum().backward()
    upstream = [model.W_E, model.W_pos, *model.layers[0].parameters()]
    assert all(p.grad is None for p in upstream)
    assert all(p.grad.abs().sum() > 0 for p in [*model.layers[1].parameters(), model.W_U])


# --- ablate_heads ------------------------------------------------------------------------


def test_ablating_every_head_of_every_layer_leaves_the_direct_path():
    model = make_model()
    every_head = ablate_heads(range(H))
    with model.hooks({"layer0.head_out": every_head, "layer1.head_out": every_head}):
        logits = model(TOKENS)
    direct = (TOKENS @ model.W_E + model.W_pos) @ model.W_U + model.b_U
    torch.testing.assert_close(logits, direct)


def test_ablating_one_head_out_equals_zeroing_its_output_weights():
    model = make_model()
    clean = model(TOKENS)
    with model.hooks({"layer0.head_out": ablate_heads([1])}):
        ablated = model(TOKENS)
    assert not torch.allclose(ablated, clean)
    with torch.no_grad():
        model.layers[0].W_O[1] = 0
    torch.testing.assert_close(ablated, model(TOKENS))


def test_ablating_a_heads_pattern_equals_ablating_its_output():
    model = make_model()
    with model.hooks({"layer1.attn.pattern": ablate_heads([0], head_dim=1)}):
        logits, cache = model.run_with_cache(TOKENS)
    assert torch.all(cache["layer1.attn.pattern"][:, 0] == 0)
    assert torch.all(cache["layer1.attn.pattern"][:, 1].sum(-1) > 0.99)
    with model.hooks({"layer1.head_out": ablate_heads([0])}):
        torch.testing.assert_close(logits, model(TOKENS))


# --- attaching and detaching -------------------------------------------------------------


@pytest.mark.parametrize("block_raises", [False, True])
def test_hooks_are_removed_after_the_with_block_also_when_it_raises(block_raises):
    model = make_model()
    clean = model(TOKENS)
    try:
        with model.hooks({"logits": replace(torch.zeros(())), "layer0.head_out": ablate_heads([0])}):
            assert torch.all(model(TOKENS) == 0)
            if block_raises:
                raise RuntimeError("boom")
    except RuntimeError:
        assert block_raises
    assert all(not point.fns for point in model.hook_points.values())
    assert torch.equal(model(TOKENS), clean)


def test_nested_hooks_apply_outer_first_then_inner_in_given_order():
    model = make_model()
    _, clean = model.run_with_cache(TOKENS, names=["embed"])
    with model.hooks({"embed": replace(lambda a: a + 1)}):
        with model.hooks({"embed": [replace(lambda a: a * 2), replace(lambda a: a - 3)]}):
            _, inner = model.run_with_cache(TOKENS, names=["embed"])
        _, outer = model.run_with_cache(TOKENS, names=["embed"])
    torch.testing.assert_close(inner["embed"], (clean["embed"] + 1) * 2 - 3)
    torch.testing.assert_close(outer["embed"], clean["embed"] + 1)
    assert not model.hook_points["embed"].fns  # each block removed exactly its own functions


def test_unknown_hook_name_raises_key_error_and_attaches_nothing():
    model = make_model()
    with pytest.raises(KeyError, match="layer2.attn.pattern"):
        with model.hooks({"embed": replace(torch.zeros(())), "layer2.attn.pattern": replace(UNIFORM)}):
            pass
    assert not model.hook_points["embed"].fns


def test_hook_returning_wrong_shape_raises_value_error_naming_the_point():
    model = make_model()
    with pytest.raises(ValueError, match="layer0.attn.pattern"):
        with model.hooks({"layer0.attn.pattern": lambda a, name: a[..., :-1]}):
            model(TOKENS)
    assert not model.hook_points["layer0.attn.pattern"].fns
