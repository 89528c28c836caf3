"""Phase-change time against context length N: the tasks at N, the plateau, detection, censoring, fits."""

import json
import math

import numpy as np
import pytest
import torch

from ihcore.across import context_scaling as cs
from ihcore.book.chapters import ACROSS, MUSAT, SINGH


def uniform_in_context_logits(batch, n_outputs):
    """Logits (B, T, n_outputs) of a readout that copies a uniformly chosen in-context label."""
    B, T = batch.tokens.shape[:2]
    logits = torch.full((B, T, n_outputs), -1e9)
    logits[:, -1].scatter_(1, batch.context_labels, 0.0)
    return logits


@pytest.mark.parametrize("task_name, n_pairs", [("singh", 2), ("singh", 5), ("musat", 3), ("musat", 20)])
def test_task_at_n_has_n_pairs_and_the_query_class_once_with_n_distinct_labels(task_name, n_pairs):
    config = cs.scaling_config(task_name, n_pairs)
    task = cs.build_task(config)
    batch = task.sample(64, "train", torch.Generator().manual_seed(0))
    n_out = config.n_labels if task_name == "singh" else max(32, 2 * n_pairs)
    assert batch.tokens.shape[:2] == (64, 2 * n_pairs + 1)
    assert batch.context_labels.shape == (64, n_pairs)
    # exactly one context pair is of the query's class, and it carries the target label
    assert (batch.context_matches.sum(1) == 1).all()
    assert (batch.context_labels[batch.context_matches] == batch.target).all()
    # the N labels in context are distinct: N candidate pairings, plateau ln N
    assert all(len(set(row.tolist())) == n_pairs for row in batch.context_labels)
    assert batch.context_labels.max() < n_out


def test_singh_context_holds_n_distinct_classes_and_labels_fixed_across_n():
    for n in (2, 4, 8):
        config = cs.scaling_config("singh", n)
        task = cs.build_task(config)
        assert task.n_context_classes == n and task.n_labels == 8 and task.labels == "per_sequence"
        items = task.sample(32, "train", torch.Generator().manual_seed(1)).tokens[:, 0:-1:2, : task.item_dim]
        distinct = torch.cdist(items, items) + torch.eye(n) > 1e-6  # (B, N, N): no two context items equal
        assert distinct.all()


@pytest.mark.parametrize("task_name, n_pairs", [("singh", 2), ("singh", 6), ("musat", 2), ("musat", 8)])
def test_copying_a_uniform_in_context_label_costs_ln_n(task_name, n_pairs):
    config = cs.scaling_config(task_name, n_pairs)
    task = cs.build_task(config)
    batch = task.sample(128, "train", torch.Generator().manual_seed(2))
    n_out = config.n_labels if task_name == "singh" else task.n_tokens
    loss = task.loss(uniform_in_context_logits(batch, n_out), batch).item()
    assert loss == pytest.approx(cs.plateau_loss(n_pairs), rel=1e-6)
    assert cs.phase_change_threshold(2) == pytest.approx(0.4 * math.log(2))  # Singh et al.'s rule at N = 2


def test_configs_take_the_chapters_defaults():
    singh = cs.scaling_config("singh", 3)
    p = SINGH.parameters.defaults()
    assert (singh.n_heads, singh.d_model, singh.lr, singh.batch_size) == (p["n_heads"], p["d_model"], p["lr"], p["batch_size"])
    musat = cs.scaling_config("musat", 3, seed=4, steps=50)
    q = MUSAT.parameters.defaults()
    assert (musat.n_heads, musat.d_model, musat.lr, musat.batch_size) == (1, q["std_d_model"], q["std_lr"], q["std_batch_size"])
    assert (musat.seed, musat.steps) == (4, 50)
    model = cs.build_model(musat, cs.build_task(musat))
    assert model.config.n_heads == 1 and model.config.d_input == 32
    assert cs.scaling_config("singh", 2) == cs.ScalingConfig()  # the dataclass defaults are the singh task's
    configs = cs.default_configs()
    assert len(configs) == sum(len(ns) for ns in cs.DEFAULT_N.values()) * len(cs.DEFAULT_SEEDS)
    with pytest.raises(ValueError, match="n_pairs"):
        cs.scaling_config("singh", 9)  # more context classes than labels
    with pytest.raises(ValueError, match="task"):
        cs.scaling_config("wang", 2)


def synthetic_result(task, n, seed, phase_step, steps=1000, every=10, decay=0.0):
    """A run's result whose loss sits at the plateau ln N until ``phase_step`` (None: never), then
    drops: at once to a tenth (``decay`` 0) or as ln N e^{-(t - phase_step)/decay}."""
    eval_steps = np.arange(0, steps + 1, every)
    plateau = cs.plateau_loss(n)
    loss = np.full(eval_steps.shape, plateau)
    if phase_step is not None:
        after = plateau * np.exp(-(eval_steps - phase_step) / decay) if decay else 0.1 * plateau
        loss = np.where(eval_steps < phase_step, plateau, after)
    result = {"task": task, "n_pairs": n, "seed": seed, "eval_steps": eval_steps, "loss": loss}
    result["phase_change"] = cs.phase_change_at(result, cs.PHASE_CHANGE_FRACTION)
    return result


def test_phase_change_is_the_first_evaluation_below_0_4_ln_n_and_none_if_never():
    result = synthetic_result("singh", 4, 0, phase_step=300, decay=20)
    # ln N e^{-(t - 300)/20} < 0.4 ln N from t > 300 + 20 ln 2.5 = 318.3: the evaluation at 320
    assert result["phase_change"] == 320
    assert cs.phase_change_at(result, 0.9) == 310
    assert synthetic_result("singh", 4, 0, phase_step=None)["phase_change"] is None


def test_scaling_fit_recovers_a_synthetic_power_law_and_counts_censored_runs():
    rng = np.random.default_rng(0)
    results = []
    for seed in range(4):
        scale = 30 * np.exp(0.1 * rng.standard_normal())
        for n in (2, 3, 4, 6, 8):
            results.append(synthetic_result("musat", n, seed, round(scale * n**2 / 10) * 10, steps=3000))
            results.append(synthetic_result("singh", n, seed, 100 * n if n < 8 else None, steps=3000))
    fit = cs.scaling_fit(results)
    musat, singh = fit["musat"], fit["singh"]
    assert musat["n_values"] == [2, 3, 4, 6, 8] and musat["n_censored"] == 0
    assert musat["mean"] == pytest.approx(2.0, abs=0.05) and musat["low"] < 2.0 < musat["high"]
    assert singh["n_censored"] == 4 and singh["censored"] == [(8, s) for s in range(4)]
    assert singh["times"][0][-1] is None
    assert singh["mean"] == pytest.approx(1.0, abs=0.05)  # fitted on the uncensored N only


def test_scaling_fit_drops_seeds_with_fewer_than_two_crossings():
    results = [synthetic_result("singh", n, 0, 100 * n) for n in (2, 4)]
    results += [synthetic_result("singh", n, 1, 100 if n == 2 else None) for n in (2, 4)]
    fit = cs.scaling_fit(results)["singh"]
    assert list(fit["per_seed_slopes"]) == [0] and fit["dropped_seeds"] == [1]
    assert fit["mean"] == pytest.approx(1.0) and math.isnan(fit["low"])  # one seed: no interval


def test_a_run_returns_a_json_friendly_curve_and_phase_change():
    config = cs.scaling_config("musat", 2, steps=20, eval_every=10, eval_batch_size=32)
    result = cs.run(config)
    assert list(result["eval_steps"]) == [0, 10, 20]
    assert result["loss"].shape == (3,) and result["loss"][0] > result["threshold"]
    assert result["threshold"] == pytest.approx(0.4 * math.log(2))
    assert result["phase_change"] is None and result["censored"]
    json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in result.items()})
    again = cs.run(config)
    assert np.array_equal(result["loss"], again["loss"])  # seeded: same run, same curve
    singh = cs.run(cs.scaling_config("singh", 3, steps=10, eval_every=10, eval_batch_size=32))
    assert singh["loss"][0] == pytest.approx(math.log(8), abs=0.3)  # 8 labels, nothing learned yet


def test_batched_runs_equal_single_runs_and_group_only_the_seeds_of_one_setting():
    configs = [cs.scaling_config(task, n, seed, steps=30, eval_every=10, eval_batch_size=32)
               for task, n in (("musat", 2), ("singh", 3)) for seed in (0, 1, 2)]
    together = cs.run_many(configs, progress=False)
    assert [(r["task"], r["n_pairs"], r["seed"]) for r in together] == [(c.task, c.n_pairs, c.seed) for c in configs]
    for k in (1, 4):
        alone = cs.run(configs[k], progress=False)
        np.testing.assert_allclose(together[k]["loss"], alone["loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together[k]["accuracy"], alone["accuracy"], atol=1e-6)
        assert together[k]["phase_change"] == alone["phase_change"]
    assert not np.allclose(together[3]["loss"], together[4]["loss"])  # distinct seeds, distinct runs


def test_the_chapter_runs_n_seeds_seeds_at_every_n():
    p = ACROSS.parameters.validate({"seed": 3, "n_seeds": 5, "singh_n_max": 3, "musat_n_max": 4})
    configs = cs.chapter_configs(p)
    assert sorted({c.seed for c in configs}) == [3, 4, 5, 6, 7]
    assert len(configs) == 5 * (len(cs.context_lengths("singh", 3)) + len(cs.context_lengths("musat", 4)))
