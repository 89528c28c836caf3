"""Runs of the minimal model: the configuration, the run, the chapter's lists of runs and the stress-test summary."""

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ihcore.musat.disentangled import DisentangledConfig
from ihcore.musat.minimal_runs import (
    BY_CONSTRUCTION,
    MODEL_LABELS,
    PREVIOUS_TOKEN,
    STRESS_VARIANTS,
    MinimalRunConfig,
    batch_configs,
    chapter_config,
    coefficient_configs,
    final_coefficients,
    isotropic_configs,
    key_indices,
    off_subspace_share,
    other_indices,
    others_above,
    others_first_passage,
    power_of_two_ns,
    reduced_configs,
    run,
    run_many,
    scaling_configs,
    stress_configs,
    stress_lines,
    stress_summary,
    stress_table,
    three_large_ratio,
)
from ihcore.musat.reduced import CoefficientModel
from ihcore.musat.tasks import ContinuousTask
from ihcore.spine.validation import ParameterError

CHAPTER = SimpleNamespace(n_pairs=4, dim=10, eta=1.0, batch_size=8, tau_factor=2.0, seed=3, n_seeds=2, n_max_full=4,
                          stress_n_max=4)


@pytest.mark.parametrize("field, value, expected", [
    ("n_pairs", 0, "n_pairs = 0 is invalid: expected an integer >= 1"),
    ("model", "huge", "model = 'huge' is invalid: expected one of ('full', 'coefficients', 'three')"),
    ("dim", 7, "dim = 7 is invalid: expected an even integer >= 2"),
    ("eta", 0.0, "eta = 0.0 is invalid: expected a number > 0"),
    ("data", "gaussian", "data = 'gaussian' is invalid"),
])
def test_a_bad_field_is_refused_with_a_message_naming_it(field, value, expected):
    with pytest.raises(ParameterError, match="MinimalRunConfig: " + expected.replace("(", r"\(").replace(")", r"\)")):
        MinimalRunConfig(**{field: value})


def test_orthonormal_data_need_dim_at_least_2n_plus_2():
    with pytest.raises(ParameterError, match=r"dim = 16 is invalid: expected an even integer >= 18"):
        MinimalRunConfig(n_pairs=8, dim=16, data="orthonormal")
    assert MinimalRunConfig(n_pairs=8, dim=18, data="orthonormal").tau_max == 6.0 * 64


def test_three_parameter_run_has_only_three_nonzero_coefficients_and_stays_inside():
    config = MinimalRunConfig(model="three", n_pairs=2, dim=6, data="orthonormal", tau_factor=1.0, n_evals=4)
    result = run(config, progress=False)
    nonzero = {name for name, value in zip(result["names"], result["coefficients"][-1]) if value != 0}
    assert "gamma3" in nonzero and nonzero <= {"alpha3", "beta2", "gamma3"}
    assert result["share_inside"][-1] == pytest.approx(1.0)
    assert result["tau"][-1] == pytest.approx(config.tau_max) and result["model"] == "three"
    assert set(result) >= {"T_alpha3@0.5", "T_beta2@0.1", "T_gamma3@0.5"}


def test_the_chapter_lists_share_the_chapter_base_and_run_every_trained_setting_at_every_seed():
    base = chapter_config(CHAPTER)
    assert (base.n_pairs, base.dim, base.batch_size, base.seed, base.tau_factor) == (4, 10, 8, 3, 2.0)
    assert isotropic_configs(CHAPTER) == [base, replace(base, seed=4)]
    assert [(c.batch_size, c.seed) for c in batch_configs(CHAPTER)] == [(8, 3), (8, 4), (32, 3), (32, 4), (128, 3), (128, 4)]
    assert {c.n_pairs for c in batch_configs(CHAPTER)} == {2}
    assert [c.model for c in reduced_configs(CHAPTER)] == list(MODEL_LABELS)
    assert all(c.data == "orthonormal" and c.n_pairs == 4 for c in reduced_configs(CHAPTER))
    assert coefficient_configs(CHAPTER) == reduced_configs(CHAPTER)[1:]  # one seed: they do not depend on it
    assert [(c.n_pairs, c.seed) for c in scaling_configs(CHAPTER)] == [(2, 3), (2, 4), (4, 3), (4, 4)]
    assert power_of_two_ns(4) == [2, 4]
    assert scaling_configs(CHAPTER)[-2] == reduced_configs(CHAPTER)[0]  # the comparison's full model, first seed


def test_scaling_runs_include_n_pairs_when_it_is_not_a_power_of_two_up_to_n_max_full():
    configs = scaling_configs(SimpleNamespace(**{**vars(CHAPTER), "n_pairs": 3, "n_seeds": 1}))
    assert [c.n_pairs for c in configs] == [2, 3, 4]


def test_stress_configs_cover_every_variant_at_every_n_and_seed_and_a_variant_beats_the_base():
    configs = stress_configs(CHAPTER)
    assert len(configs) == 2 * 2 * len(STRESS_VARIANTS)
    assert {c.tau_max for c in configs} == {8.0, 32.0}
    assert all(c.dim == 10 for c in configs)
    small_batch = [c for c in configs if c.variant.startswith("SGD noise")]
    assert all(c.batch_size == 16 for c in small_batch)
    assert configs[0] == replace(chapter_config(CHAPTER), n_pairs=2, variant="baseline (zero init, concatenated)")
    assert configs[1] == replace(configs[0], seed=4)


def fake_run(variant, n, t_gamma, t_beta, t_alpha, share, seed=0):
    return {"variant": variant, "n_pairs": n, "seed": seed, "T_gamma3@0.5": t_gamma, "T_beta2@0.5": t_beta,
            "T_alpha3@0.5": t_alpha, "share_inside": np.array([np.nan, share]), "loss": np.array([0.5, 0.25])}


def test_stress_summary_applies_the_survival_rules_and_tabulates_them():
    results = [
        fake_run("base", 4, 1, 2, 10, 0.95), fake_run("base", 8, 2, 4, 40, 0.95),  # slope 2
        fake_run("linear", 4, 1, 2, 10, 0.5), fake_run("linear", 8, 2, 4, 20, 0.5),  # slope 1, leaks
        fake_run("swapped", 4, 1, 20, 10, 0.95), fake_run("swapped", 8, 2, 50, math.nan, 0.95),  # never
    ]
    summary = stress_summary(results)
    rows = {row["variant"]: row for row in summary}
    assert rows["base"]["slope"] == pytest.approx(2.0)
    assert (rows["base"]["confinement"], rows["base"]["order"], rows["base"]["N-scaling"]) == (True, True, True)
    assert (rows["linear"]["confinement"], rows["linear"]["order"], rows["linear"]["N-scaling"]) == (False, True, False)
    assert (rows["swapped"]["order"], rows["swapped"]["N-scaling"]) == (False, False)
    table = stress_table(summary, [4, 8]).splitlines()
    assert table[0] == ("| variant | loss at init, at the end (N = 8) | in-subspace share | T_prev at N = 4, 8 | slope "
                        "| confinement | order | N-scaling |")
    assert table[2] == "| base | 0.50, 0.25 | 0.95 [0.95, 0.95] | 10, 40 | 2.00 [2.00, 2.00] | 1/1 | 1/1 | 1/1 |"
    assert table[4] == "| swapped | 0.50, 0.25 | 0.95 [0.95, 0.95] | 10, never | never | 1/1 | **0/1** | **0/1** |"


def test_stress_scaling_is_judged_against_the_baseline_of_the_same_seed_and_counted_over_seeds():
    results = [
        fake_run("base", 4, 1, 2, 10, 0.95, seed=0), fake_run("base", 8, 2, 4, 40, 0.95, seed=0),  # slope 2
        fake_run("base", 4, 1, 2, 10, 0.95, seed=1), fake_run("base", 8, 2, 4, 20, 0.95, seed=1),  # slope 1
        fake_run("v", 4, 1, 2, 10, 0.95, seed=0), fake_run("v", 8, 2, 4, 20, 0.85, seed=0),  # slope 1: off seed 0's 2
        fake_run("v", 4, 1, 2, 10, 0.95, seed=1), fake_run("v", 8, 2, 4, 20, 0.95, seed=1),  # slope 1: seed 1's 1
    ]
    rows = [row for row in stress_summary(results) if row["variant"] == "v"]
    assert [(row["seed"], row["N-scaling"], row["confinement"]) for row in rows] == [(0, False, False), (1, True, True)]
    assert stress_lines(stress_summary(results))[1] == "v | share ≈ 0.9 | slope ≈ 1 | confinement 1/2, order 2/2, N-scaling 1/2"



def test_a_variant_where_alpha3_cannot_emerge_is_marked_by_construction_not_failed():
    none, same = "no positional cue on labels", "label cue p_i (label position = item position)"
    assert none in BY_CONSTRUCTION and PREVIOUS_TOKEN[same] == "alpha2"
    results = [fake_run("base", 4, 1, 2, 10, 0.95), fake_run("base", 8, 2, 4, 40, 0.95),
               fake_run(none, 4, 1, 2, math.nan, 0.95), fake_run(none, 8, 2, 4, math.nan, 0.95)]
    for r in results:  # the p_i variant's times come from alpha2's trajectory
        r.update(names=["alpha2", "alpha3"], tau=np.array([0.0, 100.0]), coefficients=np.array([[0.0, 0], [1.0, 0]]))
    results += [dict(r, variant=same) for r in results[:2]]
    summary = stress_summary(results)
    table = stress_table(summary, [4, 8]).splitlines()
    assert table[3].endswith("| never, never | impossible | 1/1 | by construction | by construction |")
    assert "(T_prev: alpha2) | 0.50, 0.25 | 0.95 [0.95, 0.95] | 50, 50 |" in table[4]
    assert "alpha3 cannot emerge by construction" in stress_lines(summary)[1]


def test_without_label_positions_alpha3_never_enters_a_labels_scores():
    task = ContinuousTask(4, 10, label_cue="none")
    model = CoefficientModel(DisentangledConfig(10))
    batch = task.sample(8, "train", torch.Generator().manual_seed(1))
    scores = []
    for alpha3 in (0.0, 5.0):
        with torch.no_grad():
            model.coefficients.copy_(torch.randn(19, generator=torch.Generator().manual_seed(0)))
            model.coefficients[model.basis.index("alpha3")] = alpha3
            _, cache = model.run_with_cache(batch.tokens, names=["layer0.attn.scores"])
        scores.append(cache["layer0.attn.scores"])
    labels = slice(1, 2 * 4, 2)
    torch.testing.assert_close(scores[0][:, labels], scores[1][:, labels])  # label rows: alpha3 plays no part
    assert not torch.allclose(scores[0][:, 0::2].nan_to_num(0, 0, 0), scores[1][:, 0::2].nan_to_num(0, 0, 0))


def test_an_ensemble_member_equals_the_single_run_of_its_seed_and_members_differ():
    config = MinimalRunConfig(n_pairs=2, dim=6, tau_factor=2.0, n_evals=4, batch_size=8, init_scale=0.1)
    ensemble = run_many([replace(config, seed=s) for s in (0, 1, 2)], progress=False)
    alone = run(replace(config, seed=1), progress=False)
    assert ensemble[1]["seed"] == 1
    np.testing.assert_allclose(ensemble[1]["coefficients"], alone["coefficients"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ensemble[1]["loss"], alone["loss"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(ensemble[0]["coefficients"], ensemble[1]["coefficients"])


def test_run_many_keeps_the_order_of_configs_across_settings():
    config = MinimalRunConfig(n_pairs=2, dim=6, tau_factor=1.0, n_evals=2, batch_size=8)
    configs = [replace(config, seed=1), replace(config, batch_size=16, seed=1), replace(config, seed=2)]
    results = run_many(configs, progress=False)
    assert [(r["batch_size"], r["seed"]) for r in results] == [(8, 1), (16, 1), (8, 2)]


def test_coefficient_models_on_orthonormal_data_do_not_depend_on_the_seed():
    """Why the chapter trains the 19-coefficient and 3-parameter models at one seed only."""
    for model in ("coefficients", "three"):
        config = MinimalRunConfig(model=model, n_pairs=2, dim=6, data="orthonormal", tau_factor=2.0, n_evals=4)
        first, other = run_many([config, replace(config, seed=7)], progress=False)
        np.testing.assert_allclose(first["coefficients"], other["coefficients"], rtol=1e-4, atol=1e-6)
    full = MinimalRunConfig(n_pairs=2, dim=6, data="orthonormal", tau_factor=2.0, n_evals=4)
    first, other = run_many([full, replace(full, seed=7)], progress=False)
    assert not np.allclose(first["coefficients"], other["coefficients"], rtol=1e-4, atol=1e-6)  # the full model does


def test_readings_of_a_run_name_the_key_and_the_other_coefficients():
    names = ("alpha1", "alpha3", "beta2", "beta5", "gamma3")
    result = {"names": names, "tau": np.array([0.0, 1.0, 2.0]), "share_inside": np.array([np.nan, 0.9, 0.8]),
              "coefficients": np.array([[0, 0, 0, 0, 0], [0.2, 1, 1, -0.6, 1], [0.05, 2, 4, -0.3, 1.0]])}
    assert key_indices(result) == [1, 2, 4] and other_indices(result) == [0, 3]
    assert final_coefficients(result)["beta2"] == 4
    assert three_large_ratio(result) == pytest.approx(0.3)
    assert others_above(result, 0.1) == {"beta5": -0.3}
    assert others_first_passage(result, 0.5) == {"beta5": pytest.approx(5 / 6)}
    assert off_subspace_share(result) == pytest.approx(0.2)
