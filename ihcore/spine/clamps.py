"""Clamps: fix chosen activations to a value or a function, during training or evaluation.

Singh et al. (2024) study how a circuit *forms* by clamping parts of it throughout
training ("optogenetics-inspired"): an activation is computed, then overwritten under a
mask, and gradients flow through whatever was not overwritten. Here a clamp is built on
the spine's hook points and :func:`ihcore.spine.hooks.replace`, so it works on any
:class:`~ihcore.spine.hooks.HookedModule` and any hook point by name.

A :class:`Clamp` maps a batch to hook functions keyed by hook-point name (the ideal
pattern of an induction head depends on where the matching item is, so most clamps are
functions of the batch). Clamps compose with ``+`` (all hooks of both, the left one's
first on a shared hook point), apply for one forward pass with ``clamp.on(model, batch)``,
and are passed as ``hooks=clamp`` to :func:`ihcore.spine.train.train` (every training step) and
to :func:`ihcore.spine.measures.loss_and_accuracy` (evaluation).

Ideal patterns (shape (B, T, T), query rows, key columns, on the batch's device) are
functions of a :class:`~ihcore.spine.item_label_task.Batch` of item–label sequences ``x_1 y_1 ... x_N y_N x_q``:
:func:`previous_token_pattern` and :func:`match_pattern`. Two clamps act on a whole
step of the induction circuit: :func:`shifted_input_for_qk` (an ideal previous-token layer,
seen by the next layer's queries and keys) and :func:`scores_as_logits` (a head's scores
to the context labels become the output logits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ihcore.spine.hooks import HookFn, ablate_heads, other_heads, replace
from ihcore.spine.item_label_task import Batch

HookSpec = Mapping[str, HookFn | Sequence[HookFn]]
BatchFn = Callable[[Batch], torch.Tensor]


@dataclass(frozen=True)
class Clamp:
    """Hook functions as a function of the batch; ``name`` labels the clamp in plots."""

    hooks_for: Callable[[Batch], HookSpec]
    name: str = ""

    def __call__(self, batch: Batch) -> dict[str, list[HookFn]]:
        """Hook-point name -> hook functions for a forward pass on ``batch``."""
        return {point: [fns] if callable(fns) else list(fns) for point, fns in self.hooks_for(batch).items()}

    def __add__(self, other: Clamp) -> Clamp:
        def hooks_for(batch: Batch) -> dict[str, list[HookFn]]:
            merged = self(batch)
            for point, fns in other(batch).items():
                merged[point] = merged.get(point, []) + fns
            return merged

        return Clamp(hooks_for, " + ".join(n for n in (self.name, other.name) if n))

    @contextmanager
    def on(self, model, batch: Batch) -> Iterator[None]:
        """Attach this clamp's hooks to ``model`` for forward passes on ``batch``."""
        with model.hooks(self(batch)):
            yield


def no_clamp() -> Clamp:
    """The identity clamp: no hook at all."""
    return Clamp(lambda batch: {}, "none")


def fix(point: str, value: torch.Tensor | BatchFn, where: torch.Tensor | BatchFn | None = None, name: str = "") -> Clamp:
    """Overwrite hook point ``point`` with ``value`` where ``where`` is True (everywhere if None).

    ``value`` and ``where`` are tensors broadcastable to the activation, or functions of
    the batch returning such tensors. Entries outside ``where`` keep the computed value
    and its gradient.
    """

    def hooks_for(batch: Batch) -> HookSpec:
        new = value(batch) if callable(value) else value
        mask = where(batch) if callable(where) else where
        return {point: replace(new, mask)}

    return Clamp(hooks_for, name or f"fix {point}")


def pattern(layer: int, head: int, ideal: BatchFn, rows: Sequence[int] | None = None, name: str = "") -> Clamp:
    """Set one head's attention pattern to ``ideal(batch)`` (B, T, T), on query ``rows`` (None: all)."""

    def hooks_for(batch: Batch) -> HookSpec:
        value = ideal(batch)[:, None]  # (B, 1, T, T), broadcast over heads

        def fn(activation: torch.Tensor, name: str) -> torch.Tensor:
            where = torch.zeros_like(activation, dtype=torch.bool)  # (B, H, T, T)
            where[:, head, slice(None) if rows is None else list(rows)] = True
            return replace(value.to(activation.device), where)(activation, name)

        return {f"layer{layer}.attn.pattern": fn}

    return Clamp(hooks_for, name or f"layer {layer} head {head} pattern")


def heads_off(layer: int, heads: Sequence[int], name: str = "") -> Clamp:
    """Remove heads of ``layer``: their write to the residual stream is zero (value-zeroing ablation)."""
    return Clamp(lambda batch: {f"layer{layer}.head_out": ablate_heads(list(heads))}, name or f"layer {layer} heads {list(heads)} off")


def only_heads(layer: int, heads: Sequence[int], n_heads: int, name: str = "") -> Clamp:
    """Keep only ``heads`` of ``layer`` (of ``n_heads``); the others are removed."""
    return heads_off(layer, other_heads(n_heads, heads), name or f"layer {layer} only heads {list(heads)}")


def previous_token_pattern(batch: Batch) -> torch.Tensor:
    """(B, T, T) ideal previous-token pattern: row t puts weight 1 on t-1, row 0 on itself."""
    B, T = batch.tokens.shape[:2]
    device = batch.tokens.device
    ideal = torch.zeros(T, T, device=device)
    ideal[0, 0] = 1.0
    ideal[torch.arange(1, T, device=device), torch.arange(T - 1, device=device)] = 1.0
    return ideal.expand(B, T, T)


def match_pattern(batch: Batch) -> torch.Tensor:
    """(B, T, T) ideal induction pattern of the query row: weight spread evenly over the labels
    whose item matches the query's class (1 on the correct label with one match); other rows 0.

    Built out of place (one-hot rows and columns), so it also works on one member's batch
    inside a vmapped ensemble (:func:`ihcore.spine.train.train_members`)."""
    T = batch.tokens.shape[1]
    matches = batch.context_matches.float()  # (B, N)
    weights = matches / matches.sum(-1, keepdim=True).clamp(min=1)
    columns = torch.nn.functional.one_hot(batch.label_positions, T).to(weights)  # (N, T)
    row = torch.nn.functional.one_hot(torch.tensor(batch.query_position, device=weights.device), T).to(weights)  # (T,)
    return row[None, :, None] * (weights @ columns)[:, None, :]


def shifted_input_for_qk(model, layer: int) -> Clamp:
    """Replace layer ``layer - 1`` by an ideal previous-token layer, for ``layer``'s queries and keys only.

    The queries and keys of ``layer`` are computed from ``r + shift(r)``, where ``r`` is
    the residual stream entering layer ``layer - 1`` and ``shift`` moves every position's
    vector one position right (position 0 gets zeros): each label token then carries its
    item. Layer ``layer - 1`` itself writes nothing to the residual stream, so values and
    readout see ``r`` alone. This is Singh et al.'s two-pass "layer 1" clamp in one pass
    (the attention pattern of ``layer`` depends only on its queries and keys); gradients
    flow through ``r`` and the query/key weights.
    """
    if layer < 1:
        raise ValueError(f"shifted_input_for_qk needs a layer >= 1, got {layer}")
    attention = model.layers[layer]
    stored: dict[str, torch.Tensor] = {}

    def keep_input(activation: torch.Tensor, name: str) -> None:
        stored["resid"] = activation

    def qk_input() -> torch.Tensor:
        resid = stored["resid"]
        shifted = torch.cat([torch.zeros_like(resid[:, :1]), resid[:, :-1]], dim=1)  # (B, T, d)
        ideal = resid + shifted
        return model.norms[layer](ideal) if model.config.layer_norm else ideal

    def query(activation: torch.Tensor, name: str) -> torch.Tensor:
        return torch.einsum("btd,hde->bthe", qk_input(), attention.W_Q)

    def key(activation: torch.Tensor, name: str) -> torch.Tensor:
        return torch.einsum("btd,hde->bthe", qk_input(), attention.W_K)

    def hooks_for(batch: Batch) -> HookSpec:
        return {
            f"resid.{layer - 1}": keep_input,
            f"layer{layer - 1}.head_out": replace(0.0),
            f"layer{layer}.attn.q": query,
            f"layer{layer}.attn.k": key,
        }

    return Clamp(hooks_for, f"layer {layer - 1} ideal previous-token (for layer {layer} QK)")


def scores_as_logits(layer: int, head: int) -> Clamp:
    """Replace the query's logits by one head's attention scores to the context labels.

    The logit of each in-context label is the head's pre-softmax score from the query to
    that label's position; every other label gets ``-inf``. The head's value/output path
    then does not matter: the model needs to learn only to score the right label highest
    (Singh et al.'s copy clamp, steps 3v and 5). Tokens must be item–label sequences
    whose labels are one-hot in the last ``d_output`` entries.
    """
    stored: dict[str, torch.Tensor] = {}

    def keep_scores(activation: torch.Tensor, name: str) -> None:
        stored["scores"] = activation

    def hooks_for(batch: Batch) -> HookSpec:
        def logits(activation: torch.Tensor, name: str) -> torch.Tensor:
            to_labels = stored["scores"][:, head, batch.query_position, batch.label_positions]  # (B, N)
            query_logits = torch.full_like(activation[:, -1], float("-inf"))  # (B, n_labels)
            query_logits = query_logits.scatter(1, batch.context_labels, to_labels)
            return torch.cat([activation[:, :-1], query_logits[:, None]], dim=1)

        return {f"layer{layer}.attn.scores": keep_scores, "logits": logits}

    return Clamp(hooks_for, f"copy: layer {layer} head {head} scores as logits")
