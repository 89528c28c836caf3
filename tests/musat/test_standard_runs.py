"""The standard model's run on the token task: configuration, weight products, measures and their order."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ihcore.musat.standard_runs import PRODUCT_OFFSETS, StandardRunConfig, chapter_config, order_count, run
from ihcore.spine.circuit_weights import READOUT_NAMES
from ihcore.spine.validation import ParameterError


def test_a_bad_field_is_refused_with_a_message_naming_it():
    with pytest.raises(ParameterError, match=r"StandardRunConfig: n_tokens = 10 is invalid: expected an integer >= 2 n_pairs = 16"):
        StandardRunConfig(n_pairs=8, n_tokens=10)
    with pytest.raises(ParameterError, match=r"lr = 0 is invalid: expected a number > 0"):
        StandardRunConfig(lr=0)


def test_chapter_config_reads_the_std_parameters():
    p = SimpleNamespace(std_n_pairs=3, std_n_tokens=12, std_d_model=16, std_steps=30, std_lr=1e-2, std_batch_size=8, seed=5)
    assert chapter_config(p) == StandardRunConfig(n_pairs=3, n_tokens=12, d_model=16, steps=30, lr=1e-2, batch_size=8, seed=5)


def test_a_short_run_returns_curves_products_and_emergence_steps():
    config = StandardRunConfig(n_pairs=2, n_tokens=8, d_model=8, steps=20, batch_size=8, n_evals=5, eval_batch_size=16)
    result = run(config, progress=False)
    assert result["eval_steps"].tolist() == [0, 4, 8, 12, 16, 20]
    assert result["loss"].shape == result["accuracy"].shape == (6,)
    for name in READOUT_NAMES:
        assert result["normalised"][name][-1] == pytest.approx(1.0)
        assert f"T_{name}@0.5" in result and f"T_{name}@0.1" in result
    assert set(result["products"]) == set(result["contrasts"]) == set(PRODUCT_OFFSETS)
    assert result["products"]["previous position"].shape == (5, 5) and isinstance(result["products"]["copying"], np.ndarray)
    assert order_count(result) in (0, 1, 2)
    again = run(config, progress=False)
    assert np.array_equal(result["loss"], again["loss"])  # seeded


def test_order_count_counts_thresholds_with_gamma3_then_beta2_then_alpha3():
    times = {"T_alpha3_tilde@0.5": 30, "T_beta2_tilde@0.5": 20, "T_gamma3_tilde@0.5": 10,
             "T_alpha3_tilde@0.1": 5, "T_beta2_tilde@0.1": 20, "T_gamma3_tilde@0.1": 10}
    assert order_count(times) == 1


def test_an_ensemble_member_equals_the_single_run_of_its_seed():
    from dataclasses import replace

    from ihcore.musat.standard_runs import run_many

    config = StandardRunConfig(n_pairs=2, n_tokens=8, d_model=8, steps=12, batch_size=8, n_evals=3, eval_batch_size=16)
    ensemble = run_many([replace(config, seed=s) for s in (0, 1)], progress=False)
    alone = run(replace(config, seed=1), progress=False)
    np.testing.assert_allclose(ensemble[1]["loss"], alone["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ensemble[1]["products"]["copying"], alone["products"]["copying"], rtol=1e-4, atol=1e-6)
    assert not np.allclose(ensemble[0]["loss"], ensemble[1]["loss"])


def test_chapter_configs_are_the_chapter_run_at_every_seed():
    from ihcore.musat.standard_runs import chapter_configs

    p = SimpleNamespace(std_n_pairs=3, std_n_tokens=12, std_d_model=16, std_steps=30, std_lr=1e-2, std_batch_size=8,
                        seed=5, n_seeds=3)
    assert [c.seed for c in chapter_configs(p)] == [5, 6, 7] and chapter_configs(p)[0] == chapter_config(p)


def test_the_label_row_contrast_reads_the_stripe_only_where_labels_look_back():
    from ihcore.musat.standard_runs import label_row_contrast

    n = 9
    labels_look_back, items_look_back = torch.zeros(n, n), torch.zeros(n, n)
    for row in range(1, n):
        (labels_look_back if row % 2 == 1 else items_look_back)[row, row - 1] = 1.0
    noise = 0.01 * torch.randn(n, n, generator=torch.Generator().manual_seed(0))
    assert label_row_contrast(labels_look_back + noise) > 10
    assert abs(label_row_contrast(items_look_back + noise)) < 3
