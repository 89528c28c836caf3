"""The Singh chapter's experiments: its lists of runs built from the chapter's parameters, and their summaries.

Every builder takes the chapter's validated parameters ``p`` (a namespace with the fields of
:class:`~ihcore.singh.subcircuits.SinghSetting` that the chapter exposes, plus its own
experiment sizes) and returns run configurations; the book's sweep registry pairs each with
its ``run``. The clamp and data-dependence runs need the heads of the trained baseline
(:func:`baseline_heads`, their sweeps' preparation). The summaries turn results into the
numbers the chapter prints and its claims ledger measures.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from ihcore.singh.subcircuits import (
    CONDITIONS, PHASE_CHANGE_LOSS, PLATEAU_LOSS, BASELINE_SPLITS, ClampedRunConfig, SinghSetting,
    phase_change_or_censored, strongest_heads, train_baseline,
)
from ihcore.singh.toy_model import ToyConfig
from ihcore.spine import measures
from ihcore.spine.curves import first_step_below

# The SinghSetting fields the chapter exposes as parameters (every run takes them from ``p``).
CHAPTER_FIELDS = ("n_classes", "n_labels", "item_dim", "prototypes", "n_heads", "d_model", "lr", "batch_size",
                  "eval_every", "seed")

# The data-dependence sweep (Singh et al., Fig 6): what each column leaves to learn -> the clamp condition.
DATA_SWEEP_COLUMNS = {"only B": "1,2,3v,5 (layer 0 + copy: A+C)", "only C": "1,2,3qk,4 (match: A+B)",
                      "B and C": "1,2 (layer 0: A)"}
TOY_CONDITIONS = ("", "c", "bc")  # factors clamped (Singh et al., Fig 5a)


def chapter_config(p, config_class: type = ClampedRunConfig, **changes):
    """A ``config_class`` (:class:`SinghSetting` or :class:`ClampedRunConfig`) with the chapter's
    values of :data:`CHAPTER_FIELDS`, then ``changes``."""
    return config_class(**{**{name: getattr(p, name) for name in CHAPTER_FIELDS}, **changes})


def baseline_setting(p) -> SinghSetting:
    """The chapter's unclamped baseline (``p.steps`` steps)."""
    return chapter_config(p, SinghSetting, steps=p.steps)


@functools.lru_cache(maxsize=8)
def _heads_of(setting: SinghSetting) -> tuple[tuple[str, int], ...]:
    return tuple(strongest_heads(train_baseline(setting, progress=False)[2]).items())


def baseline_heads(p) -> dict[str, int]:
    """:func:`~ihcore.singh.subcircuits.strongest_heads` of the chapter's baseline, trained
    without a progress bar (once per setting in a process: both clamp sweeps need it)."""
    return dict(_heads_of(baseline_setting(p)))


def unclamped(p, **changes) -> ClampedRunConfig:
    """An unclamped run with every head active, ``p.steps`` steps unless ``changes`` say otherwise."""
    return chapter_config(p, **{"condition": "none", "active_head": None, "steps": p.steps, **changes})


def setting_configs(p) -> list[ClampedRunConfig]:
    """The baseline at the slower ``p.slow_lr`` for ``p.slow_steps``, and with isotropic prototypes."""
    return [unclamped(p, lr=p.slow_lr, steps=p.slow_steps), unclamped(p, prototypes="isotropic")]


def seed_configs(p) -> list[ClampedRunConfig]:
    """The baseline at the ``p.n_extra_seeds`` seeds after the chapter's (beyond the paper)."""
    return [unclamped(p, seed=p.seed + k) for k in range(1, p.n_extra_seeds + 1)]


def model_variants(p) -> dict[str, dict]:
    """Name -> changed fields of the other models timed beside the baseline (beyond the paper)."""
    return {"3 layers": {"n_layers": 3}, f"d_model {p.d_model // 2}": {"d_model": p.d_model // 2},
            f"d_model {2 * p.d_model}": {"d_model": 2 * p.d_model}}


def model_variant_configs(p) -> list[ClampedRunConfig]:
    """The baseline as each model of :func:`model_variants`."""
    return [unclamped(p, **change) for change in model_variants(p).values()]


def clamp_configs(p, heads: Mapping[str, int]) -> list[ClampedRunConfig]:
    """One run per condition of :data:`CONDITIONS` (Singh et al., Fig 5b), ``p.clamp_steps`` steps,
    with the baseline's strongest heads (``heads``: :func:`baseline_heads`)."""
    return [chapter_config(p, condition=condition, steps=p.clamp_steps,
                           previous_token_head=heads["previous_token_head"], active_head=heads["induction_head"])
            for condition in CONDITIONS]


def data_sweep_rows(p) -> dict[str, tuple[int, int]]:
    """Row label -> (classes, labels) of the data-dependence sweep (Singh et al., Fig 6, cut to two values each)."""
    return {f"{p.n_classes} classes, {p.n_labels} labels": (p.n_classes, p.n_labels),
            f"{p.sweep_classes} classes, {p.n_labels} labels": (p.sweep_classes, p.n_labels),
            f"{p.n_classes} classes, {p.sweep_labels} labels": (p.n_classes, p.sweep_labels)}


def data_configs(p, heads: Mapping[str, int]) -> list[ClampedRunConfig]:
    """The data-dependence runs, row-major over :func:`data_sweep_rows` x :data:`DATA_SWEEP_COLUMNS`,
    with the baseline's strongest induction head; evaluations every sweep_steps // 40 steps (the
    phase changes come early)."""
    return [chapter_config(p, n_classes=classes, n_labels=labels, eval_every=max(1, p.sweep_steps // 40),
                           condition=condition, steps=p.sweep_steps, active_head=heads["induction_head"])
            for classes, labels in data_sweep_rows(p).values() for condition in DATA_SWEEP_COLUMNS.values()]


def toy_configs(p) -> list[ToyConfig]:
    """The toy model under each of :data:`TOY_CONDITIONS`, at ``p.toy_init_scale``."""
    return [ToyConfig(init_scale=p.toy_init_scale, clamped=clamped, seed=p.seed) for clamped in TOY_CONDITIONS]


# --- Summaries ---------------------------------------------------------------------------------


def baseline_summary(history, steps: int) -> dict:
    """The baseline's phase change (loss below 0.4 ln 2) and plateau.

    ``leaves_plateau``: first step with loss below 0.9 ln 2; ``drop_fraction``: steps from
    there to the phase change as a fraction of the phase-change time (NaN without a phase
    change); ``plateau_accuracy``: median training-class accuracy over the middle half of the
    run before the phase change (of all ``steps`` without one); ``final_accuracy`` by split.
    """
    loss = history["loss/train"]
    phase_change = first_step_below(history.eval_steps, loss, PHASE_CHANGE_LOSS)
    leaves_plateau = first_step_below(history.eval_steps, loss, 0.9 * PLATEAU_LOSS)
    return {
        "phase_change": phase_change,
        "leaves_plateau": leaves_plateau,
        "drop_fraction": (phase_change - leaves_plateau) / phase_change if phase_change else float("nan"),
        "plateau_accuracy": measures.plateau_median(history.eval_steps, history["accuracy/train"], phase_change or steps),
        "final_accuracy": {s: round(float(history[f"accuracy/{s}"][-1]), 2) for s in BASELINE_SPLITS},
    }


def head_summary(history, threshold: float = 0.3) -> dict:
    """Final scores: ``previous_token`` (layer 0) and ``induction`` (layer 1) per head, the strongest
    of each, and ``n_induction_heads`` (layer-1 heads with induction score >= ``threshold``)."""
    final_ih = history["induction_score"][-1, 1]
    return {"previous_token": history["previous_token_score"][-1, 0], "induction": final_ih,
            **strongest_heads(history), "n_induction_heads": int((final_ih >= threshold).sum())}


def ablation_summary(ablated: Mapping[str, np.ndarray], full_accuracy: float, threshold: float = 0.8) -> dict:
    """Final single-head ablations (``ablated``: accuracies over checkpoints, (C, H), by ``removed``/``only``):
    ``n_sufficient`` heads that alone give accuracy >= ``threshold``, ``largest_drop`` from removing one."""
    final_removed, final_only = ablated["removed"][-1], ablated["only"][-1]
    return {"removed": final_removed, "only": final_only, "n_sufficient": int((final_only >= threshold).sum()),
            "largest_drop": float(full_accuracy - final_removed.min())}


def wiring_summary(accuracy: np.ndarray, threshold: float = 0.75) -> dict:
    """Many-to-many wiring from ``accuracy`` (layer-1 head, layer-0 head) with only that pair active.

    A pair is wired if its accuracy is >= ``threshold`` (chance among the two context labels:
    0.5). ``useful_sources``: layer-0 heads wired to some layer-1 head; ``most_sources_per_target``:
    most layer-0 heads wired to one layer-1 head; ``many_to_many``: the smaller of the two.
    """
    wired = accuracy >= threshold
    useful_sources, most_sources = int(wired.any(axis=0).sum()), int(wired.sum(axis=1).max())
    return {"useful_sources": useful_sources, "most_sources_per_target": most_sources,
            "many_to_many": min(useful_sources, most_sources)}


def clamp_summary(runs: Sequence[dict]) -> dict:
    """Phase-change ``times`` by condition (inf: none), ``speed_up`` = unclamped time / each, and
    ``two_clamps`` = the later of the A+B and A+C runs / unclamped."""
    times = {run["condition"]: phase_change_or_censored(run) for run in runs}
    unclamped_time = times["none"]
    return {"times": times, "unclamped": unclamped_time,
            "speed_up": {condition: unclamped_time / time for condition, time in times.items()},
            "two_clamps": max(times["1,2,3qk,4 (match: A+B)"], times["1,2,3v,5 (layer 0 + copy: A+C)"]) / unclamped_time}


def data_dependence(runs: Sequence[dict], p) -> dict:
    """The data-dependence grid: ``times`` (rows, columns) in sequences seen (inf: none), and the ratios
    ``labels_ratio`` (only C: more labels / fewer) and ``classes_ratio`` (only B: more classes / fewer)."""
    rows, columns = data_sweep_rows(p), list(DATA_SWEEP_COLUMNS)
    times = np.array([phase_change_or_censored(run) for run in runs]).reshape(len(rows), len(columns)) * p.batch_size
    return {"rows": list(rows), "columns": columns, "times": times,
            "labels_ratio": times[2, columns.index("only C")] / times[0, columns.index("only C")],
            "classes_ratio": times[1, columns.index("only B")] / times[0, columns.index("only B")]}


def phase_change_spread(phase_change: int | None, seed_runs: Sequence[dict], variant_runs: Sequence[dict], p) -> dict:
    """Row name -> phase-change times (sequences seen, inf: none): the chapter's seed then the extra
    seeds, then each model of :func:`model_variants`."""
    times = np.array([phase_change or np.inf] + [phase_change_or_censored(run) for run in seed_runs]) * p.batch_size
    rows = {f"2 layers, d_model {p.d_model}, {len(times)} seeds": times}
    rows.update({name: np.array([phase_change_or_censored(run) * p.batch_size])
                 for name, run in zip(model_variants(p), variant_runs)})
    return rows
