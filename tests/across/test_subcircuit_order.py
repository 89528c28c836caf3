"""Musat's order in Singh's setting: the generalised measures, rise times and the order over seeds."""

import math

import numpy as np
import pytest
import torch

from ihcore.across.subcircuit_order import (
    LENSES,
    SUBCIRCUITS,
    OrderConfig,
    chapter_configs,
    choose_heads,
    functional_measures,
    item_tokens,
    label_tokens,
    order_over_seeds,
    rise_time,
    run,
    run_many,
    weight_measures,
)
from ihcore.book.chapters import ACROSS
from ihcore.singh.subcircuits import singh_model, singh_task
from ihcore.spine.circuit_weights import circuit_readouts, copying_ov, matching_qk, position_qk
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

TASK = singh_task(n_labels=4, n_classes=6, item_dim=8, prototypes="lowrank", seed=0)
BATCH = TASK.sample(64, "train", torch.Generator().manual_seed(0))


def one_hot_model(seed=3):
    return AttentionOnlyTransformer(TransformerConfig(6, 6, 5, n_layers=2, n_heads=2, d_model=8), seed=seed)


def ideal_circuit(prev_head=1, induction_head=0):
    """Singh's task (d_input 12 = 8 item + 4 label, 5 positions) with a hand-built induction circuit.

    Residual layout: items 0-7, labels 8-11, positions 12-16, layer 0's copy of the item
    17-24, layer 1's copy of the label 25-28. Only the named heads are non-zero.
    """
    model = singh_model(TASK, n_heads=2, d_model=32, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_E[torch.arange(12), torch.arange(12)] = 1.0
        model.W_pos[torch.arange(5), 12 + torch.arange(5)] = 1.0
        l0, l1 = model.layers
        l0.W_Q[prev_head, 12 + torch.arange(5), torch.arange(5)] = 6.0  # query position n ...
        l0.W_K[prev_head, 12 + torch.arange(4), 1 + torch.arange(4)] = 6.0  # ... meets key position n - 1
        l0.W_V[prev_head, torch.arange(8), torch.arange(8)] = 1.0
        l0.W_O[prev_head, torch.arange(8), 17 + torch.arange(8)] = 1.0
        # query item meets the copied item through G with mu_k G mu_j = delta_kj on the training
        # prototypes (the plain dot product of non-centred prototypes does not separate them)
        pinv = torch.linalg.pinv(TASK._world["train_prototypes"])  # (8, 6)
        l1.W_Q[induction_head, :8, :8] = 7.0 * (pinv @ pinv.T)
        l1.W_K[induction_head, 17 + torch.arange(8), torch.arange(8)] = 7.0
        l1.W_Q[induction_head, 16, 8] = 4.0  # the query position looks for label tokens
        l1.W_K[induction_head, 8 + torch.arange(4), 8] = 4.0
        l1.W_V[induction_head, 8 + torch.arange(4), torch.arange(4)] = 1.0
        l1.W_O[induction_head, torch.arange(4), 25 + torch.arange(4)] = 1.0
        model.W_U[25 + torch.arange(4), torch.arange(4)] = 10.0
    return model


# --- Musat's lens ---------------------------------------------------------------------------------------


def test_generalised_forms_equal_the_one_hot_originals():
    m, eye = one_hot_model(), torch.eye(6)
    assert torch.allclose(matching_qk(m, 1, 0, tokens=eye), matching_qk(m, 1, 0), atol=1e-6)
    assert torch.allclose(copying_ov(m, 1, tokens=eye), copying_ov(m, 1), atol=1e-6)


def test_raw_weight_measures_are_the_circuit_readouts_on_one_hot_tokens():
    m, eye = one_hot_model(), torch.eye(6)
    ours = weight_measures(m, eye, eye, prev_head=1, induction_head=0, contrast=False)
    original = circuit_readouts(m, prev_head=1, induction_head=0)
    assert ours["A"] == pytest.approx(original["alpha3_tilde"], rel=1e-5)
    assert ours["B"] == pytest.approx(original["beta2_tilde"], rel=1e-5)
    assert ours["C"] == pytest.approx(original["gamma3_tilde"], rel=1e-5)


def test_contrasts_subtract_the_competitors():
    m, eye = one_hot_model(), torch.eye(6)
    ours = weight_measures(m, eye, eye, prev_head=0, induction_head=1, contrast=True)
    match, copy = matching_qk(m, 0, 1).detach(), copying_ov(m, 1).detach()
    off = ~torch.eye(6, dtype=torch.bool)
    assert ours["B"] == pytest.approx((match.diagonal().mean() - match[off].mean()).item(), rel=1e-5)
    assert ours["C"] == pytest.approx((copy.diagonal().mean() - copy[off].mean()).item(), rel=1e-5)
    S = position_qk(m, 0).detach()
    rows = [S[n, n - 1] - torch.cat([S[n, : n - 1], S[n, n : n + 1]]).mean() for n in range(1, 5)]
    assert ours["A"] == pytest.approx(torch.stack(rows).mean().item(), rel=1e-5)


def test_weight_measures_are_large_on_an_ideal_circuit_and_zero_on_a_zeroed_model():
    ideal = weight_measures(ideal_circuit(), item_tokens(TASK), label_tokens(TASK), prev_head=1, induction_head=0)
    assert ideal["A"] == pytest.approx(36 / 4)  # c^2 / sqrt(d_head) on the stripe, 0 elsewhere
    assert ideal["C"] == pytest.approx(10.0)  # diagonal 10, off-diagonal 0
    assert ideal["B"] > 1.0
    zeroed = ideal_circuit()
    with torch.no_grad():
        for p in zeroed.parameters():
            p.zero_()
    assert all(v == 0 for v in weight_measures(zeroed, item_tokens(TASK), label_tokens(TASK), 1, 0).values())
    # the wrong heads of the ideal model carry nothing
    assert all(v == 0 for v in weight_measures(ideal_circuit(), item_tokens(TASK), label_tokens(TASK), 0, 1).values())


# --- Singh's lens ---------------------------------------------------------------------------------------


def test_functional_measures_of_an_ideal_circuit():
    model = ideal_circuit()
    values = functional_measures(model, TASK, BATCH, prev_head=1, induction_head=0)
    assert values["A"] > 0.99
    assert values["B"] > 0.9 and values["induction_score"] > 0.9
    assert values["C"] < 0.01 and values["loss"] < 0.05
    assert values["C_head"] == pytest.approx(10.0, rel=1e-4)  # the head writes 10 to the attended label only
    assert all(not point.fns for point in model.hook_points.values())


def test_functional_b_does_not_need_a_learned_previous_token_attention():
    model = ideal_circuit()
    with torch.no_grad():
        model.layers[0].W_Q.zero_()  # layer 0 now attends uniformly: A is gone
    values = functional_measures(model, TASK, BATCH, prev_head=1, induction_head=0)
    assert values["A"] < 0.5 and values["induction_score"] < 0.9
    assert values["B"] > 0.9  # the clamped previous-token pattern restores the match


def test_head_choice_picks_the_strongest_heads():
    assert choose_heads(ideal_circuit(prev_head=1, induction_head=0), BATCH) == (1, 0)
    assert choose_heads(ideal_circuit(prev_head=0, induction_head=1), BATCH) == (0, 1)


# --- rise times and the order ---------------------------------------------------------------------------

STEPS = np.arange(0, 101, 5)


def test_rise_time_of_a_step_is_the_step():
    values = (STEPS >= 50).astype(float)
    assert [rise_time(STEPS, values, f) for f in (0.1, 0.5, 0.9)] == [50, 50, 50]


def test_rise_time_of_a_ramp_covers_the_fraction():
    values = np.clip(STEPS / 50, 0, 1)
    assert [rise_time(STEPS, values, f) for f in (0.1, 0.5, 0.9)] == [5, 25, 45]


def test_a_loss_rises_by_falling():
    loss = 1.6 - 1.5 * np.clip(STEPS / 50, 0, 1)
    assert rise_time(STEPS, loss, 0.5, direction=-1) == 25
    assert math.isnan(rise_time(STEPS, loss, 0.5, direction=1))  # a score going down never rose


def test_a_flat_noisy_curve_has_no_rise_time():
    noise = np.random.default_rng(0).normal(0, 0.05, STEPS.size)
    assert math.isnan(rise_time(STEPS, 0.3 + noise, 0.5))
    assert math.isnan(rise_time(STEPS, np.zeros(STEPS.size), 0.5))
    assert rise_time(STEPS, noise + 2.0 * (STEPS >= 60), 0.5) == 60  # a real change through the same noise


def fake_result(seed, times, lens="musat"):
    """A result whose subcircuit curves are steps at the given times (None: flat)."""
    result = {"seed": seed, "eval_steps": STEPS}
    for sub in SUBCIRCUITS:
        for name in LENSES:
            curve = np.zeros(STEPS.size) if times[sub] is None else (STEPS >= times[sub]).astype(float)
            direction = {"singh": {"C": -1}, "singh_clamp": {"B": -1, "C": -1}}.get(name, {}).get(sub, 1)
            result[f"curve/{name}/{sub}"] = direction * curve
    return result


def test_order_over_seeds_counts_strict_orders_only():
    results = [
        fake_result(0, {"C": 10, "B": 20, "A": 30}),  # Musat's order
        fake_result(1, {"C": 10, "B": 10, "A": 30}),  # tie C = B: not ordered, first is a tie
        fake_result(2, {"C": 30, "B": 20, "A": 10}),  # reversed
        fake_result(3, {"C": 10, "B": None, "A": 30}),  # B never rose
    ]
    for lens in LENSES:
        summary = order_over_seeds(results, lens, 0.5)
        assert summary["ordered"].tolist() == [True, False, False, False]
        assert summary["indicators"].tolist() == [1.0, 0.0, 0.0, 0.0]  # the claim's per-seed values
        assert summary["margin"].tolist() == [10, 0, -10, -math.inf]  # > 0 exactly when ordered
        assert summary["fraction_ordered"] == 0.25
        assert summary["first"] == ["C", "tie", "A", "C"]
        assert summary["first_counts"] == {"C": 2, "B": 0, "A": 1, "tie": 1, "none": 0}
        assert summary["rise"]["B"][3] != summary["rise"]["B"][3]  # NaN
        assert summary["seeds"].tolist() == [0, 1, 2, 3]


def test_unknown_lens_is_refused():
    with pytest.raises(ValueError, match="unknown lens"):
        order_over_seeds([], "nope")


# --- one run --------------------------------------------------------------------------------------------


def test_a_run_gives_a_curve_per_lens_and_subcircuit():
    config = OrderConfig(n_classes=8, item_dim=8, n_heads=2, d_model=16, steps=20, eval_every=10, eval_batch_size=32)
    result = run(config)
    assert result["eval_steps"].tolist() == [0, 10, 20]
    for lens in LENSES:
        for sub in SUBCIRCUITS:
            assert result[f"curve/{lens}/{sub}"].shape == (3,)
            assert np.isfinite(result[f"curve/{lens}/{sub}"]).all()
    assert 0 <= result["prev_head"] < 2 and 0 <= result["induction_head"] < 2
    assert result["seed"] == 0 and result["loss"].shape == (3,)


SMALL = {"n_classes": 8, "item_dim": 8, "n_heads": 2, "d_model": 16, "steps": 30, "eval_every": 10, "eval_batch_size": 32}


def test_each_member_of_the_batched_runs_is_the_run_of_its_own_seed_with_its_own_heads():
    configs = [OrderConfig(seed=seed, **SMALL) for seed in range(4)]
    together = run_many(configs, progress=False)
    assert [r["seed"] for r in together] == [0, 1, 2, 3]
    for config, member in zip(configs, together):
        alone = run(config, progress=False)
        assert (member["prev_head"], member["induction_head"]) == (alone["prev_head"], alone["induction_head"])
        for name in alone:
            if name.startswith("curve/") or name in ("loss", "induction_score"):
                np.testing.assert_allclose(member[name], alone[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # the seeds are distinct runs, and each seed's heads are its own (not the first member's)
    assert not np.allclose(together[0]["loss"], together[1]["loss"])
    assert len({(r["prev_head"], r["induction_head"]) for r in together}) > 1


def test_the_chapter_runs_n_seeds_seeds_from_seed():
    p = ACROSS.parameters.validate({"seed": 7, "n_seeds": 6})
    configs = chapter_configs(p)
    assert [c.seed for c in configs] == list(range(7, 13))
    assert ACROSS.parameters.defaults()["n_seeds"] >= 5
