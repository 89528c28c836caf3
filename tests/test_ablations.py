"""Head ablations and the wiring matrix on a hand-built case: heads whose output weights
are zero contribute nothing, so ablating them must change nothing."""

import numpy as np
import torch

from ihcore import ablations
from ihcore.measures import accuracy, induction_score
from ihcore.models import AttentionOnlyTransformer, TransformerConfig
from ihcore.tasks import ItemLabelTask

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
