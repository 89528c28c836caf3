"""Clamps: a clamped activation is what the model uses downstream, gradients reach what is
not clamped, removing a clamp restores the forward pass, clamps compose; ideal patterns."""

import pytest
import torch

from ihcore.spine import clamps
from ihcore.spine.hooks import replace
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.measures import induction_score, previous_token_score
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

TASK = ItemLabelTask(n_pairs=2, item_dim=8, n_labels=5, n_classes=10, n_heldout_classes=4, prototypes="lowrank")
BATCH = TASK.sample(16, "train", torch.Generator().manual_seed(0))


def make_model(layer_norm=False):
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_heads=3, d_model=12, layer_norm=layer_norm)
    return AttentionOnlyTransformer(config, seed=0)


def test_ideal_patterns_score_one_and_the_anti_match_scores_minus_one():
    assert previous_token_score(clamps.previous_token_pattern(BATCH)[:, None], BATCH) == pytest.approx([1.0])
    assert induction_score(clamps.match_pattern(BATCH)[:, None], BATCH) == pytest.approx([1.0])
    anti = clamps.match_pattern(BATCH).clone()
    anti[:, -1, BATCH.label_positions] = 1.0 - anti[:, -1, BATCH.label_positions]
    assert induction_score(anti[:, None], BATCH) == pytest.approx([-1.0])
    assert torch.allclose(clamps.previous_token_pattern(BATCH).sum(-1), torch.ones(16, 5))


def test_clamped_pattern_is_used_downstream():
    model = make_model()
    clamp = clamps.pattern(0, 1, clamps.previous_token_pattern)
    with clamp.on(model, BATCH):
        _, cache = model.run_with_cache(BATCH.tokens, names=["layer0.attn.pattern", "layer0.attn.v", "layer0.head_out"])
    ideal = clamps.previous_token_pattern(BATCH)  # (B, T, T)
    assert torch.equal(cache["layer0.attn.pattern"][:, 1], ideal)
    expected = torch.einsum("bqk,bke,ed->bqd", ideal, cache["layer0.attn.v"][:, :, 1], model.layers[0].W_O[1])
    assert torch.allclose(cache["layer0.head_out"][:, :, 1], expected, atol=1e-6)
    assert not torch.allclose(cache["layer0.attn.pattern"][:, 0], ideal)  # other heads keep their own pattern


def test_gradients_flow_to_unclamped_parameters_only():
    model = make_model()
    with clamps.pattern(0, 1, clamps.previous_token_pattern).on(model, BATCH):
        TASK.loss(model(BATCH.tokens), BATCH).backward()
    W_Q = model.layers[0].W_Q.grad
    assert torch.count_nonzero(W_Q[1]) == 0  # the clamped head's queries no longer affect anything
    assert torch.count_nonzero(W_Q[0]) > 0 and torch.count_nonzero(model.layers[0].W_V.grad[1]) > 0


def test_removing_a_clamp_restores_the_original_forward():
    model = make_model()
    before = model(BATCH.tokens)
    with clamps.pattern(1, 0, clamps.match_pattern, rows=[-1]).on(model, BATCH):
        clamped = model(BATCH.tokens)
    assert not torch.allclose(before[:, -1], clamped[:, -1])
    assert torch.allclose(before[:, :-1], clamped[:, :-1])  # only the query row was clamped
    assert torch.equal(model(BATCH.tokens), before)


def test_a_clamp_is_removed_even_when_the_forward_raises():
    model = make_model()
    with pytest.raises(RuntimeError), clamps.heads_off(0, [0]).on(model, BATCH):
        raise RuntimeError
    assert all(not point.fns for point in model.hook_points.values())


def test_composed_clamps_both_act_and_the_right_one_wins_on_a_shared_point():
    model = make_model()
    one, two = clamps.fix("logits", torch.tensor(1.0)), clamps.fix("logits", torch.tensor(2.0))
    with (one + two).on(model, BATCH):
        assert torch.all(model(BATCH.tokens) == 2.0)
    both = clamps.heads_off(0, [0, 1, 2]) + clamps.heads_off(1, [0, 1, 2])
    with both.on(model, BATCH):
        logits = model(BATCH.tokens)
    no_attention = (BATCH.tokens @ model.W_E + model.W_pos) @ model.W_U + model.b_U  # embeddings straight to the readout
    assert torch.allclose(logits, no_attention, atol=1e-5)
    assert both.name == "layer 0 heads [0, 1, 2] off + layer 1 heads [0, 1, 2] off"


def test_only_heads_keeps_exactly_the_named_heads():
    model = make_model()
    with clamps.only_heads(1, [2], n_heads=3).on(model, BATCH):
        _, cache = model.run_with_cache(BATCH.tokens, names=["layer1.head_out"])
    out = cache["layer1.head_out"]
    assert torch.count_nonzero(out[:, :, :2]) == 0 and torch.count_nonzero(out[:, :, 2]) > 0


@pytest.mark.parametrize("layer_norm", [False, True])
def test_shifted_input_clamp_equals_the_two_pass_construction(layer_norm):
    model = make_model(layer_norm)
    resid = model.run_with_cache(BATCH.tokens, names=["resid.0"])[1]["resid.0"]
    shifted = torch.cat([torch.zeros_like(resid[:, :1]), resid[:, :-1]], dim=1)
    first_pass_out = torch.zeros(16, 5, 3, 12)
    first_pass_out[:, :, 0] = shifted  # layer 0 writes the previous token's stream, summed over heads
    with model.hooks({"layer0.head_out": replace(first_pass_out)}):
        first = model.run_with_cache(BATCH.tokens, names=["layer1.attn.pattern"])[1]["layer1.attn.pattern"]
    with clamps.shifted_input_for_qk(model, 1).on(model, BATCH):
        _, cache = model.run_with_cache(BATCH.tokens, names=["layer1.attn.pattern", "resid.0", "resid.1"])
    assert torch.allclose(cache["layer1.attn.pattern"], first, atol=1e-6)
    assert torch.equal(cache["resid.1"], cache["resid.0"])  # layer 0 adds nothing in the real pass


def test_scores_as_logits_puts_the_heads_scores_on_the_context_labels():
    model = make_model()
    with clamps.scores_as_logits(1, 2).on(model, BATCH):
        logits, cache = model.run_with_cache(BATCH.tokens, names=["layer1.attn.scores"])
        loss = TASK.loss(logits, BATCH)
    query = logits[:, -1]  # (B, n_labels)
    scores = cache["layer1.attn.scores"][:, 2, -1, BATCH.label_positions]  # (B, N)
    assert torch.allclose(query.gather(1, BATCH.context_labels), scores)
    assert torch.isinf(query).sum() == 16 * (5 - 2)
    loss.backward()
    assert torch.isfinite(loss) and torch.count_nonzero(model.layers[1].W_Q.grad[2]) > 0
    assert torch.count_nonzero(model.layers[1].W_V.grad) == 0  # the value path does not reach the output


def test_match_pattern_puts_the_query_rows_weight_on_matching_labels_and_works_under_vmap():
    import dataclasses

    task = ItemLabelTask(n_pairs=4, item_dim=8, n_labels=4, n_classes=3, n_heldout_classes=2, seed=0)
    batch = task.sample(16, "train", torch.Generator().manual_seed(0))
    expected = torch.zeros(16, task.n_positions, task.n_positions)  # written out: the query row only
    for b in range(16):
        matching = batch.context_matches[b].nonzero().flatten()
        for i in matching:
            expected[b, -1, 2 * i + 1] = 1 / len(matching)
    assert torch.equal(clamps.match_pattern(batch), expected)
    stacked = {f.name: torch.stack([getattr(batch, f.name)] * 2) for f in dataclasses.fields(batch)}
    per_member = torch.vmap(lambda fields: clamps.match_pattern(dataclasses.replace(batch, **fields)))(stacked)
    assert torch.equal(per_member, torch.stack([expected] * 2))
