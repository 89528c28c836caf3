"""The chapter's lists of runs (from its parameters) and the summaries it prints and measures."""

import math

import numpy as np
import pytest

from ihcore.book.chapters import SINGH
from ihcore.singh import ClampedRunConfig, SinghSetting, experiments
from ihcore.singh.subcircuits import CONDITIONS
from ihcore.spine.train import History

P = SINGH.parameters.validate({})


def history(loss, accuracy=None, **values) -> History:
    loss = np.asarray(loss, dtype=float)
    accuracy = np.full_like(loss, 0.5) if accuracy is None else np.asarray(accuracy, dtype=float)
    values = {"loss/train": loss, **{f"accuracy/{s}": accuracy for s in ("train", "relabel", "in_context")}, **values}
    return History(eval_steps=np.arange(len(loss)) * 10, values=values, train_loss=loss)


def test_the_chapter_defaults_are_the_studys_dataclass_defaults():
    assert experiments.baseline_setting(P) == SinghSetting()
    assert all(c.steps == ClampedRunConfig.steps for c in experiments.clamp_configs(P, {"previous_token_head": 0,
                                                                                      "induction_head": 0}))
    assert [c.init_scale for c in experiments.toy_configs(P)] == [0.1] * 3


def test_clamp_and_data_configs_use_the_baselines_heads():
    heads = {"previous_token_head": 6, "induction_head": 2}
    clamp = experiments.clamp_configs(P, heads)
    assert [c.condition for c in clamp] == list(CONDITIONS)
    assert {(c.previous_token_head, c.active_head) for c in clamp} == {(6, 2)}
    data = experiments.data_configs(P, heads)
    assert len(data) == 9 and {c.active_head for c in data} == {2}
    assert [(c.n_classes, c.n_labels) for c in data[::3]] == [(50, 5), (200, 5), (50, 15)]
    assert {c.eval_every for c in data} == {P.sweep_steps // 40}


def test_baseline_heads_are_the_strongest_heads_of_the_trained_baseline():
    p = SINGH.parameters.validate({"steps": 10, "eval_every": 5, "n_heads": 2, "d_model": 8, "item_dim": 8,
                                   "n_classes": 4, "slow_steps": 10, "clamp_steps": 10, "sweep_steps": 10,
                                   "sweep_classes": 5, "sweep_labels": 6})
    heads = experiments.baseline_heads(p)
    assert set(heads) == {"previous_token_head", "induction_head"} and all(0 <= h < 2 for h in heads.values())
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


def test_clamp_summary_counts_a_run_without_phase_change_as_infinitely_late():
    times = dict(zip(CONDITIONS, [400, 300, 200, 50, 100, None]))
    summary = experiments.clamp_summary([{"condition": c, "phase_change": t} for c, t in times.items()])
    assert summary["speed_up"]["1,2 (layer 0: A)"] == 2.0 and summary["speed_up"]["1,2,3v,5 (layer 0 + copy: A+C)"] == 0
    assert summary["two_clamps"] == np.inf and summary["unclamped"] == 400.0


def test_data_dependence_ratios_compare_rows_within_a_column():
    phase_changes = [10, 20, 30,  # base row: only B, only C, B and C
                     40, 20, 30,  # more classes
                     10, 60, None]  # more labels
    summary = experiments.data_dependence([{"phase_change": t} for t in phase_changes], P)
    assert summary["times"].shape == (3, 3) and summary["times"][0, 0] == 10 * P.batch_size
    assert summary["labels_ratio"] == 3.0 and summary["classes_ratio"] == 4.0 and summary["times"][2, 2] == np.inf


def test_phase_change_spread_rows():
    rows = experiments.phase_change_spread(100, [{"phase_change": 200}, {"phase_change": None}],
                                           [{"phase_change": 300}] * 3, P)
    assert list(rows) == ["2 layers, d_model 64, 3 seeds", "3 layers", "d_model 32", "d_model 128"]
    assert list(rows["2 layers, d_model 64, 3 seeds"]) == [100 * 32, 200 * 32, np.inf]
    assert list(rows["d_model 128"]) == [300 * 32]
