"""Measures of a model on item–label batches: accuracy, loss and per-head attention scores.

Score definitions (after Singh et al. 2024's induction strength), for attention patterns of shape
(B, H, T, T) with query rows and key columns, on sequences ``x_1 y_1 ... x_N y_N x_q``:

* ``previous_token_score`` of a head: mean over sequences and context pairs of the
  attention from label token y_i to its own item x_i (the previous position). This is
  the book's definition (the paper identifies previous-token heads by ablation). 1 for
  an ideal previous-token head.
* ``induction_score`` of a head: attention from the query to the label tokens whose item
  matches the query's class, minus the attention to the other label tokens scaled to the
  same number of tokens: ``n_match * (mean_match - mean_other)``. With one matching and
  one other label (the paper's 2-pair task) this is Singh et al.'s induction strength:
  attention to the correct label minus attention to the incorrect one. 1 when all
  attention is on the correct labels, 0 for attention that ignores the match. Sequences
  whose labels are all matching or all other carry no information and are skipped.

Devices: measures of a model move their batches to the model's device; every result is
a CPU NumPy array or a Python number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext

import numpy as np
import torch

from ihcore.spine import devices
from ihcore.spine.item_label_task import Batch

Measure = Callable[[torch.nn.Module, Mapping[str, Batch]], dict[str, np.ndarray]]


def accuracy(logits: torch.Tensor, batch: Batch) -> float:
    """Fraction of sequences whose query readout (logits[:, -1]) ranks the target first."""
    return (logits[:, -1].argmax(dim=-1) == batch.target).float().mean().item()


def previous_token_score(pattern: torch.Tensor, batch: Batch) -> np.ndarray:
    """(H,) previous-token score of each head of one layer; pattern (B, H, T, T)."""
    labels = batch.label_positions
    return pattern[:, :, labels, labels - 1].mean(dim=(0, 2)).cpu().numpy()


def induction_score(pattern: torch.Tensor, batch: Batch) -> np.ndarray:
    """(H,) induction score of each head of one layer; pattern (B, H, T, T)."""
    to_labels = pattern[:, :, batch.query_position, batch.label_positions]  # (B, H, N)
    match = batch.context_matches[:, None, :].float()  # (B, 1, N)
    n_match, n_other = match.sum(-1), (1 - match).sum(-1)  # (B, 1)
    informative = ((n_match > 0) & (n_other > 0))[:, 0]
    if not informative.any():
        raise ValueError("induction_score needs sequences with both matching and other labels")
    mass_match = (to_labels * match).sum(-1)
    mass_other = (to_labels * (1 - match)).sum(-1)
    score = mass_match - mass_other * n_match / n_other.clamp(min=1)  # (B, H)
    return score[informative].mean(dim=0).cpu().numpy()


def plateau_median(steps: np.ndarray, values: np.ndarray, phase_change_step: int) -> float:
    """Median of ``values`` over the middle half of the run before the phase change.

    The evaluations at steps in [t/4, 3t/4], t = ``phase_change_step``, skip the fast
    initial drop and the change itself. NaN if no evaluation falls in that window.
    """
    window = (steps >= phase_change_step / 4) & (steps <= 3 * phase_change_step / 4)
    return float(np.median(values[window])) if window.any() else float("nan")


def attention_patterns(model, batch: Batch) -> list[torch.Tensor]:
    """The attention pattern (B, H, T, T) of every layer of ``model`` on ``batch``, on the CPU."""
    return [pattern.cpu() for pattern in _attention_patterns(model, batch.to(devices.of(model)))]


def _attention_patterns(model, batch: Batch) -> list[torch.Tensor]:
    """:func:`attention_patterns` on the model's device (``batch`` must be there)."""
    names = [f"layer{layer}.attn.pattern" for layer in range(model.config.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(batch.tokens, names=names)
    return [cache[name] for name in names]


def loss_and_accuracy(task, splits: Sequence[str], hooks: Callable[[Batch], Mapping] | None = None) -> Measure:
    """Measure: ``loss/<split>`` and ``accuracy/<split>`` on each split's evaluation batch.

    ``hooks``, a function of the batch returning hook functions by hook-point name (e.g.
    an :class:`ihcore.spine.clamps.Clamp`), is attached during each evaluation pass.
    """

    def measure(model, batches: Mapping[str, Batch]) -> dict[str, np.ndarray]:
        values = {}
        device = devices.of(model)
        with torch.no_grad():
            for split in splits:
                batch = devices.move(batches[split], device)
                with model.hooks(hooks(batch)) if hooks is not None else nullcontext():
                    logits = model(batch.tokens)
                values[f"loss/{split}"] = np.array(task.loss(logits, batch).item())
                values[f"accuracy/{split}"] = np.array(accuracy(logits, batch))
        return values

    return measure


def head_scores(split: str) -> Measure:
    """Measure: ``previous_token_score`` and ``induction_score``, each (layers, heads)."""

    def measure(model, batches: Mapping[str, Batch]) -> dict[str, np.ndarray]:
        batch = batches[split].to(devices.of(model))
        patterns = _attention_patterns(model, batch)
        return {
            "previous_token_score": np.stack([previous_token_score(p, batch) for p in patterns]),
            "induction_score": np.stack([induction_score(p, batch) for p in patterns]),
        }

    return measure
