"""The standard repeated-random-tokens induction score, on a TransformerLens model, and the token ids
that give the book's item–label models one.

The score (Olsson et al. 2022; TransformerLens's own demos) feeds sequences of ``L`` uniformly
random tokens followed by the same ``L`` tokens again, and averages, for each head, the attention
from every position ``t`` of the second copy to position ``t - L + 1``: the token that followed the
earlier occurrence of the token at ``t``. An induction head puts its attention there; a head that
ignores content gets about ``1 / t``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ihcore.spine.item_label_task import ItemLabelTask


def item_label_vocabulary(task: ItemLabelTask) -> torch.Tensor:
    """(n_classes + n_heldout_classes + n_labels, d_input): one token id per class prototype (training
    classes, then held-out ones; noise-free items) and one per label code, as ihcore input vectors."""
    world = task._world  # the task's fixed prototypes
    prototypes = torch.cat([world["train_prototypes"], world["heldout_prototypes"]])
    items = F.pad(prototypes, (0, task.n_labels))
    labels = F.pad(torch.eye(task.n_labels), (task.item_dim, 0))
    return torch.cat([items, labels])


def repeated_random_tokens(n_tokens: int, length: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(batch_size, 2 length) token ids: ``length`` uniform draws from ``range(n_tokens)``, then the same again."""
    half = torch.randint(n_tokens, (batch_size, length), generator=generator)
    return torch.cat([half, half], dim=1)


def induction_stripe(patterns: torch.Tensor, length: int) -> torch.Tensor:
    """patterns (B, H, 2L, 2L) -> (B, H, L): attention from position t = L .. 2L-1 to t - L + 1."""
    destinations = torch.arange(length, 2 * length)
    return patterns[:, :, destinations, destinations - length + 1]


def repeated_tokens_induction_score(hooked, tokens: torch.Tensor, *, positions: slice = slice(None)) -> np.ndarray:
    """(n_layers, n_heads) standard induction score of ``hooked`` (a HookedTransformer) on ``tokens``
    from :func:`repeated_random_tokens`. ``positions`` selects destinations of the second copy
    (counted from its start), e.g. ``slice(0, None, 2)`` for every other one."""
    length = tokens.shape[1] // 2
    with torch.no_grad():
        _, cache = hooked.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    return np.stack([
        induction_stripe(cache[f"blocks.{layer}.attn.hook_pattern"], length)[..., positions].mean(dim=(0, 2)).numpy()
        for layer in range(hooked.cfg.n_layers)
    ])


def repeated_item_label_tokens(n_items: int, n_labels: int, n_pairs: int, batch_size: int,
                               generator: torch.Generator) -> torch.Tensor:
    """(batch_size, 4 n_pairs) token ids in the item–label format of :func:`item_label_vocabulary`:
    ``n_pairs`` random (item, label) pairs (items from ``range(n_items)``, labels after them), then the
    same pairs again. The standard score's stripe on these sequences, at the item positions of the
    second copy, is the attention from an item to the label that followed its earlier occurrence."""
    items = torch.randint(n_items, (batch_size, n_pairs), generator=generator)
    labels = n_items + torch.randint(n_labels, (batch_size, n_pairs), generator=generator)
    half = torch.stack([items, labels], dim=2).reshape(batch_size, 2 * n_pairs)
    return torch.cat([half, half], dim=1)


def content_blind_score(length: int) -> float:
    """The standard score of a head attending uniformly to the keys it may see (s <= t): mean of 1/(t+1)."""
    return float(np.mean([1 / (t + 1) for t in range(length, 2 * length)]))


def item_label_lens_report(model, task: ItemLabelTask, layer: int, head: int, generator: torch.Generator,
                           batch_size: int = 512) -> dict[str, float]:
    """One trained item–label ``model`` opened in TransformerLens (through :func:`item_label_vocabulary`),
    and head ``(layer, head)`` scored both ways. Returns

    * ``same``: 1.0 if the TransformerLens model's logits (to 1e-5 of their largest magnitude) and attention
      weights (to 1e-5) equal ``model``'s on held-out noise-free sequences (their items are vocabulary
      rows), else 0.0;
    * ``book``: the book's induction score (:func:`ihcore.spine.measures.induction_score`) computed from
      the TransformerLens patterns on those sequences;
    * ``standard``: the repeated-random-tokens score (uniform tokens, ``L = n_pairs``);
    * ``format_items`` / ``format_labels``: the standard stripe on repeated item–label sequences, at the
      second copy's item positions / label positions.
    """
    from dataclasses import replace

    from ihcore.interop.hooked_transformer import to_hooked_transformer, token_ids
    from ihcore.spine.measures import induction_score

    vocabulary = item_label_vocabulary(task)
    hooked = to_hooked_transformer(model, vocabulary=vocabulary)
    batch = replace(task, noise=0.0).sample(batch_size, "in_context", generator)
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch.tokens)
        hooked_logits, hooked_cache = hooked.run_with_cache(token_ids(batch.tokens, vocabulary))
    patterns = [(hooked_cache[f"blocks.{l}.attn.hook_pattern"], cache[f"layer{l}.attn.pattern"])
                for l in range(hooked.cfg.n_layers)]
    # float32 rounding differs between the two einsum orders: logits agree to ~1e-6 of their scale
    same = bool((hooked_logits - logits).abs().max() <= 1e-5 * logits.abs().max()) and all(
        bool((theirs - ours).abs().max() <= 1e-5) for theirs, ours in patterns)
    n_items = vocabulary.shape[0] - task.n_labels
    uniform = repeated_random_tokens(vocabulary.shape[0], task.n_pairs, batch_size, generator)
    formatted = repeated_item_label_tokens(n_items, task.n_labels, max(task.n_pairs // 2, 1), batch_size, generator)
    return {
        "same": float(same),
        "book": float(induction_score(patterns[layer][0], batch)[head]),
        "standard": float(repeated_tokens_induction_score(hooked, uniform)[layer, head]),
        "format_items": float(repeated_tokens_induction_score(hooked, formatted, positions=slice(0, None, 2))[layer, head]),
        "format_labels": float(repeated_tokens_induction_score(hooked, formatted, positions=slice(1, None, 2))[layer, head]),
    }
