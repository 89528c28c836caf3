"""The two scales: quick is the chapter's knobs, paper is Singh et al.'s own settings; the baseline sweep's run."""

import dataclasses

import numpy as np
import pytest

from ihcore.book.chapters import SINGH
from ihcore.book.sweep_registry import SWEEPS
from ihcore.singh import SinghSetting, baseline, experiments
from ihcore.singh.subcircuits import task_and_model

P = SINGH.parameters.validate({})
PAPER = SINGH.parameters.validate({"scale": "paper"})
PAPER_STEPS = 31_250  # 1e6 sequences
PAPER_SETTINGS = {"lr": 1e-5, "batch_size": 32, "d_model": 64, "n_heads": 8, "n_labels": 5, "n_classes": 50,
                  "item_dim": 512, "prototypes": "lowrank", "positional": "rotary", "layer_norm": True, "n_layers": 2}


def test_quick_scale_is_the_chapters_knobs():
    assert P.scale == "quick" and experiments.at_scale(P) is P
    assert experiments.baseline_setting(P) == SinghSetting()
    assert SinghSetting().positional == "learned" and not SinghSetting().layer_norm


def test_paper_scale_baseline_is_the_papers_settings_at_five_seeds():
    configs = SWEEPS["singh-baseline"].configs(PAPER)
    assert [c.seed for c in configs] == [0, 1, 2, 3, 4]
    for config in configs:
        assert {name: getattr(config, name) for name in PAPER_SETTINGS} == PAPER_SETTINGS
        assert config.steps * config.batch_size == 1_000_000  # the paper's 1e6 sequences


def test_paper_scale_sets_the_preset_whatever_the_knobs_say():
    p = SINGH.parameters.validate({"scale": "paper", "lr": 3e-3, "item_dim": 64, "positional": "learned"})
    assert experiments.baseline_setting(p) == experiments.baseline_setting(PAPER)


def test_paper_scale_clamp_runs_see_six_hundred_thousand_sequences_with_each_seeds_heads():
    heads = {"previous_token_head": [1, 2, 3, 4, 5], "induction_head": [5, 4, 3, 2, 1]}
    configs = SWEEPS["singh-clamps"].build(PAPER, heads)
    assert {c.steps * c.batch_size for c in configs} == {600_000}
    assert all({name: getattr(c, name) for name in PAPER_SETTINGS} == PAPER_SETTINGS for c in configs)
    assert [c.active_head for c in configs[:5]] == [5, 4, 3, 2, 1]


def test_paper_scale_settings_sweep_changes_architecture_features_and_rate_one_at_a_time_at_every_seed():
    configs = SWEEPS["singh-settings"].configs(PAPER)
    runs = experiments.by_variant(experiments.setting_variants(PAPER), configs)
    assert list(runs) == ["learned positions, no LayerNorm", "isotropic prototypes", "lr 3e-05"]
    baseline = experiments.unclamped(PAPER)  # every head, the baseline's steps
    for name, changed in (("learned positions, no LayerNorm", {"positional", "layer_norm"}),
                          ("isotropic prototypes", {"prototypes"}), ("lr 3e-05", {"lr"})):
        assert [c.seed for c in runs[name]] == experiments.chapter_seeds(PAPER)
        for config in runs[name]:  # the unclamped baseline of that seed with only the named fields changed
            differs = {f.name for f in dataclasses.fields(config)
                       if getattr(config, f.name) != getattr(dataclasses.replace(baseline, seed=config.seed), f.name)}
            assert differs == changed and config.active_head is None and config.steps == PAPER_STEPS
    assert runs["lr 3e-05"][0].lr == experiments.PAPER_VARIANT_LR == pytest.approx(3 * PAPER_SETTINGS["lr"])


def test_quick_scale_settings_and_models_run_the_first_seed_only():
    assert [c.seed for c in SWEEPS["singh-settings"].configs(P)] == [P.seed] * 2
    assert [c.seed for c in SWEEPS["singh-models"].configs(P)] == [P.seed] * 3
    assert [c.seed for c in SWEEPS["singh-models"].configs(PAPER)] == experiments.chapter_seeds(PAPER) * 3


def test_paper_scale_single_head_runs_are_every_head_at_every_seed_and_reuse_the_clamp_sweeps_unclamped_run():
    heads = {"previous_token_head": [1, 2, 3, 4, 5], "induction_head": [5, 4, 3, 2, 1]}
    single = SWEEPS["singh-heads"].build(PAPER, heads)
    assert [(c.active_head, c.seed) for c in single] == [(h, s) for h in range(8) for s in range(5)]
    assert {c.condition for c in single} == {"none"} and {c.steps * c.batch_size for c in single} == {600_000}
    unclamped = [c for c in SWEEPS["singh-clamps"].build(PAPER, heads) if c.condition == "none"]
    assert all(c in single for c in unclamped)  # the same configuration: one run, two figures
    assert len(SWEEPS["singh-heads"].build(P, {"previous_token_head": 0, "induction_head": 0})) == 8  # quick: seed 0


def test_paper_scale_data_grid_runs_both_axes_for_every_column():
    cells = experiments.data_cells(PAPER)
    columns = ("only B", "only C", "B and C", "unclamped")
    assert sorted((column, classes, labels) for column, classes, labels in cells.values()) == sorted(
        [(column, classes, 5) for column in columns for classes in (100, 200)]
        + [(column, 50, labels) for column in columns for labels in (10, 15)])
    unclamped = [c for c in SWEEPS["singh-data"].build(PAPER, {"previous_token_head": 0, "induction_head": 3})
                 if c.condition == "none"]
    assert {(c.active_head, c.steps * c.batch_size) for c in unclamped} == {(3, 600_000)}  # one active head, as clamped
    assert set(experiments.data_cells(P).values()) == {("only B", 200, 5), ("only C", 50, 15)}  # quick: the claims' cells


TINY = SinghSetting(n_classes=4, n_labels=5, item_dim=8, n_heads=2, d_model=8, positional="rotary", layer_norm=True,
                    steps=6, eval_every=3, eval_batch_size=16)


def test_baseline_run_returns_curves_head_scores_and_final_measures():
    result = baseline.run(TINY, progress=False)
    assert list(result["eval_steps"]) == [0, 3, 6]
    assert result["loss/train"].shape == (3,) and result["induction_score"].shape == (3, 2, 2)
    final = result["final"]
    assert final["wiring_accuracy"].shape == (2, 2) and final["added_back"].shape == (3,)
    assert final["composition"] is None  # a LayerNorm model: composition scores do not apply
    assert set(final["paths"]) == {"removed", "pattern_preserving", "value_preserving", "both_preserving"}


def test_baseline_run_many_equals_run_at_each_seed():
    together = baseline.run_many([TINY, dataclasses.replace(TINY, seed=1)], progress=False)
    alone = baseline.run(dataclasses.replace(TINY, seed=1), progress=False)
    np.testing.assert_allclose(together[1]["loss/train"], alone["loss/train"], rtol=1e-5)


def test_group_wiring_keeps_and_removes_the_previous_token_group():
    task, model, seeds = task_and_model(TINY)
    batch = baseline.ablation_batch(task, seeds)
    wiring = baseline.group_wiring(model, batch, np.array([0.9, 0.1]))
    assert wiring["group"] == [0]
    assert wiring["leave_one_out"].shape == (2, 2)
    # keeping only the group is removing the other head; removing the group is removing head 0
    np.testing.assert_allclose(wiring["group_only"], wiring["leave_one_out"][:, 1])
    np.testing.assert_allclose(wiring["group_removed"], wiring["leave_one_out"][:, 0])
    assert baseline.group_wiring(model, batch, np.array([0.1, 0.2]))["group"] == [1]  # none over: the strongest


@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_every_singh_sweep_builds_at_both_scales(scale):
    p = SINGH.parameters.validate({"scale": scale})
    for sweep in SWEEPS.values():
        if sweep.chapter == "singh":
            assert sweep.count(p) > 0
