"""Singh et al.'s three subcircuits of an induction circuit, and training runs that clamp them.

The circuit on ``x_1 y_1 x_2 y_2 x_q`` in a 2-layer attention-only transformer:

* **A** (steps 1, 2): a layer-0 head attends from each label to the previous token and
  copies the item into the label's position (previous-token head);
* **B** (steps 3qk, 4): the layer-1 head's query at ``x_q`` matches the label whose
  preceding item is of the query's class;
* **C** (steps 3v, 5): the layer-1 head's value/output path copies that label to the output.

Each training condition clamps some of them to their ideal form (``CONDITIONS``), with only
one layer-1 head active (the others removed from the start), so what is left must be
learned. A sweep is a list of :class:`RunConfig` and :func:`run_one` runs one of them and
returns a small dict; runs are independent of each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from ihcore.spine import clamps, curves, measures
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.train import Seeds, progress_enabled, train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

# condition -> (subcircuits clamped to ideal, subcircuits left to learn)
CONDITIONS = {
    "none": ("", "ABC"),
    "1 (PT attention)": ("part of A", "ABC"),
    "1,2 (layer 0: A)": ("A", "BC"),
    "1,2,3qk,4 (match: A+B)": ("AB", "C"),
    "3v,5 (copy: C)": ("C", "AB"),
    "1,2,3v,5 (layer 0 + copy: A+C)": ("AC", "B"),
}

PHASE_CHANGE_LOSS = 0.4 * math.log(2)  # Singh et al.'s threshold: 40% of the plateau loss ln 2


def condition_clamp(condition: str, model, previous_token_head: int, active_head: int | None) -> clamps.Clamp:
    """The clamp of ``condition`` (a key of ``CONDITIONS``) on a 2-layer model.

    ``previous_token_head`` is the layer-0 head given the ideal previous-token pattern in
    condition "1"; ``active_head`` the one layer-1 head kept (the clamps that involve the
    induction head act on it). ``active_head=None`` keeps every head (only for "none":
    the unclamped model).
    """
    if active_head is None:
        if condition != "none":
            raise ValueError(f"condition {condition!r} needs an active layer-1 head")
        return clamps.no_clamp()
    keep = clamps.only_heads(1, [active_head], model.config.n_heads)
    layer0 = clamps.shifted_input_for_qk(model, 1)
    match = clamps.pattern(1, active_head, clamps.match_pattern, rows=[-1], name="match")
    copy = clamps.scores_as_logits(1, active_head)
    by_name = {
        "none": keep,
        "1 (PT attention)": keep + clamps.pattern(0, previous_token_head, clamps.previous_token_pattern),
        "1,2 (layer 0: A)": keep + layer0,
        "1,2,3qk,4 (match: A+B)": keep + match,
        "3v,5 (copy: C)": keep + copy,
        "1,2,3v,5 (layer 0 + copy: A+C)": keep + layer0 + copy,
    }
    if condition not in by_name:
        raise ValueError(f"unknown condition {condition!r}; valid: {list(by_name)}")
    return clamps.Clamp(by_name[condition].hooks_for, condition)


@dataclass(frozen=True)
class RunConfig:
    """One clamped training run: task, model, training and clamp settings."""

    condition: str = "none"
    n_labels: int = 5
    n_classes: int = 50
    item_dim: int = 64
    prototypes: str = "lowrank"
    n_heads: int = 8
    d_model: int = 64
    n_layers: int = 2  # clamp conditions other than "none" need 2
    steps: int = 600
    lr: float = 3e-3
    batch_size: int = 32
    eval_every: int = 25
    eval_batch_size: int = 256
    previous_token_head: int = 0
    active_head: int | None = 0  # None: all layer-1 heads active (the unclamped baseline)
    seed: int = 0


def singh_task(n_labels: int, n_classes: int, item_dim: int, prototypes: str, seed: int) -> ItemLabelTask:
    """The paper's few-shot task: 2 context pairs (query's class and one distractor), labels re-drawn per sequence.

    A fifth of the unordered label pairs (2 of the 10 for 5 labels, as in the paper) is
    held out of training for the ``relabel`` split; 100 held-out classes.
    """
    return ItemLabelTask(
        n_pairs=2, item_dim=item_dim, n_labels=n_labels, n_classes=n_classes, n_heldout_classes=100,
        prototypes=prototypes, labels="per_sequence", n_context_classes=2, seed=seed,
        heldout_label_pairs=n_labels * (n_labels - 1) // 2 // 5,
    )


def singh_model(task: ItemLabelTask, n_heads: int, d_model: int, seed: int, n_layers: int = 2) -> AttentionOnlyTransformer:
    """Attention-only transformer sized for ``task``: one logit per label."""
    config = TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_layers=n_layers, n_heads=n_heads, d_model=d_model)
    return AttentionOnlyTransformer(config, seed=seed)


def run_one(config: RunConfig, progress: bool | None = False, device: str | torch.device | None = None) -> dict:
    """Train under ``config.condition`` on ``device`` (None: the current device); returns the
    config's fields, the loss curve and the phase change.

    Result keys: the fields of ``config``, ``eval_steps`` (E,), ``loss`` and
    ``loss_in_context`` (E,) on training and held-out classes, evaluated under the same
    clamp, and ``phase_change`` (first step with training-class loss below 0.4 ln 2, or None).
    """
    seeds = Seeds.from_base(config.seed)
    task = singh_task(config.n_labels, config.n_classes, config.item_dim, config.prototypes, seeds.init)
    model = singh_model(task, config.n_heads, config.d_model, seeds.init, config.n_layers)
    clamp = condition_clamp(config.condition, model, config.previous_token_head, config.active_head)
    history = train(
        model, task, steps=config.steps, lr=config.lr, batch_size=config.batch_size, eval_every=config.eval_every,
        measures=[measures.loss_and_accuracy(task, ["train", "in_context"], hooks=clamp)],
        eval_splits=["train", "in_context"], eval_batch_size=config.eval_batch_size,
        seeds=seeds, hooks=clamp, progress=progress, device=device,
    )
    loss = history["loss/train"]
    return {
        **asdict(config),
        "eval_steps": history.eval_steps,
        "loss": loss,
        "loss_in_context": history["loss/in_context"],
        "phase_change": curves.first_step_below(history.eval_steps, loss, PHASE_CHANGE_LOSS),
    }


def clamped_losses(task, split: str, clamps_by_name: Mapping[str, clamps.Clamp]) -> measures.Measure:
    """Measure: ``loss/<split>/<name>``, the loss with clamp ``name`` applied at evaluation only.

    Applied to checkpoints of an unclamped run (or passed to ``train``), each is a progress
    measure of what its clamp leaves free: e.g. with subcircuits A and B clamped, the loss
    says how far C has come.
    """
    per_clamp = {name: measures.loss_and_accuracy(task, [split], hooks=clamp) for name, clamp in clamps_by_name.items()}

    def measure(model, batches) -> dict[str, np.ndarray]:
        return {f"loss/{split}/{name}": m(model, batches)[f"loss/{split}"] for name, m in per_clamp.items()}

    return measure


def run_sweep(
    configs: Sequence[RunConfig], progress: bool | None = None, device: str | torch.device | None = None,
) -> list[dict]:
    """:func:`run_one` for each configuration, in order, on ``device``, with one progress bar for the sweep."""
    return [run_one(config, device=device) for config in tqdm(configs, disable=not progress_enabled(progress), desc="runs")]


# The chapter's data-dependence sweep: what each column leaves to learn -> the clamp condition.
DATA_SWEEP_COLUMNS = {"only B": "1,2,3v,5 (layer 0 + copy: A+C)", "only C": "1,2,3qk,4 (match: A+B)",
                      "B and C": "1,2 (layer 0: A)"}


def chapter_run_settings(p) -> dict:
    """The :class:`RunConfig` fields every run of the Singh chapter takes from its validated parameters ``p``."""
    return dict(n_labels=p.n_labels, n_classes=p.n_classes, item_dim=p.item_dim, prototypes=p.prototypes,
                n_heads=p.n_heads, d_model=p.d_model, lr=p.lr, batch_size=p.batch_size, eval_every=p.eval_every,
                seed=p.seed)


def chapter_baseline(p, progress: bool | None = None):
    """The chapter's unclamped baseline: ``(task, model, history)``, trained on the three
    evaluation splits with loss, accuracy and head scores, checkpoints every 2 evaluations."""
    seeds = Seeds.from_base(p.seed)
    task = singh_task(p.n_labels, p.n_classes, p.item_dim, p.prototypes, seeds.init)
    model = singh_model(task, p.n_heads, p.d_model, seeds.init)
    splits = ["train", "relabel", "in_context"]
    history = train(
        model, task, steps=p.steps, lr=p.lr, batch_size=p.batch_size, eval_every=p.eval_every,
        measures=[measures.loss_and_accuracy(task, splits), measures.head_scores("train")],
        eval_splits=splits, seeds=seeds, checkpoint_steps=sorted({*range(0, p.steps, 2 * p.eval_every), p.steps}),
        progress=progress,
    )
    return task, model, history


def strongest_heads(history) -> dict[str, int]:
    """``previous_token_head`` (layer 0) and ``induction_head`` (layer 1) with the highest final scores."""
    return {"previous_token_head": int(history["previous_token_score"][-1, 0].argmax()),
            "induction_head": int(history["induction_score"][-1, 1].argmax())}


def baseline_heads(p) -> dict[str, int]:
    """:func:`strongest_heads` of :func:`chapter_baseline` (trains the baseline, no progress bar)."""
    return strongest_heads(chapter_baseline(p, progress=False)[2])


def clamp_configs(p, previous_token_head: int, induction_head: int) -> list[RunConfig]:
    """The chapter's clamp-condition runs: one per condition of :data:`CONDITIONS`, one active head."""
    return [RunConfig(**chapter_run_settings(p), condition=condition, steps=p.clamp_steps,
                      previous_token_head=previous_token_head, active_head=induction_head)
            for condition in CONDITIONS]


def data_sweep_rows(p) -> dict[str, tuple[int, int]]:
    """Row label -> (classes, labels) of the chapter's data-dependence sweep."""
    return {f"{p.n_classes} classes, {p.n_labels} labels": (p.n_classes, p.n_labels),
            f"{p.sweep_classes} classes, {p.n_labels} labels": (p.sweep_classes, p.n_labels),
            f"{p.n_classes} classes, {p.sweep_labels} labels": (p.n_classes, p.sweep_labels)}


def data_configs(p, induction_head: int) -> list[RunConfig]:
    """The chapter's data-dependence runs, row-major over :func:`data_sweep_rows` x :data:`DATA_SWEEP_COLUMNS`;
    evaluations every sweep_steps // 40 steps (the phase changes come early)."""
    settings = {**chapter_run_settings(p), "eval_every": max(1, p.sweep_steps // 40)}
    return [RunConfig(**{**settings, "n_classes": classes, "n_labels": labels},
                      condition=condition, steps=p.sweep_steps, active_head=induction_head)
            for classes, labels in data_sweep_rows(p).values() for condition in DATA_SWEEP_COLUMNS.values()]


def phase_change_or_censored(result: dict) -> float:
    """The run's phase-change step, or ``inf`` if it had none within its steps."""
    return np.inf if result["phase_change"] is None else float(result["phase_change"])
