"""The study's settings, the subcircuit clamp conditions, one clamped run and the live baseline."""

from dataclasses import asdict

import pytest
import torch

from ihcore.book import sweep_registry, sweeps
from ihcore.singh import ClampedRunConfig, SinghSetting
from ihcore.singh.subcircuits import (
    CONDITIONS, PHASE_CHANGE_LOSS, clamped_losses, condition_clamp, run, singh_model, singh_task, strongest_heads,
    train_baseline,
)
from ihcore.spine import clamps
from ihcore.spine.validation import ParameterError

TASK = singh_task(n_labels=5, n_classes=10, item_dim=8, prototypes="lowrank", seed=0)
BATCH = TASK.sample(32, "train", torch.Generator().manual_seed(0))
SMALL = dict(n_classes=10, item_dim=8, n_heads=2, d_model=16)


def test_the_defaults_are_the_papers_setting_as_the_chapter_runs_it():
    setting = SinghSetting()
    assert (setting.n_classes, setting.n_labels, setting.item_dim, setting.prototypes) == (50, 5, 64, "lowrank")
    assert (setting.n_heads, setting.d_model, setting.n_layers) == (8, 64, 2)
    assert (setting.lr, setting.batch_size, setting.eval_every, setting.steps) == (3e-3, 32, 25, 1000)
    clamped = ClampedRunConfig()
    assert isinstance(clamped, SinghSetting) and clamped.steps == 1200 and clamped.eval_batch_size == 256
    assert {k: v for k, v in asdict(clamped).items() if k in asdict(setting) and k not in ("steps", "eval_batch_size")} \
        == {k: v for k, v in asdict(setting).items() if k not in ("steps", "eval_batch_size")}


@pytest.mark.parametrize("config_class, field, value, message", [
    (SinghSetting, "n_labels", 1, "n_labels = 1 is invalid: expected an integer >= 2"),
    (SinghSetting, "d_model", 30, "d_model = 30 is invalid: expected a multiple of n_heads = 8"),
    (SinghSetting, "prototypes", "gaussian", "prototypes = 'gaussian' is invalid"),
    (SinghSetting, "lr", 0.0, "lr = 0.0 is invalid: expected a number > 0"),
    (ClampedRunConfig, "condition", "everything", "condition = 'everything' is invalid"),
    (ClampedRunConfig, "active_head", 8, "active_head = 8 is invalid: expected a head 0 .. 7 or None"),
    (ClampedRunConfig, "previous_token_head", -1, "previous_token_head = -1 is invalid"),
])
def test_a_bad_value_is_refused_naming_the_field(config_class, field, value, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config_class(**{field: value})


def test_only_the_unclamped_condition_runs_without_an_active_head_or_with_three_layers():
    ClampedRunConfig(condition="none", active_head=None, n_layers=3)
    with pytest.raises(ParameterError, match="active_head = None is invalid"):
        ClampedRunConfig(condition="3v,5 (copy: C)", active_head=None)
    with pytest.raises(ParameterError, match="n_layers = 3 is invalid"):
        ClampedRunConfig(condition="3v,5 (copy: C)", n_layers=3)


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
    config = ClampedRunConfig(condition="1,2,3qk,4 (match: A+B)", **SMALL, steps=150, eval_every=50, lr=1e-2)
    result = run(config, progress=False)
    assert result["loss"][-1] < result["loss"][0] / 4 and result["phase_change"] is not None
    assert list(result["eval_steps"]) == [0, 50, 100, 150]
    assert {k: result[k] for k in asdict(config)} == asdict(config)


def test_unknown_condition_is_refused_by_the_clamp():
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
    result = run(ClampedRunConfig(condition="none", active_head=None, n_layers=3, **SMALL, steps=4, eval_every=2),
                 progress=False)
    assert result["n_layers"] == 3 and len(result["loss"]) == 3


def test_a_run_through_the_sweep_registry_equals_a_direct_run():
    sweep = sweep_registry.SWEEPS["singh-clamps"]
    p = sweep.parameters({"clamp_steps": 10, "eval_every": 5, "n_heads": 2, "d_model": 8, "item_dim": 8, "n_classes": 4,
                          "steps": 10, "slow_steps": 10, "sweep_steps": 10, "sweep_classes": 5, "sweep_labels": 6})
    config = sweep.configs(p, {"previous_token_head": 1, "induction_head": 1})[3]
    assert isinstance(config, ClampedRunConfig) and config.active_head == 1
    direct = run(config, progress=False)
    engine = sweep.run(config, progress=False)
    assert sweeps.canonical(direct) == sweeps.canonical(engine)


def test_the_baseline_is_live_with_every_measure_and_its_checkpoints():
    setting = SinghSetting(**SMALL, steps=20, eval_every=5, eval_batch_size=64)
    task, model, history = train_baseline(setting, progress=False)
    assert task.n_labels == 5 and model.config.n_heads == 2
    assert list(history.eval_steps) == [0, 5, 10, 15, 20] and sorted(history.checkpoints) == [0, 10, 20]
    assert {"loss/relabel", "accuracy/in_context", "induction_score", "previous_token_score"} <= set(history.values)
    heads = strongest_heads(history)
    assert set(heads) == {"previous_token_head", "induction_head"} and all(0 <= h < 2 for h in heads.values())
    assert history["loss/train"][0] > PHASE_CHANGE_LOSS
