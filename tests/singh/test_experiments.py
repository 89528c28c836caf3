"""The chapter's lists of runs (from its parameters) and the summaries it prints and measures."""

import math
from dataclasses import replace

import numpy as np
import pytest

from ihcore.book.chapters import SINGH
from ihcore.singh import ClampedRunConfig, SinghSetting, experiments
from ihcore.singh.subcircuits import CONDITIONS, PHASE_CHANGE_LOSS, strongest_heads, train_baseline
from ihcore.spine.train import History

P = SINGH.parameters.validate({"n_seeds": 5})  # five seeds keep the lists below short


def history(loss, accuracy=None, **values) -> History:
    loss = np.asarray(loss, dtype=float)
    accuracy = np.full_like(loss, 0.5) if accuracy is None else np.asarray(accuracy, dtype=float)
    values = {"loss/train": loss, **{f"accuracy/{s}": accuracy for s in ("train", "relabel", "in_context")}, **values}
    return History(eval_steps=np.arange(len(loss)) * 10, values=values, train_loss=loss)


def test_the_chapter_defaults_are_the_studys_dataclass_defaults():
    assert experiments.baseline_setting(P) == SinghSetting()
    assert experiments.chapter_seeds(P) == [0, 1, 2, 3, 4]
    assert SINGH.parameters.validate({}).n_seeds == experiments.QUICK_N_SEEDS == 10
    assert experiments.at_scale(SINGH.parameters.validate({"scale": "paper"})).n_seeds == 5  # the shipped seeds
    configs = experiments.clamp_configs(P, {"previous_token_head": 0, "induction_head": 0})
    assert {c.steps for c in configs if c.condition == "none"} == {ClampedRunConfig.steps}
    assert {(c.steps, c.eval_every) for c in configs if c.condition != "none"} == {(P.sweep_steps, P.sweep_steps // 40)}
    assert [c.init_scale for c in experiments.toy_configs(P)] == [0.1] * 3 * P.n_seeds


def test_clamp_and_data_configs_give_each_seed_its_own_heads():
    heads = {"previous_token_head": [6, 5, 4, 3, 2], "induction_head": [2, 3, 4, 5, 6]}
    clamp = experiments.clamp_configs(P, heads)
    assert [c.condition for c in clamp[::P.n_seeds]] == list(experiments.CLAMP_CONDITIONS)
    assert "1 (PT attention)" not in experiments.CLAMP_CONDITIONS and len(clamp) == 5 * P.n_seeds
    for k in range(P.n_seeds):
        assert {(c.seed, c.previous_token_head, c.active_head) for c in clamp[k::P.n_seeds]} == {(k, 6 - k, 2 + k)}
    data = experiments.data_configs(P, heads)
    assert [(c.n_classes, c.n_labels, c.condition) for c in data[::P.n_seeds]] == [
        (200, 5, experiments.DATA_SWEEP_COLUMNS["only B"]), (50, 15, experiments.DATA_SWEEP_COLUMNS["only C"])]
    assert [(c.seed, c.active_head) for c in data[:P.n_seeds]] == [(k, 2 + k) for k in range(P.n_seeds)]
    assert {c.eval_every for c in data} == {P.sweep_steps // 40}
    # a base cell of the data sweep is the clamp sweep's run of the same condition
    base = experiments.clamped_run(P, experiments.DATA_SWEEP_COLUMNS["only B"], 0, 6, 2)
    assert base in clamp
    with pytest.raises(ValueError, match="3 heads for 5 seeds"):
        experiments.clamp_configs(P, {"previous_token_head": [0, 1, 2], "induction_head": 0})


def test_baseline_heads_are_each_seeds_own_strongest_heads():
    p = SINGH.parameters.validate({"steps": 10, "eval_every": 5, "n_heads": 2, "d_model": 8, "item_dim": 8,
                                   "n_classes": 4, "slow_steps": 10, "clamp_steps": 10, "sweep_steps": 10,
                                   "sweep_classes": 5, "sweep_labels": 6, "n_seeds": 3, "seed": 7})
    heads = experiments.baseline_heads(p)
    alone = [strongest_heads(train_baseline(replace(experiments.baseline_setting(p), seed=seed), progress=False)[2])
             for seed in (7, 8, 9)]
    assert heads == {name: [h[name] for h in alone] for name in ("previous_token_head", "induction_head")}
    assert experiments.baseline_heads(p) == heads


def test_baseline_summary_reads_plateau_and_phase_change_off_the_loss():
    ln2 = math.log(2)
    loss = [1.6, ln2, ln2, ln2, ln2, ln2, ln2, 0.8 * ln2, 0.3 * ln2, 0.1]
    summary = experiments.baseline_summary(history(loss, accuracy=[0.2] + [0.5] * 7 + [0.9, 1.0]), steps=90)
    assert summary["leaves_plateau"] == 70 and summary["phase_change"] == 80
    assert summary["drop_fraction"] == pytest.approx(10 / 80)
    assert summary["plateau_accuracy"] == 0.5 and summary["final_accuracy"] == {"train": 1.0, "relabel": 1.0, "in_context": 1.0}
    assert math.isnan(experiments.baseline_summary(history([1.0, 0.9]), steps=10)["drop_fraction"])


def test_head_summary_counts_induction_heads_over_the_threshold():
    scores = np.zeros((2, 2, 3))
    scores[-1, 1] = [0.2, 0.9, 0.35]
    pt = np.zeros((2, 2, 3))
    pt[-1, 0] = [0.1, 0.0, 0.8]
    summary = experiments.head_summary(history([1.0, 0.5], induction_score=scores, previous_token_score=pt))
    assert summary["n_induction_heads"] == 2 and summary["induction_head"] == 1 and summary["previous_token_head"] == 2


def test_ablation_and_wiring_summaries():
    ablated = {"removed": np.array([[0.0, 0.0, 0.0], [0.97, 0.9, 0.99]]), "only": np.array([[0, 0, 0], [0.85, 0.5, 0.8]])}
    summary = experiments.ablation_summary(ablated, full_accuracy=0.99)
    assert summary["n_sufficient"] == 2 and summary["largest_drop"] == pytest.approx(0.09)
    accuracy = np.array([[0.9, 0.8, 0.5], [0.5, 0.9, 0.5], [0.5, 0.5, 0.5]])  # (layer-1 head, layer-0 head)
    assert experiments.wiring_summary(accuracy) == {"useful_sources": 2, "most_sources_per_target": 2, "many_to_many": 2}


def test_clamp_summary_is_per_seed_and_counts_a_run_without_phase_change_as_infinitely_late():
    times = {"none": [400, None], "1,2 (layer 0: A)": [200, 100], "1,2,3qk,4 (match: A+B)": [50, None],
             "3v,5 (copy: C)": [100, 100], "1,2,3v,5 (layer 0 + copy: A+C)": [None, 20]}
    runs = [{"condition": c, "seed": seed, "phase_change": t[k]} for c, t in times.items() for k, seed in enumerate((3, 4))]
    summary = experiments.clamp_summary(runs[::-1], seeds=[3, 4])  # order of the runs does not matter
    assert list(summary["speed_up"]["1,2 (layer 0: A)"]) == [2.0, np.inf]
    assert list(summary["speed_up"]["1,2,3v,5 (layer 0 + copy: A+C)"]) == [0.0, np.inf]
    assert list(summary["two_clamps"]) == [np.inf, np.inf] and list(summary["unclamped"]) == [400.0, np.inf]
    assert experiments.ratio(np.inf, np.inf, 0.0) == 0.0 and experiments.ratio(np.inf, np.inf, np.inf) == np.inf


def test_data_dependence_ratios_compare_each_seeds_runs_within_a_column():
    only_b, only_c = experiments.DATA_SWEEP_COLUMNS["only B"], experiments.DATA_SWEEP_COLUMNS["only C"]
    seeds = experiments.chapter_seeds(P)
    clamp_runs = [{"condition": c, "seed": s, "phase_change": t} for c, t in ((only_b, 10), (only_c, 20), ("none", 90))
                  for s in seeds]
    data_runs = [{"n_classes": P.sweep_classes, "n_labels": P.n_labels, "condition": only_b, "seed": s, "phase_change": 10 * (s + 1)}
                 for s in seeds]
    data_runs += [{"n_classes": P.n_classes, "n_labels": P.sweep_labels, "condition": only_c, "seed": s,
                   "phase_change": None if s == 0 else 30} for s in seeds]
    summary = experiments.data_dependence(clamp_runs, data_runs, P)
    assert list(summary["classes_ratio"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert list(summary["labels_ratio"]) == [np.inf, 1.5, 1.5, 1.5, 1.5]
    assert list(summary["times"]["only B, 50 classes, 5 labels"]) == [10 * P.batch_size] * 5


def test_phase_change_spread_rows():
    rows = experiments.phase_change_spread([100, 200, None], [{"phase_change": 300}] * 3, P)
    assert list(rows) == ["2 layers, d_model 64, 3 seeds", "3 layers", "d_model 32", "d_model 128"]
    assert list(rows["2 layers, d_model 64, 3 seeds"]) == [100 * 32, 200 * 32, np.inf]
    assert list(rows["d_model 128"]) == [300 * 32]
    two_seeds = [{"phase_change": t} for t in (1, 2, 3, None, 5, 6)]  # variant-major, two seeds each
    rows = experiments.phase_change_spread([100], two_seeds, P)
    assert list(rows["d_model 32"]) == [3 * 32, np.inf] and list(rows["d_model 128"]) == [5 * 32, 6 * 32]


def test_by_variant_splits_variant_major_runs_and_refuses_an_uneven_list():
    variants = {"a": {}, "b": {}}
    assert experiments.by_variant(variants, [1, 2, 3, 4]) == {"a": [1, 2], "b": [3, 4]}
    with pytest.raises(ValueError, match="3 runs do not split evenly over 2 variants"):
        experiments.by_variant(variants, [1, 2, 3])


def test_data_dependence_on_the_paper_grid_reads_the_claims_cells_and_keeps_the_others():
    paper = SINGH.parameters.validate({"scale": "paper"})
    seeds = experiments.chapter_seeds(paper)
    columns = experiments.DATA_SWEEP_COLUMNS
    clamp_runs = [{"condition": c, "seed": s, "phase_change": 100} for c in columns.values() for s in seeds]
    data_runs = [{"n_classes": classes, "n_labels": labels, "condition": columns[column], "seed": s,
                  "phase_change": classes + labels} for column, classes, labels in experiments.data_cells(paper).values()
                 for s in seeds]
    summary = experiments.data_dependence(clamp_runs, data_runs, paper)
    assert list(summary["times"])[:3] == ["only B, 50 classes, 5 labels", "only B, 100 classes, 5 labels",
                                         "only B, 200 classes, 5 labels"]
    assert len(summary["times"]) == 20  # 4 columns x (base + 4 cells)
    assert list(summary["classes_ratio"]) == [205 / 100] * 5  # only B at 200 classes / at 50
    assert list(summary["labels_ratio"]) == [65 / 100] * 5  # only C at 15 labels / at 5
    assert list(summary["times"]["only C, 50 classes, 10 labels"]) == [60 * 32] * 5
    shifts = experiments.grid_shifts(summary)  # the largest value of each axis / the base, per column
    assert list(shifts)[:4] == ["only B, 200 / 50 classes", "only B, 15 / 5 labels", "only C, 200 / 50 classes",
                                "only C, 15 / 5 labels"] and len(shifts) == 8
    assert list(shifts["only C, 15 / 5 labels"]) == list(summary["labels_ratio"])
    assert list(shifts["only B, 15 / 5 labels"]) == [65 / 100] * 5


def test_heads_by_seed_keeps_each_seeds_choice():
    def scores(strongest):
        values = np.zeros((1, 2, 3))
        values[-1, :, strongest] = 1.0
        return values
    histories = [history([1.0], previous_token_score=scores(a), induction_score=scores(b)) for a, b in ((0, 2), (1, 0))]
    assert experiments.heads_by_seed(histories) == {"previous_token_head": [0, 1], "induction_head": [2, 0]}


def test_unclamped_summary_reads_both_crossings_in_sequences_and_censors_a_run_without_them():
    plateau = experiments.PLATEAU_LOSS
    runs = [{"eval_steps": [0, 10, 20], "loss": [1.0, 0.8 * plateau, 0.3 * plateau], "phase_change": 20, "steps": 20},
            {"eval_steps": [0, 10, 20], "loss": [1.0, plateau, plateau], "phase_change": None, "steps": 20}]
    summary = experiments.unclamped_summary(runs, batch_size=32)
    assert list(summary["phase_change"]) == [20 * 32, np.inf]
    assert list(summary["leaves_plateau"]) == [10 * 32, np.inf] and summary["budget"] == 20 * 32


def test_single_head_times_are_by_head_then_seed_whatever_the_run_order():
    runs = [{"active_head": h, "seed": s, "phase_change": None if h == 1 else 10 * h + s} for s in (3, 4) for h in (0, 1)]
    times = experiments.single_head_times(runs, seeds=[3, 4], n_heads=2)
    assert times.tolist() == [[3.0, 4.0], [np.inf, np.inf]]


def test_grid_shifts_have_no_ratio_where_neither_run_changes_phase():
    dependence = {"cells": {"unclamped, 50 classes, 5 labels": ("unclamped", 50, 5),
                            "unclamped, 200 classes, 5 labels": ("unclamped", 200, 5)},
                  "times": {"unclamped, 50 classes, 5 labels": np.array([np.inf, 100.0]),
                            "unclamped, 200 classes, 5 labels": np.array([np.inf, 300.0])}}
    shift = experiments.grid_shifts(dependence)["unclamped, 200 / 50 classes"]
    assert np.isnan(shift[0]) and shift[1] == 3.0


def test_evaluation_clamp_times_are_first_crossings_in_sequences_and_inf_without_one():
    low, high = PHASE_CHANGE_LOSS - 0.1, PHASE_CHANGE_LOSS + 0.1
    run = {"eval_steps": np.array([0, 5, 10, 15]), "loss/train": np.array([high, high, low, low]),
           "checkpoint_steps": np.array([0, 10]),
           **{f"clamped/{c}": np.array([high, low]) for c in CONDITIONS}}
    never = {**run, "loss/train": np.full(4, high), **{f"clamped/{c}": np.array([high, high]) for c in CONDITIONS}}
    times = experiments.evaluation_clamp_times([run, never], batch_size=32)
    assert times["training"].tolist() == [320.0, np.inf]
    assert set(times) == {"training", *CONDITIONS}
    assert all(times[c].tolist() == [320.0, np.inf] for c in CONDITIONS)
