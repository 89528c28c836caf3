"""The shipped paper-scale results load, and were made at Singh et al.'s own settings."""

import pytest

from ihcore.book.sweep_registry import SWEEPS
from ihcore.book.sweeps import SHIPPED_DIR, load_shipped
from ihcore.singh import experiments

SHIPPED = sorted(SHIPPED_DIR.glob("singh-*.json"))
# what every paper-scale run shares, whichever sweep varies the rest
COMMON = {"lr": 1e-5, "batch_size": 32, "n_heads": 8, "d_model": 64}
VARIANTS = {"singh-settings": experiments.setting_variants, "singh-models": experiments.model_variants}


def paper_parameters(name):
    return SWEEPS[name].parameters({"scale": "paper"})


def test_the_paper_scale_baseline_is_shipped():
    assert SHIPPED_DIR / "singh-baseline.json" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_results_are_the_sweeps_configurations_at_the_paper_preset(path):
    shipped = load_shipped(path.stem, paper_parameters(path.stem))  # ValueError if not the sweep's configurations
    assert shipped["parameters"]["scale"] == "paper" and shipped["runs"]
    variants = VARIANTS.get(path.stem, lambda p: {"": {}})(paper_parameters(path.stem))
    for change, runs in zip(variants.values(), experiments.by_variant(variants, shipped["runs"]).values()):
        expected = {**COMMON, **{name: value for name, value in change.items() if name in COMMON}}
        for run in runs:  # the preset, except what a labelled variant changes
            assert {name: run["config"][name] for name in COMMON} == expected
    assert shipped["provenance"]["cpus"] and shipped["provenance"]["wall_s"] > 0


@pytest.mark.skipif(SHIPPED_DIR / "singh-baseline.json" not in SHIPPED, reason="the paper-scale baseline is not shipped")
def test_shipped_baseline_is_the_paper_preset_at_five_seeds_for_a_million_sequences():
    shipped = load_shipped("singh-baseline", paper_parameters("singh-baseline"))
    preset = {name: experiments.PAPER_SCALE[name] for name in
              ("n_classes", "n_labels", "item_dim", "prototypes", "positional", "layer_norm", "steps", "eval_every")}
    assert [run["config"]["seed"] for run in shipped["runs"]] == [0, 1, 2, 3, 4]
    for run in shipped["runs"]:
        assert {name: run["config"][name] for name in preset} == preset
        assert run["config"]["steps"] * run["config"]["batch_size"] == 1_000_000
        assert run["result"]["eval_steps"][-1] == run["config"]["steps"]
