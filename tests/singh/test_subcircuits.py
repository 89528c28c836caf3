"""The study's settings, the subcircuit clamp conditions, one clamped run and the live baseline."""

import dataclasses
from dataclasses import asdict

import numpy as np
import pytest
import torch

from ihcore.book import sweep_registry, sweeps
from ihcore.singh import ClampedRunConfig, SinghSetting, baseline
from ihcore.singh.subcircuits import (
    CONDITIONS,
    HEAD_MASKS,
    PHASE_CHANGE_LOSS,
    attach_heads,
    clamped_losses,
    condition_clamp,
    member_clamp,
    run,
    run_many,
    singh_model,
    singh_task,
    strongest_heads,
    train_baseline,
    train_baselines,
)
from ihcore.spine import clamps
from ihcore.spine.train import Seeds
from ihcore.spine.validation import ParameterError

TASK = singh_task(n_labels=5, n_classes=10, item_dim=8, prototypes="lowrank", seed=0)
BATCH = TASK.sample(32, "train", torch.Generator().manual_seed(0))
SMALL = {"n_classes": 10, "item_dim": 8, "n_heads": 2, "d_model": 16}


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
    (SinghSetting, "d_model", 30, "d_model = 30 is invalid: expected a positive multiple of n_heads = 8"),
    (SinghSetting, "prototypes", "gaussian", "prototypes = 'gaussian' is invalid"),
    (SinghSetting, "lr", 0.0, "lr = 0.0 is invalid: expected a number > 0"),
    (ClampedRunConfig, "condition", "everything", "condition = 'everything' is invalid"),
    (ClampedRunConfig, "active_head", 8, "active_head = 8 is invalid: expected a head 0 .. 7 or None"),
    (ClampedRunConfig, "previous_token_head", -1, "previous_token_head = -1 is invalid"),
])
def test_a_bad_value_is_refused_naming_the_field(config_class, field, value, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config_class(**{field: value})


def test_every_bad_value_is_named_in_one_error():
    with pytest.raises(ParameterError, match=r"ClampedRunConfig: n_labels = 1 is invalid.*; lr = -1\.0 is invalid.*; "
                                             r"active_head = 9 is invalid"):
        ClampedRunConfig(n_labels=1, lr=-1.0, active_head=9)


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
                          "steps": 10, "slow_steps": 10, "sweep_steps": 10, "sweep_classes": 5, "sweep_labels": 6,
                          "n_seeds": 5})
    configs = sweep.configs(p, {"previous_token_head": [1, 0, 1, 0, 1], "induction_head": [1, 1, 0, 0, 1]})
    config = configs[3 * p.n_seeds + 2]  # condition 3, third seed
    assert isinstance(config, ClampedRunConfig) and (config.seed, config.active_head) == (2, 0)
    direct = run(config, progress=False)
    engine = sweep.run(config, progress=False)
    assert sweeps.canonical(direct) == sweeps.canonical(engine)
    batched = sweep.run_all(configs[3 * p.n_seeds:4 * p.n_seeds])[2]
    assert batched["phase_change"] == direct["phase_change"]
    np.testing.assert_allclose(batched["loss"], direct["loss"], rtol=1e-5, atol=1e-6)


def test_the_baseline_is_live_with_every_measure_and_its_checkpoints():
    setting = SinghSetting(**SMALL, steps=20, eval_every=5, eval_batch_size=64)
    task, model, history = train_baseline(setting, progress=False)
    assert task.n_labels == 5 and model.config.n_heads == 2
    assert list(history.eval_steps) == [0, 5, 10, 15, 20] and sorted(history.checkpoints) == [0, 10, 20]
    assert {"loss/relabel", "accuracy/in_context", "induction_score", "previous_token_score"} <= set(history.values)
    heads = strongest_heads(history)
    assert set(heads) == {"previous_token_head", "induction_head"} and all(0 <= h < 2 for h in heads.values())
    assert history["loss/train"][0] > PHASE_CHANGE_LOSS


# --- Seeds as a batch dimension: run_many, the shared clamps, the baseline ensemble -------------


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_run_many_gives_each_seed_its_own_run_with_its_own_heads(condition):
    tiny = dict(SMALL, steps=30, eval_every=10, eval_batch_size=64, lr=1e-2)
    configs = [ClampedRunConfig(**tiny, condition=condition, seed=seed, previous_token_head=seed % 2,
                                active_head=(seed + 1) % 2) for seed in range(3)]
    many = run_many(configs, progress=False)
    for config, result in zip(configs, many):
        alone = run(config, progress=False)
        assert {k: result[k] for k in asdict(config)} == asdict(config)
        assert result["phase_change"] == alone["phase_change"]
        np.testing.assert_allclose(result["loss"], alone["loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result["loss_in_context"], alone["loss_in_context"], rtol=1e-5, atol=1e-6)
    # the heads matter: seed 1 with seed 0's heads is another run
    swapped = run(dataclasses.replace(configs[1], previous_token_head=0, active_head=1), progress=False)
    assert np.abs(swapped["loss"] - many[1]["loss"]).max() > 1e-4


def test_member_clamp_equals_the_condition_clamp_and_needs_the_heads():
    model = singh_model(TASK, n_heads=4, d_model=16, seed=0)
    with pytest.raises(ValueError, match="attach_heads"):
        member_clamp("3v,5 (copy: C)", model)
    attach_heads(model, previous_token_head=1, active_head=2)
    assert HEAD_MASKS not in model.state_dict()
    for condition in CONDITIONS:
        with torch.no_grad():
            with condition_clamp(condition, model, 1, 2).on(model, BATCH):
                expected = model(BATCH.tokens)
            with member_clamp(condition, model).on(model, BATCH):
                got = model(BATCH.tokens)
        assert torch.equal(got, expected), condition


def test_the_baseline_ensemble_member_is_the_single_seed_baseline():
    setting = SinghSetting(**SMALL, steps=20, eval_every=5, eval_batch_size=64, seed=3)
    ensemble = train_baselines(setting, 3, progress=False)
    assert [model.config.n_heads for _, model, _ in ensemble] == [2, 2, 2]
    for k, (_, _, history) in enumerate(ensemble):
        _, _, alone = train_baseline(dataclasses.replace(setting, seed=3 + k), progress=False)
        for name in ("loss/train", "accuracy/in_context", "induction_score", "previous_token_score"):
            np.testing.assert_allclose(history[name], alone[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(ensemble[0][2]["loss/train"], ensemble[1][2]["loss/train"])  # distinct seeds


def test_the_baseline_run_reads_every_clamp_at_evaluation_at_every_checkpoint():
    setting = SinghSetting(**SMALL, steps=20, eval_every=5, eval_batch_size=64, seed=3)
    result = baseline.run(setting, progress=False)  # the baseline sweep's run
    task, model, history = train_baseline(setting, progress=False)  # the same training, live
    np.testing.assert_allclose(result["loss/train"], history["loss/train"], rtol=1e-5, atol=1e-6)
    assert list(result["checkpoint_steps"]) == [0, 10, 20]
    assert {f"clamped/{c}" for c in CONDITIONS} <= set(result)
    assert all(result[f"clamped/{c}"].shape == (3,) and np.isfinite(result[f"clamped/{c}"]).all() for c in CONDITIONS)
    # with the trained model's heads, each clamp is the loss of the clamp applied to the final model
    heads = strongest_heads(history)
    assert (result["previous_token_head"], result["induction_head"]) == (heads["previous_token_head"], heads["induction_head"])
    batch = baseline.ablation_batch(task, Seeds.from_base(3))
    final = clamped_losses(task, "train", {"copy": condition_clamp("3v,5 (copy: C)", model, *heads.values())})
    np.testing.assert_allclose(result["clamped/3v,5 (copy: C)"][-1], final(model, {"train": batch})["loss/train/copy"],
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(result["clamped/3v,5 (copy: C)"], result["clamped/none"])  # the clamps differ
