"""The subcircuit clamp conditions and one clamped training run."""

import pytest
import torch

from ihcore.singh.subcircuits import (
    CONDITIONS, RunConfig, clamped_losses, condition_clamp, run_one, singh_model, singh_task
)
from ihcore.spine import clamps

TASK = singh_task(n_labels=5, n_classes=10, item_dim=8, prototypes="lowrank", seed=0)
BATCH = TASK.sample(32, "train", torch.Generator().manual_seed(0))


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_every_condition_keeps_only_the_active_layer1_head(condition):
    model = singh_model(TASK, n_heads=4, d_model=16, seed=0)
    with condition_clamp(condition, model, previous_token_head=1, active_head=2).on(model, BATCH):
        logits, cache = model.run_with_cache(BATCH.tokens, names=["layer1.head_out", "layer0.attn.pattern", "layer1.attn.pattern"])
    out = cache["layer1.head_out"]
    assert torch.count_nonzero(out[:, :, [0, 1, 3]]) == 0
    assert torch.isfinite(TASK.loss(logits, BATCH))
    if condition.startswith("1 "):
        assert torch.equal(cache["layer0.attn.pattern"][:, 1], clamps.previous_token_pattern(BATCH))
    if condition.startswith("1,2,3qk"):
        assert torch.equal(cache["layer1.attn.pattern"][:, 2, -1], clamps.match_pattern(BATCH)[:, -1])


def test_match_clamp_leaves_only_copying_to_learn_and_it_is_learned_fast():
    result = run_one(RunConfig(condition="1,2,3qk,4 (match: A+B)", n_classes=10, item_dim=8, n_heads=2, d_model=16, steps=150, eval_every=50, lr=1e-2))
    assert result["loss"][-1] < result["loss"][0] / 4 and result["phase_change"] is not None
    assert list(result["eval_steps"]) == [0, 50, 100, 150]


def test_unknown_condition_is_refused():
    model = singh_model(TASK, n_heads=2, d_model=8, seed=0)
    with pytest.raises(ValueError, match="unknown condition"):
        condition_clamp("everything", model, 0, 0)


def test_clamped_losses_match_the_loss_under_each_clamp_and_leave_no_hook_behind():
    model = singh_model(TASK, n_heads=2, d_model=16, seed=0)
    names = ["none", "1,2,3qk,4 (match: A+B)"]
    measure = clamped_losses(TASK, "train", {n: condition_clamp(n, model, 0, 1) for n in names})
    values = measure(model, {"train": BATCH})
    with condition_clamp(names[1], model, 0, 1).on(model, BATCH), torch.no_grad():
        expected = TASK.loss(model(BATCH.tokens), BATCH).item()
    assert values[f"loss/train/{names[1]}"] == pytest.approx(expected)
    assert values["loss/train/none"] != values[f"loss/train/{names[1]}"]
    assert all(not point.fns for point in model.hook_points.values())


def test_a_three_layer_baseline_run_is_possible_without_clamps():
    result = run_one(RunConfig(condition="none", active_head=None, n_layers=3, n_classes=10, item_dim=8, n_heads=2,
                               d_model=16, steps=4, eval_every=2))
    assert result["n_layers"] == 3 and len(result["loss"]) == 3
