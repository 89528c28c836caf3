"""ihcore.wang.full_transformer: the d_x-dimensional target, the RPE transformer, its runs and the shipped sweep."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ihcore.book import sweeps
from ihcore.book.sweep_registry import SWEEPS
from ihcore.spine.validation import ParameterError
from ihcore.wang import full_transformer
from ihcore.wang.full_transformer import FullTransformerConfig, RPETransformer, VectorMixedTarget
from ihcore.wang.mixed_target import MixedTarget
from tests.wang.helpers import gaussian

TINY = {"length": 8, "steps": 30, "eval_every": 5, "batch_size": 16, "eval_batch": 32}


def test_at_one_dimension_the_target_is_the_scalar_target():
    x = gaussian(64, 10)
    vector = VectorMixedTarget(1, 10, 0.3, 0.8)
    torch.testing.assert_close(vector(x[:, :, None])[:, 0], MixedTarget(10, 0.3, 0.8, "sqrt")(x))
    three = replace(vector, gram=3)
    torch.testing.assert_close(three.n_gram(x[:, :, None])[:, 0], x[:, -2])  # the 3-gram reads x_{L-1}


def test_planted_training_data_make_both_mechanisms_agree_and_test_data_do_not():
    task = VectorMixedTarget(4, 12, 0.5, 0.5, planted=True)
    train = task.sample(32, "train", torch.Generator().manual_seed(0))
    torch.testing.assert_close(train.tokens[:, -4], train.tokens[:, -1])  # x_{L-3} = x_L
    torch.testing.assert_close(train.target, train.tokens[:, -3])  # target x_{L-2}
    test = task.sample(32, "test", torch.Generator().manual_seed(0))
    assert not torch.allclose(test.tokens[:, -4], test.tokens[:, -1])
    torch.testing.assert_close(test.target, task(test.tokens.double()).float())


def test_a_layer_wise_first_layer_copies_the_previous_token_beside_the_token():
    model = RPETransformer(d_x=3, d=8, heads=(1, 2), sigma_init=1e-2, seed=0, layerwise=True)
    assert not any(name.endswith("1") for name, _ in model.named_parameters())  # layer 1 is not trained
    x = torch.randn(5, 9, 3)
    h = x @ model.E.T
    after = h + model.attention(h, 1)
    torch.testing.assert_close(after[:, :, :3], x)
    torch.testing.assert_close(after[:, 1:, 3:6], x[:, :-1], atol=1e-5, rtol=1e-5)  # weight >= 1 - 1e-6 on t - 1
    torch.testing.assert_close(after[:, 0, 3:], torch.zeros(5, 5))  # position 1 has no key


def test_the_transformer_is_causal_and_never_attends_to_its_own_position():
    model = RPETransformer(d_x=2, d=6, heads=(1, 2), sigma_init=0.5, seed=1)
    x = torch.randn(4, 7, 2)
    changed = x.clone()
    changed[:, -1] += 1.0  # the last token: only the last position's output may change, through the residual only
    out, out_changed = model(x), model(changed)
    torch.testing.assert_close(out[:, :-1], out_changed[:, :-1])
    with torch.no_grad():
        model.W_Q1.zero_()  # the query no longer reads x_t: what is left at t comes from the keys j < t
    h, h_changed = x @ model.E.T, changed @ model.E.T
    torch.testing.assert_close(model.attention(h, 1)[:, -1], model.attention(h_changed, 1)[:, -1])


def test_a_bad_config_value_is_refused_naming_it():
    for field, value in [("optimiser", "lbfgs"), ("gram", 2), ("eval_every", 0)]:
        with pytest.raises(ParameterError, match=f"{field} = {value!r} is invalid"):
            FullTransformerConfig(**{field: value})
    with pytest.raises(ParameterError, match="d = 3 is invalid"):
        RPETransformer(d_x=2, d=3, heads=(1, 1), sigma_init=0.1, seed=0)


@pytest.mark.parametrize("changes", [{}, {"layerwise": True}, {"optimiser": "sgd", "lr": 0.5}, {"planted": True}])
def test_seeds_train_as_one_ensemble_and_each_member_is_its_own_run(changes):
    configs = full_transformer.seed_configs(FullTransformerConfig(**TINY, **changes, seed=3), 3)
    together = full_transformer.run_many(configs, progress=False)
    alone = full_transformer.run(configs[1], progress=False)
    np.testing.assert_allclose(together[1]["loss"], alone["loss"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(together[1]["r_I"], alone["r_I"], rtol=1e-3, atol=1e-4)
    assert not np.allclose(together[0]["loss"], together[1]["loss"])  # distinct seeds, distinct runs
    assert list(together[0]["steps"]) == list(range(0, 31, 5)) and together[0]["config"]["seed"] == 3
    assert len(alone["final_slopes"]) == 3 and (alone["final_slopes"][0] == 15.0) == bool(changes.get("layerwise"))


def test_the_chapter_lists_at_both_scales():
    sweep = SWEEPS["wang-full"]
    quick, paper = (sweep.configs(sweep.parameters({"scale": scale})) for scale in ("quick", "paper"))
    assert len(quick) == 1 * 5 and len(paper) == len(full_transformer.SETTINGS) * 5
    assert {c.steps for c in quick} == {full_transformer.QUICK_STEPS}
    assert [c.seed for c in paper[:5]] == [0, 1, 2, 3, 4] and all(c.d_x == 4 for c in paper)
    grouped = full_transformer.by_setting(paper, list(range(len(paper))), "paper")
    assert list(grouped) == list(full_transformer.SETTINGS) and grouped["Adam, layer-wise"] == [5, 6, 7, 8, 9]
    assert all(c.layerwise for c in paper[5:10]) and {c.optimiser for c in paper[10:20]} == {"sgd"}
    assert all(c.layerwise for c in paper[15:20])


def test_a_summary_reads_times_order_and_plateaus():
    steps = np.arange(0, 2001, 10)
    t = np.maximum(steps, 1).astype(float)
    drop = lambda centre: 1 / (1 + np.exp(-8 * (np.log(t) - np.log(centre))))
    loss = 1.0 - 0.5 * drop(50) - 0.45 * drop(800)  # two drops, one plateau between
    result = {"steps": steps, "loss": loss, "r_G": drop(50), "r_I": drop(800), "r_M": 0 * t}
    never = {**result, "r_I": 0 * t, "loss": 1.0 - 0.5 * drop(50)}  # one drop, no plateau
    summary = full_transformer.setting_summary([result, never])
    assert summary["plateaus"] == [1, 0] and summary["phases"] == [4, 2]
    assert summary["T_G"][0] == 50 and summary["T_IH"] == [800, math.inf]
    assert summary["order"] == [16.0, math.inf] and summary["plateau"][0] == 750
    assert full_transformer.order_ratio({**result, "r_G": 0 * t, "r_I": 0 * t}) == 1.0


def test_the_shipped_full_transformer_runs_load_at_the_paper_scale():
    sweep = SWEEPS["wang-full"]
    shipped = sweeps.load_shipped("wang-full", sweep.parameters({"scale": "paper"}))  # checks the configurations
    assert len(shipped["runs"]) == len(sweep.configs(sweep.parameters({"scale": "paper"})))
    first = shipped["runs"][0]["result"]
    assert {"steps", "loss", "r_G", "r_I", "r_M", "final_slopes", "config"} <= set(first)
