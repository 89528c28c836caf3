"""Head ablations of a trained (or partly trained) model, on one fixed batch.

Ablation = the head writes nothing to the residual stream (``ablate_heads`` on
``layer{l}.head_out``); without output biases this is Singh et al.'s value-zeroing
ablation. Every function takes a model and a batch and returns accuracies (or scores) as
arrays; :func:`over_checkpoints` repeats any of them over a run's checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ihcore.hooks import ablate_heads
from ihcore.measures import accuracy, induction_score
from ihcore.tasks import Batch


def accuracy_without(model, batch: Batch, removed: Mapping[int, Sequence[int]]) -> float:
    """Accuracy with the heads ``removed[layer]`` of each layer ablated."""
    fns = {f"layer{layer}.head_out": ablate_heads(list(heads)) for layer, heads in removed.items() if len(heads)}
    with torch.no_grad(), model.hooks(fns):
        return accuracy(model(batch.tokens), batch)


def _others(n_heads: int, kept: Sequence[int]) -> list[int]:
    return [h for h in range(n_heads) if h not in kept]


def single_head_ablations(model, batch: Batch, layer: int) -> dict[str, np.ndarray]:
    """Accuracy of ``layer``'s heads, one at a time: ``removed`` (H,) with head h ablated,
    ``only`` (H,) with every head but h ablated."""
    H = model.config.n_heads
    return {
        "removed": np.array([accuracy_without(model, batch, {layer: [h]}) for h in range(H)]),
        "only": np.array([accuracy_without(model, batch, {layer: _others(H, [h])}) for h in range(H)]),
    }


def heads_added_back(model, batch: Batch, layer: int, order: Sequence[int]) -> np.ndarray:
    """(len(order) + 1,) accuracy with the first k heads of ``order`` active in ``layer``, k = 0..len(order)."""
    H = model.config.n_heads
    return np.array([accuracy_without(model, batch, {layer: _others(H, order[:k])}) for k in range(len(order) + 1)])


def wiring(model, batch: Batch, source_layer: int = 0, target_layer: int = 1) -> dict[str, np.ndarray]:
    """Which source-layer head each target-layer head depends on.

    ``accuracy`` (H_target, H_source): accuracy with only that pair of heads active in the
    two layers; ``induction_score`` (H_target, H_source): induction score of each target
    head with only that source head active.
    """
    H = model.config.n_heads
    pair_accuracy = np.zeros((H, H))
    scores = np.zeros((H, H))
    name = f"layer{target_layer}.attn.pattern"
    for source in range(H):
        removed_source = {source_layer: _others(H, [source])}
        for target in range(H):
            pair_accuracy[target, source] = accuracy_without(model, batch, {**removed_source, target_layer: _others(H, [target])})
        fns = {f"layer{source_layer}.head_out": ablate_heads(removed_source[source_layer])}
        with torch.no_grad(), model.hooks(fns):
            _, cache = model.run_with_cache(batch.tokens, names=[name])
        scores[:, source] = induction_score(cache[name], batch)
    return {"accuracy": pair_accuracy, "induction_score": scores}


def over_checkpoints(
    model, checkpoints: Mapping[int, dict], evaluate: Callable[[torch.nn.Module], dict[str, np.ndarray]]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Load each checkpoint into ``model`` and stack ``evaluate(model)``'s arrays.

    Returns the checkpoint steps (C,) in order and name -> (C, ...) arrays. The model is
    left holding the last checkpoint.
    """
    steps = sorted(checkpoints)
    results = []
    for step in steps:
        model.load_state_dict(checkpoints[step])
        results.append(evaluate(model))
    return np.array(steps), {name: np.stack([r[name] for r in results]) for name in results[0]}
