"""Head ablations and the wiring matrix on a hand-built case: heads whose output weights
are zero contribute nothing, so ablating them must change nothing. Path ablations against a
forward pass written out by hand; composition scores on hand-built subspaces."""

import numpy as np
import pytest
import torch

from ihcore.spine import ablations
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.measures import accuracy, induction_score
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig, causal_mask, masked_softmax

TASK = ItemLabelTask(n_pairs=2, item_dim=8, n_labels=5, n_classes=10, n_heldout_classes=4)
BATCH = TASK.sample(256, "train", torch.Generator().manual_seed(0))


def model_with_silent_heads():
    """3 heads per layer; only layer-0 head 1 and layer-1 head 2 write to the residual stream."""
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_heads=3, d_model=12)
    model = AttentionOnlyTransformer(config, seed=1)
    with torch.no_grad():
        for layer, live in ((0, 1), (1, 2)):
            for head in range(3):
                if head != live:
                    model.layers[layer].W_O[head] = 0.0
    return model


def full_accuracy(model):
    with torch.no_grad():
        return accuracy(model(BATCH.tokens), BATCH)


def test_ablating_silent_heads_changes_nothing_and_the_live_head_matters():
    model = model_with_silent_heads()
    full, none_left = full_accuracy(model), ablations.accuracy_without(model, BATCH, {1: [0, 1, 2]})
    assert full != none_left
    result = ablations.single_head_ablations(model, BATCH, layer=1)
    np.testing.assert_array_equal(result["removed"], [full, full, none_left])
    np.testing.assert_array_equal(result["only"], [none_left, none_left, full])
    np.testing.assert_array_equal(ablations.heads_added_back(model, BATCH, 1, [2, 0, 1]), [none_left] + [full] * 3)


def test_wiring_finds_the_one_live_pair():
    model = model_with_silent_heads()
    matrix = ablations.wiring(model, BATCH)
    full, nothing = full_accuracy(model), ablations.accuracy_without(model, BATCH, {0: [0, 1, 2], 1: [0, 1, 2]})
    only_live_target = ablations.accuracy_without(model, BATCH, {0: [0, 1, 2], 1: [0, 1]})
    only_live_source = ablations.accuracy_without(model, BATCH, {0: [0, 2], 1: [0, 1, 2]})
    expected = np.full((3, 3), nothing)  # (target head, source head)
    expected[2, :] = only_live_target  # a silent source head leaves the live target head alone
    expected[:, 1] = only_live_source  # a silent target head leaves the live source head alone
    expected[2, 1] = full
    np.testing.assert_array_equal(matrix["accuracy"], expected)
    assert len({full, nothing, only_live_target, only_live_source}) > 2  # the case can tell the cells apart
    _, cache = model.run_with_cache(BATCH.tokens, names=["layer1.attn.pattern"])
    np.testing.assert_allclose(matrix["induction_score"][:, 1], induction_score(cache["layer1.attn.pattern"], BATCH), atol=1e-6)


def test_over_checkpoints_stacks_results_in_step_order():
    model = model_with_silent_heads()
    checkpoints = {10: {k: v * 0 for k, v in model.state_dict().items()}, 0: model.state_dict()}
    steps, values = ablations.over_checkpoints(model, checkpoints, lambda m: {"w": m.W_U.sum().detach().numpy()})
    np.testing.assert_array_equal(steps, [0, 10])
    assert values["w"].shape == (2,) and values["w"][1] == 0 and values["w"][0] != 0


def test_path_ablations_match_a_forward_pass_written_out_by_hand():
    """Layer 1 recomputed by hand from the clean residual stream minus the ablated head,
    with the clean patterns and/or values put back where each kind keeps them."""
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_heads=3, d_model=12)
    model, head, tokens = AttentionOnlyTransformer(config, seed=2), 1, BATCH.tokens[:64]
    _, clean = model.run_with_cache(tokens, names=["resid.1", "layer0.head_out", "layer1.attn.pattern", "layer1.attn.v"])
    resid = clean["resid.1"] - clean["layer0.head_out"][:, :, head]  # (B, T, d)
    layer = model.layers[1]
    with torch.no_grad():
        q, k, v = (torch.einsum("btd,hde->bthe", resid, W) for W in (layer.W_Q, layer.W_K, layer.W_V))
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / q.shape[-1] ** 0.5
        pattern = masked_softmax(scores, causal_mask(tokens.shape[1]))
        logits = {}
        for kind, (p, values) in {"removed": (pattern, v), "pattern_preserving": (clean["layer1.attn.pattern"], v),
                                  "value_preserving": (pattern, clean["layer1.attn.v"]),
                                  "both_preserving": (clean["layer1.attn.pattern"], clean["layer1.attn.v"])}.items():
            out = torch.einsum("bhqk,bkhe,hed->bqd", p, values, layer.W_O)
            logits[kind] = (resid + out) @ model.W_U + model.b_U
    assert set(logits) == set(ablations.PATH_KINDS)
    for kind, expected in logits.items():
        torch.testing.assert_close(ablations.path_ablated_logits(model, tokens, head, kind), expected, atol=1e-5, rtol=1e-5)
    kinds = list(logits.values())
    assert all((a - b).abs().max() > 1e-3 for i, a in enumerate(kinds) for b in kinds[i + 1:])  # the kinds differ here
    accuracies = ablations.path_ablations(model, BATCH)
    assert all(accuracies[kind].shape == (3,) for kind in ablations.PATH_KINDS)


def composition_model():
    """2 heads per layer, d_model 6, d_head 2; layer-0 head s writes only along e_s (rank 1)."""
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_heads=2, d_model=6, d_head=2)
    model = AttentionOnlyTransformer(config, seed=3)
    e = torch.eye(6)
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([-3.0, 0.5])
    with torch.no_grad():
        layer0, layer1 = model.layers
        layer0.W_O[0], layer0.W_O[1] = torch.outer(a, e[0]), torch.outer(2 * a, e[1])
        layer1.W_K[0], layer1.W_K[1] = torch.outer(e[1], b), torch.outer(e[2], b)  # head 1 reads what no head writes
        layer1.W_V[0] = torch.outer(e[0], 5 * b)
        layer1.W_V[1] = torch.outer((e[0] + e[3]) / 2**0.5, b)  # half aligned with e_0
    return model


def test_composition_scores_on_hand_built_subspaces():
    scores = ablations.composition_scores(composition_model())
    # (target head, source head): aligned rank-1 maps give 1, orthogonal ones 0, at any scale
    np.testing.assert_allclose(scores["K"], [[0, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(scores["V"], [[1, 0], [2**-0.5, 0]], atol=1e-6)


def test_composition_score_of_a_full_rank_block_and_layer_norm_guard():
    model = composition_model()
    with torch.no_grad():
        model.layers[0].W_O[0] = torch.eye(2, 6)  # writes dims 0, 1
        model.layers[1].W_K[0] = torch.eye(6, 2)  # reads dims 0, 1: the path is I_2, score √2 / 2
    assert abs(ablations.composition_scores(model)["K"][0, 0] - 2**-0.5) < 1e-6
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_heads=2, layer_norm=True)
    with pytest.raises(ValueError, match="LayerNorm"):
        ablations.composition_scores(AttentionOnlyTransformer(config))


def test_rank_correlation_with_ties():
    assert ablations.rank_correlation(np.array([[1, 5], [7, 9]]), np.array([[0.1, 0.2], [0.3, 0.4]])) == pytest.approx(1)
    assert ablations.rank_correlation([3, 2, 1], [1, 2, 3]) == pytest.approx(-1)
    assert ablations.rank_correlation([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(3 / 10**0.5)
