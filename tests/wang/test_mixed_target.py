"""ihcore.wang.mixed_target: the 4-gram, the induction heads, the mixed target and the learned-fraction regression."""

import math

import numpy as np
import pytest
import torch

from ihcore.spine.validation import ParameterError
from ihcore.wang.mixed_target import (
    DiscreteMixedTarget, MixedTarget, component_measure, component_regressors, component_weights,
    discrete_component_measure, four_gram, in_context_ngram, induction_head, induction_head_scale
)
from tests.wang.helpers import HAND_MADE, gaussian


def test_four_gram_reads_x_L_minus_2():
    assert four_gram(HAND_MADE).item() == -1.0  # x_3 for L = 5


def test_induction_head_on_a_hand_made_sequence():
    # query x_5 = 2; values x_2, x_3, x_4 = 2, -1, 0.5 with keys x_1, x_2, x_3 = 1, 2, -1
    w = 0.5
    weights = np.exp(w * 2 * np.array([1.0, 2.0, -1.0]))
    expected = (weights / weights.sum()) @ np.array([2.0, -1.0, 0.5])
    assert induction_head(HAND_MADE, w).item() == pytest.approx(expected, rel=1e-12)


def test_induction_head_copies_the_token_after_the_best_match_at_large_w():
    assert induction_head(HAND_MADE, 200.0).item() == pytest.approx(-1.0)  # key x_2 = 2 matches best


def test_trigram_head_on_a_hand_made_sequence():
    # n = 3: values x_3, x_4 with keys (x_2, x_1) = (2, 1) and (x_3, x_2) = (-1, 2); query (x_5, x_4) = (2, 0.5)
    logits = np.array([2 * 2 + 0.5 * 1, 2 * -1 + 0.5 * 2])
    weights = np.exp(0.3 * logits)
    expected = (weights / weights.sum()) @ np.array([-1.0, 0.5])
    assert in_context_ngram(HAND_MADE, 3, 0.3).item() == pytest.approx(expected, rel=1e-12)


def test_mixed_target_is_the_weighted_sum_of_its_components():
    target = MixedTarget(length=5, alpha=0.3, w_star=0.5, normalisation="sqrt")
    expected = 0.3 * -1.0 + 0.7 * math.sqrt(3) * induction_head(HAND_MADE, 0.5).item()
    assert target(HAND_MADE).item() == pytest.approx(expected, rel=1e-12)


def test_sqrt_normalisation_makes_the_unselective_head_a_standard_normal():
    # at w* = 0, κ_L IH₂ = (x_2 + ... + x_{L-1}) / √(L−2), exactly, so its variance is 1 for every L
    for length in (8, 64):
        x = gaussian(20_000, length)
        scaled = MixedTarget(length, alpha=0.0, w_star=0.0, normalisation="sqrt")(x)
        torch.testing.assert_close(scaled, x[:, 1:-1].sum(1) / math.sqrt(length - 2))
        assert scaled.var().item() == pytest.approx(1.0, abs=0.04)
        assert MixedTarget(length, alpha=0.0, w_star=0.0, normalisation="none")(x).var().item() == pytest.approx(
            1 / (length - 2), rel=0.05)


def test_target_refuses_bad_settings_naming_them():
    with pytest.raises(ParameterError, match="normalisation = 'log' is invalid"):
        MixedTarget(32, 0.5, 0.5, normalisation="log")
    with pytest.raises(ParameterError, match=r"alpha = 1.5 is invalid: expected a number in \[0, 1\]"):
        MixedTarget(32, 1.5, 0.5, "sqrt")
    with pytest.raises(ParameterError, match="length = 3 is invalid"):
        MixedTarget(3, 0.5, 0.5, "sqrt")


def test_task_batch_and_loss_for_the_training_loop():
    target = MixedTarget(12, 0.5, 0.5, "sqrt")
    batch = target.sample(7, "train", torch.Generator().manual_seed(0))
    assert batch.tokens.shape == (7, 12, 1) and batch.tokens.dtype == torch.float32
    torch.testing.assert_close(batch.target, batch.four_gram + batch.induction)
    logits = torch.zeros(7, 12, 1)
    logits[:, -1, 0] = batch.target
    assert target.loss(logits, batch).item() == 0.0


def test_induction_head_scale_shrinks_like_one_over_root_L_at_w_zero():
    scale = induction_head_scale([10, 42], 0.0, n_sequences=20_000)
    # at w = 0, IH₂ is the mean of L − 2 unit values and its selective part is 0
    assert scale["total"] == pytest.approx([1 / math.sqrt(8), 1 / math.sqrt(40)], rel=0.05)
    assert max(scale["selective"]) < 1e-12


def test_component_weights_recover_known_coefficients():
    target = MixedTarget(16, 0.4, 0.5, "sqrt")
    x = gaussian(2000, 16)
    regressors = component_regressors(x, target)
    outputs = (regressors @ torch.tensor([0.2, 0.3, 0.06], dtype=torch.float64))[None]
    r = component_weights(outputs, regressors, torch.tensor([0.4], dtype=torch.float64))
    assert [r[k].item() for k in ("r_G", "r_M", "r_I")] == pytest.approx([0.5, 0.5, 0.1])


def test_component_weights_of_a_row_do_not_depend_on_the_other_rows():
    target = MixedTarget(32, 0.5, 0.5, "sqrt")
    regressors = component_regressors(gaussian(1024, 32), target)
    outputs = torch.randn(50, 1024, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    alphas = torch.full((50,), 0.5, dtype=torch.float64)
    together = component_weights(outputs, regressors, alphas)
    for r in (0, 7, 49):
        alone = component_weights(outputs[r : r + 1].clone(), regressors, alphas[:1])
        assert all(torch.equal(alone[k][0], together[k][r]) for k in alone)  # bit for bit


def test_component_measure_of_a_perfect_model_is_one():
    target = MixedTarget(10, 0.5, 0.5, "sqrt")

    class Oracle(torch.nn.Module):
        def forward(self, tokens):
            return target(tokens[:, :, 0].double()).float()[:, None, None].expand(-1, tokens.shape[1], 1)

    batch = target.sample(512, "train", torch.Generator().manual_seed(1))
    values = component_measure(target)(Oracle(), {"train": batch})
    assert values["r_G"] == pytest.approx(1, abs=1e-4) and values["r_I"] == pytest.approx(1, abs=1e-3)
    assert values["loss"] < 1e-10


def test_discrete_target_on_a_hand_made_sequence():
    target = DiscreteMixedTarget(length=6, vocabulary=4, alpha=0.25, w_star=math.log(3))
    ids = torch.tensor([[1, 2, 0, 1, 3, 1]])  # x_6 = 1 follows earlier 1s at s−1 = 1 and 4, i.e. s = 2 and 5
    # s = 2..5 carry x_s = 2, 0, 1, 3 with weights ∝ 3, 1, 1, 3 (matches at s = 2 and 5)
    expected = torch.zeros(4, dtype=torch.float64)
    expected[1] = 0.25  # 4-gram x_{L−2} = x_4 = 1
    for token, weight in zip([2, 0, 1, 3], [3, 1, 1, 3]):
        expected[token] += 0.75 * weight / 8
    torch.testing.assert_close(target.distribution(ids)[0], expected)


def test_discrete_component_measure_of_the_target_itself_is_one():
    target = DiscreteMixedTarget(length=12, vocabulary=8, alpha=0.5, w_star=4.0)

    class Oracle(torch.nn.Module):
        def forward(self, tokens):
            ids = tokens.argmax(-1)
            return torch.log(target.distribution(ids)).float()[:, None].expand(-1, ids.shape[1], -1)

    batch = target.sample(256, "train", torch.Generator().manual_seed(0))
    values = discrete_component_measure(target)(Oracle(), {"train": batch})
    assert [values[k] for k in ("r_G", "r_M", "r_I")] == pytest.approx([1, 1, 1], abs=1e-4)
