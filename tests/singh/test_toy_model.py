"""The three-factor toy model: a plateau from smooth factor dynamics, removed by clamping a factor."""

import numpy as np
import pytest

from ihcore.singh.toy_model import train_toy


def test_unclamped_model_sits_on_a_plateau_then_learns():
    loss = train_toy(dim=10, steps=1500, init_scale=0.1)["loss"]
    assert loss[300] > 0.9 * loss[0]  # plateau
    assert loss[-1] < 0.01 * loss[0]  # then learned


def test_clamping_one_factor_removes_the_plateau():
    loss = train_toy(dim=10, steps=1500, init_scale=0.1, clamped="c")["loss"]
    assert loss[300] < 0.01 * loss[0]


def test_progress_reaches_zero_when_a_is_aligned_with_its_target():
    result = train_toy(dim=10, steps=300, init_scale=0.1, clamped="bc")
    assert 0 < result["progress"][0] <= 1 and result["progress"][-1] < 1e-9


def test_with_b_and_c_clamped_the_loss_decays_geometrically_at_the_closed_form_rate():
    # a <- a - lr/n |b*|^2 |c*|^2 (a - a*): the error shrinks by (1 - lr s / n) per step, the loss by its square
    dim, lr, seed = 6, 0.5, 3
    rng = np.random.default_rng(seed)
    _, b_star, c_star = (rng.standard_normal(dim) for _ in range(3))  # the targets, drawn first as in train_toy
    rate = (1 - lr * (b_star @ b_star) * (c_star @ c_star) / dim**3) ** 2
    loss = train_toy(dim=dim, steps=20, lr=lr, clamped="bc", seed=seed)["loss"]
    np.testing.assert_allclose(loss[1:] / loss[:-1], rate, rtol=1e-9)


def test_rejects_unknown_factor():
    with pytest.raises(ValueError, match="clamped"):
        train_toy(clamped="a")
