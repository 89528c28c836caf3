"""The minimal disentangled model: masks, concatenated stream, zero init, hook points."""

import pytest
import torch

from ihcore.musat.disentangled import DisentangledConfig, DisentangledTransformer
from ihcore.musat.tasks import ContinuousTask


def batch(n_pairs=3, dim=4, seed=0):
    return ContinuousTask(n_pairs, dim).sample(5, "train", torch.Generator().manual_seed(seed))


def test_zero_init_predicts_zero_and_only_the_readout_has_a_gradient():
    task = ContinuousTask(3, 4)
    model = DisentangledTransformer(DisentangledConfig(4))
    b = task.sample(8, "train", torch.Generator().manual_seed(0))
    loss = task.loss(model(b.tokens), b)
    loss.backward()
    assert model(b.tokens).abs().max() == 0
    assert model.W1.grad.abs().max() == 0 and model.W2.grad.abs().max() == 0 and model.W3.grad.abs().max() > 0


@pytest.mark.parametrize("residual, widths", [("concat", (8, 16, 32)), ("additive", (8, 8, 8))])
def test_stream_widths_and_weight_shapes(residual, widths):
    model = DisentangledTransformer(DisentangledConfig(4, residual=residual, init_scale=1.0))
    _, cache = model.run_with_cache(batch().tokens)
    assert tuple(cache[f"resid.{l}"].shape[-1] for l in range(3)) == widths
    assert model.W3.shape == (4, widths[2]) and cache["output"].shape == (5, 4)


def test_concatenated_stream_keeps_the_input_and_appends_the_attention_output():
    model = DisentangledTransformer(DisentangledConfig(4, init_scale=1.0))
    tokens = batch().tokens
    _, cache = model.run_with_cache(tokens)
    assert torch.equal(cache["resid.1"][..., :8], tokens)
    assert torch.allclose(cache["resid.1"][..., 8:], cache["layer0.attn.pattern"] @ tokens)


@pytest.mark.parametrize("attend_to_self", [False, True])
def test_mask_excludes_the_current_position_unless_allowed(attend_to_self):
    model = DisentangledTransformer(DisentangledConfig(4, attend_to_self=attend_to_self, init_scale=1.0))
    _, cache = model.run_with_cache(batch().tokens)
    pattern = cache["layer1.attn.pattern"]
    T = pattern.shape[-1]
    assert pattern.triu(1).abs().max() == 0
    assert (pattern.diagonal(dim1=1, dim2=2).abs().max() > 0) == attend_to_self
    if not attend_to_self:
        assert pattern[:, 0].abs().max() == 0 and torch.allclose(pattern[:, 1:].sum(-1), torch.ones(5, T - 1))
        assert cache["resid.1"][:, 0, 8:].abs().max() == 0  # the first token attends to nothing


def test_output_does_not_depend_on_later_tokens_at_earlier_positions():
    model = DisentangledTransformer(DisentangledConfig(4, init_scale=1.0))
    tokens = batch().tokens
    changed = tokens.clone()
    changed[:, -1] += 1.0
    _, a = model.run_with_cache(tokens)
    _, b = model.run_with_cache(changed)
    assert torch.allclose(a["resid.2"][:, :-1], b["resid.2"][:, :-1])
