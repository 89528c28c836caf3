"""The unclamped baseline as a sweep's run: train, then read every end-of-training measure a figure needs.

:func:`run` trains one :class:`~ihcore.singh.subcircuits.SinghSetting` (a seed) and returns
a small dict of arrays (JSON-storable, so paper-scale baselines can be shipped as results
and read back without retraining): the loss and accuracy curves on the three evaluation
splits, both head scores of every head over training, and the final model's single-head
ablations, heads added back, pair wiring, group ablations and path ablations, on that
seed's ablation batch, and the loss under each clamp applied at evaluation over the run's
checkpoints (App. Fig 10, :func:`evaluation_clamp_curves`). :func:`run_many` trains the seeds of
one setting as one batched ensemble (:func:`ihcore.singh.subcircuits.train_settings`).

Result keys (H heads, E evaluations, C checkpoints: every second evaluation and the end): the
setting's fields; ``eval_steps`` (E,); ``loss/<split>``, ``accuracy/<split>`` (E,) for each split
of :data:`~ihcore.singh.subcircuits.BASELINE_SPLITS`; ``previous_token_score``,
``induction_score`` (E, layers, H); ``final``: the dict of :func:`final_measures`; and those of
:func:`evaluation_clamp_curves`: ``checkpoint_steps`` (C,), ``clamped/<condition>`` (C,), and the
``previous_token_head`` and ``induction_head`` the clamps used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict

import numpy as np
import torch

from ihcore.singh.subcircuits import (
    BASELINE_SPLITS,
    CONDITIONS,
    SinghSetting,
    clamped_losses,
    condition_clamp,
    strongest_heads,
    train_settings,
)
from ihcore.spine import ablations
from ihcore.spine.hooks import other_heads
from ihcore.spine.train import History, run_in_groups

PREVIOUS_TOKEN_GROUP = 0.6  # layer-0 heads with final previous-token score >= this form the previous-token group


def ablation_batch(task, seeds):
    """The fixed batch of 512 training-class sequences a seed's ablations and wiring read."""
    return task.sample(512, "train", torch.Generator().manual_seed(seeds.eval + 1))


def group_wiring(model, batch, previous_token: np.ndarray, threshold: float = PREVIOUS_TOKEN_GROUP) -> dict:
    """Group ablations of layer 0 for each layer-1 head alone (Singh et al., Table 1, on groups).

    ``group``: layer-0 heads with final previous-token score >= ``threshold`` (the strongest
    one if none is). With only layer-1 head h active: ``leave_one_out`` (H, H), accuracy with
    layer-0 head p ablated and the others kept; ``group_removed`` (H,), the whole group
    ablated; ``group_only`` (H,), only the group kept; ``all_layer0`` (H,), nothing ablated
    in layer 0. An induction head that survives the loss of any one previous-token head but
    not of the group uses several of them.
    """
    H = model.config.n_heads
    group = [int(p) for p in np.flatnonzero(previous_token >= threshold)] or [int(np.argmax(previous_token))]
    alone = {h: other_heads(H, [h]) for h in range(H)}
    leave_one_out = np.array([[ablations.accuracy_without(model, batch, {0: [p], 1: alone[h]}) for p in range(H)]
                              for h in range(H)])
    return {
        "group": group,
        "leave_one_out": leave_one_out,
        "group_removed": np.array([ablations.accuracy_without(model, batch, {0: group, 1: alone[h]}) for h in range(H)]),
        "group_only": np.array([ablations.accuracy_without(model, batch, {0: other_heads(H, group), 1: alone[h]})
                                for h in range(H)]),
        "all_layer0": np.array([ablations.accuracy_without(model, batch, {1: alone[h]}) for h in range(H)]),
    }


def final_measures(task, model, history: History, seeds) -> dict:
    """What the figures read off one seed's trained model, on its :func:`ablation_batch`:
    ``full_accuracy``; ``removed`` and ``only`` (H,), accuracy with layer-1 head h ablated /
    alone; ``added_back`` (H + 1,), layer-1 heads added back strongest induction score first;
    ``wiring_accuracy`` and ``wiring_induction`` (H, H), one head per layer active
    (:func:`ihcore.spine.ablations.wiring`); ``group``, :func:`group_wiring`; ``paths`` kind ->
    (H,), :func:`ihcore.spine.ablations.path_ablations` of each layer-0 head; ``composition``
    K/V (H, H), or None for a model with LayerNorm (the scores do not fold it in)."""
    batch = ablation_batch(task, seeds)
    single = ablations.single_head_ablations(model, batch, layer=1)
    final_induction, final_previous = history["induction_score"][-1, 1], history["previous_token_score"][-1, 0]
    wiring = ablations.wiring(model, batch)
    return {
        "full_accuracy": ablations.accuracy_without(model, batch, {}),
        "removed": single["removed"], "only": single["only"],
        "added_back": ablations.heads_added_back(model, batch, 1, [int(h) for h in np.argsort(-final_induction)]),
        "wiring_accuracy": wiring["accuracy"], "wiring_induction": wiring["induction_score"],
        "group": group_wiring(model, batch, final_previous),
        "paths": ablations.path_ablations(model, batch),
        "composition": None if model.config.layer_norm else ablations.composition_scores(model),
    }


def evaluation_clamp_curves(task, model, history: History, seeds) -> dict:
    """Singh et al.'s App. Fig 10 for one trained baseline: the loss under each clamp of
    :data:`~ihcore.singh.subcircuits.CONDITIONS` applied at evaluation only
    (:func:`~ihcore.singh.subcircuits.clamped_losses`), at each of the run's checkpoints, on the
    seed's :func:`ablation_batch`, with the final model's strongest heads (the clamps keep only
    its strongest induction head). Returns ``checkpoint_steps`` (C,), ``clamped/<condition>`` (C,)
    and the two heads; ``model`` is left holding its last checkpoint (the trained model)."""
    heads = strongest_heads(history)
    by_condition = {condition: condition_clamp(condition, model, heads["previous_token_head"], heads["induction_head"])
                    for condition in CONDITIONS}
    measure, batch = clamped_losses(task, "train", by_condition), ablation_batch(task, seeds)
    steps, losses = ablations.over_checkpoints(model, history.checkpoints, lambda m: measure(m, {"train": batch}))
    return {"checkpoint_steps": steps, **{f"clamped/{c}": losses[f"loss/train/{c}"] for c in CONDITIONS}, **heads}


def _result(config: SinghSetting, task, model, history: History, seeds) -> dict:
    curves = {name: history[name] for split in BASELINE_SPLITS for name in (f"loss/{split}", f"accuracy/{split}")}
    final = final_measures(task, model, history, seeds)
    return {**asdict(config), "eval_steps": history.eval_steps, **curves,
            "previous_token_score": history["previous_token_score"], "induction_score": history["induction_score"],
            "final": final, **evaluation_clamp_curves(task, model, history, seeds)}


def run_many(configs, *, device: str | torch.device | None = None, progress: bool | None = None) -> list[dict]:
    """:func:`run` of every config; configs that differ only in seed train as one batched ensemble."""
    def run_group(group: list[SinghSetting]) -> list[dict]:
        trained = train_settings(group, checkpoints=True, device=device, progress=progress)
        return [_result(config, task, model, history, seeds) for config, (task, model, seeds, history) in zip(group, trained)]

    return run_in_groups(configs, run_group, key=lambda config: dataclasses.replace(config, seed=0))


def run(config: SinghSetting, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train the unclamped baseline ``config`` and return its curves and final measures (module docstring)."""
    return run_many([config], device=device, progress=progress)[0]
