"""Head ablations of a trained (or partly trained) model, on one fixed batch.

Ablation = the head writes nothing to the residual stream (``ablate_heads`` on
``layer{l}.head_out``); without output biases this is Singh et al.'s value-zeroing
ablation. Every function takes a model and a batch and returns accuracies (or scores) as
arrays; :func:`over_checkpoints` repeats any of them over a run's checkpoints.
:func:`path_ablations` cuts one path of a head only (its effect on a later layer's
patterns, or on its values); :func:`composition_scores` reads the wiring off the weights.
Batches are moved to the model's device; results are CPU arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ihcore.spine import devices
from ihcore.spine.hooks import ablate_heads, other_heads, replace
from ihcore.spine.item_label_task import Batch
from ihcore.spine.measures import accuracy, induction_score


def accuracy_without(model, batch: Batch, removed: Mapping[int, Sequence[int]]) -> float:
    """Accuracy with the heads ``removed[layer]`` of each layer ablated."""
    fns = {f"layer{layer}.head_out": ablate_heads(list(heads)) for layer, heads in removed.items() if len(heads)}
    batch = batch.to(devices.of(model))
    with torch.no_grad(), model.hooks(fns):
        return accuracy(model(batch.tokens), batch)


def single_head_ablations(model, batch: Batch, layer: int) -> dict[str, np.ndarray]:
    """Accuracy of ``layer``'s heads, one at a time: ``removed`` (H,) with head h ablated,
    ``only`` (H,) with every head but h ablated."""
    H = model.config.n_heads
    return {
        "removed": np.array([accuracy_without(model, batch, {layer: [h]}) for h in range(H)]),
        "only": np.array([accuracy_without(model, batch, {layer: other_heads(H, [h])}) for h in range(H)]),
    }


def heads_added_back(model, batch: Batch, layer: int, order: Sequence[int]) -> np.ndarray:
    """(len(order) + 1,) accuracy with the first k heads of ``order`` active in ``layer``, k = 0..len(order)."""
    H = model.config.n_heads
    return np.array([accuracy_without(model, batch, {layer: other_heads(H, order[:k])}) for k in range(len(order) + 1)])


def wiring(model, batch: Batch, source_layer: int = 0, target_layer: int = 1) -> dict[str, np.ndarray]:
    """Which source-layer head each target-layer head depends on.

    ``accuracy`` (H_target, H_source): accuracy with only that pair of heads active in the
    two layers; ``induction_score`` (H_target, H_source): induction score of each target
    head with only that source head active.
    """
    H = model.config.n_heads
    batch = batch.to(devices.of(model))
    pair_accuracy = np.zeros((H, H))
    scores = np.zeros((H, H))
    name = f"layer{target_layer}.attn.pattern"
    for source in range(H):
        removed_source = {source_layer: other_heads(H, [source])}
        for target in range(H):
            pair_accuracy[target, source] = accuracy_without(model, batch, {**removed_source, target_layer: other_heads(H, [target])})
        fns = {f"layer{source_layer}.head_out": ablate_heads(removed_source[source_layer])}
        with torch.no_grad(), model.hooks(fns):
            _, cache = model.run_with_cache(batch.tokens, names=[name])
        scores[:, source] = induction_score(cache[name], batch)
    return {"accuracy": pair_accuracy, "induction_score": scores}


PATH_KINDS = ("removed", "pattern_preserving", "value_preserving", "both_preserving")


def path_ablated_logits(
    model, tokens: torch.Tensor, head: int, kind: str, source_layer: int = 0, target_layer: int = 1
) -> torch.Tensor:
    """Logits (B, T, d_output) with ``source_layer``'s ``head`` ablated, some paths kept clean.

    A clean pass first records the target layer's attention patterns and values; the
    ablated pass then overwrites them with the clean ones according to ``kind``:

    - ``removed``: nothing kept (a plain ablation);
    - ``pattern_preserving``: target-layer patterns kept, so the head's value path (and
      its direct path to the logits) is cut, its query/key path is not;
    - ``value_preserving``: target-layer values kept, so the head's query/key path (and
      direct path) is cut, its value path is not;
    - ``both_preserving``: both kept; with the target layer last, only the direct path
      (and paths through layers in between) is cut.
    """
    if kind not in PATH_KINDS:
        raise ValueError(f"kind must be one of {PATH_KINDS}, got {kind!r}")
    pattern, values = f"layer{target_layer}.attn.pattern", f"layer{target_layer}.attn.v"
    tokens = tokens.to(devices.of(model))
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens, names=[pattern, values])
        fns = {f"layer{source_layer}.head_out": ablate_heads([head])}
        if kind in ("pattern_preserving", "both_preserving"):
            fns[pattern] = replace(clean[pattern])
        if kind in ("value_preserving", "both_preserving"):
            fns[values] = replace(clean[values])
        with model.hooks(fns):
            return model(tokens)


def path_ablations(model, batch: Batch, source_layer: int = 0, target_layer: int = 1) -> dict[str, np.ndarray]:
    """Accuracy (H,) with each ``source_layer`` head ablated, for every kind in :data:`PATH_KINDS`."""
    H = model.config.n_heads
    batch = batch.to(devices.of(model))
    return {
        kind: np.array([
            accuracy(path_ablated_logits(model, batch.tokens, h, kind, source_layer, target_layer), batch) for h in range(H)
        ])
        for kind in PATH_KINDS
    }


def composition_scores(model, source_layer: int = 0, target_layer: int = 1) -> dict[str, np.ndarray]:
    """K- and V-composition scores (Elhage et al. 2021) of every pair of heads, from the weights.

    ``score[t, s] = ‖W_O^s W_X^t‖_F / (‖W_O^s‖_F ‖W_X^t‖_F)`` with X = K or V, for
    source-layer head s and target-layer head t, as ``"K"`` and ``"V"`` arrays
    (H_target, H_source) like :func:`wiring`. ``W_O^s`` (e, d) writes head s's output to the
    residual stream and ``W_X^t`` (d, e) reads the stream into head t's keys or values, so
    ``W_O^s W_X^t`` (e, e) is the path between them. The score lies in [0, 1]: 0 when head s
    writes to a subspace head t does not read, 1 only for rank-1 maps that meet exactly; two
    random Gaussian maps give about 1/√d. LayerNorm between the layers is not folded in.
    """
    if model.config.layer_norm:
        raise ValueError("composition_scores ignores LayerNorm; the model has layer_norm=True")
    W_O = model.layers[source_layer].W_O.detach()  # (H, e, d)
    scores = {}
    for name in ("K", "V"):
        W_X = getattr(model.layers[target_layer], f"W_{name}").detach()  # (H, d, e)
        path = torch.einsum("sed,tdf->tsef", W_O, W_X)  # (H_target, H_source, e, e)
        norms = W_X.flatten(1).norm(dim=1)[:, None] * W_O.flatten(1).norm(dim=1)[None, :]
        scores[name] = (path.flatten(2).norm(dim=2) / norms).cpu().numpy()
    return scores


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally shaped arrays (ties get their mean rank)."""

    def ranks(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float).ravel()
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for value in np.unique(x):
            r[x == value] = r[x == value].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


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
