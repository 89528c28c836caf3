"""The in-context item–label task family shared by the Musat and Singh chapters.

A sequence is N item–label pairs followed by a query item, 2N + 1 tokens::

    x_1 y_1 x_2 y_2 ... x_N y_N x_q        target: the label of x_q's class

Items are feature vectors: exemplars of Gaussian class prototypes (plus within-class
noise), or fresh isotropic vectors drawn for every sequence. Labels are one of
``n_labels`` ids. Every token is a vector of size ``item_dim + n_labels``: an item fills
the first ``item_dim`` entries, a label is a one-hot code in the last ``n_labels``.

Splits:

* ``"train"``: training classes. With probability ``bursty`` a sequence is *bursty*
  (its context holds ``n_context_classes`` classes, the query's among them); otherwise
  its context classes are drawn i.i.d.
* ``"in_context"``: held-out classes never seen in training, bursty contexts and labels
  re-drawn per sequence: only in-context learning can solve it.
* ``"in_weights"``: training classes with their fixed labels and the query's class absent
  from the context: only what the weights memorised can solve it.
* ``"relabel"`` (needs ``heldout_label_pairs > 0``): training classes, bursty contexts whose
  two classes get one of the label pairs held out of training (Singh et al.'s relabel test).

Labels: each class has a fixed label drawn once by ``seed``. With
``labels="per_sequence"`` each sequence applies a random permutation to the label ids,
so the class→label map is new in every sequence; with ``"fixed"`` it never changes. In a
relabelled bursty sequence the context classes always get distinct labels (fixed labels
are shared by several classes, which would let two context classes share a label).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import torch
import torch.nn.functional as F

from ihcore.spine import devices

SPLITS = ("train", "in_context", "in_weights", "relabel")


@dataclass(frozen=True)
class Batch(devices.TensorBatch):
    """A batch of item–label sequences.

    tokens: (B, 2N+1, item_dim + n_labels) float; items at even positions, labels at odd.
    target: (B,) long, the query's label.
    context_labels: (B, N) long, the label of each context pair.
    context_matches: (B, N) bool, True where context item i is of the query's class.
    """

    tokens: torch.Tensor
    target: torch.Tensor
    context_labels: torch.Tensor
    context_matches: torch.Tensor

    @property
    def n_pairs(self) -> int:
        return self.context_labels.shape[1]

    @property
    def label_positions(self) -> torch.Tensor:
        """(N,) positions of the context labels: 1, 3, ..., 2N - 1 (on the batch's device)."""
        return 2 * torch.arange(self.n_pairs, device=self.tokens.device) + 1

    @property
    def query_position(self) -> int:
        return 2 * self.n_pairs

    def token_names(self) -> list[str]:
        """Names of the 2N+1 positions: x1, y1, ..., xN, yN, xq."""
        return [f"{kind}{i + 1}" for i in range(self.n_pairs) for kind in "xy"] + ["xq"]


def query_cross_entropy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of the readout at the query (last) position; logits (B, T, n_labels)."""
    return F.cross_entropy(logits[:, -1], batch.target)


@dataclass(frozen=True)
class ItemLabelTask:
    """Sampler of item–label sequences; ``seed`` fixes the prototypes and class labels."""

    n_pairs: int = 4
    item_dim: int = 32
    n_labels: int = 8
    n_classes: int = 64
    n_heldout_classes: int = 64
    items: str = "prototypes"  # "prototypes" or "fresh" (new isotropic vectors per sequence)
    prototypes: str = "isotropic"  # "isotropic" N(0, I/D), or "lowrank" (non-centred, rank prototype_rank)
    prototype_rank: int = 32
    noise: float = 0.0  # within-class noise std, relative to the prototypes' per-entry scale
    labels: str = "per_sequence"  # or "fixed"
    bursty: float = 1.0  # probability that a training sequence is bursty
    n_context_classes: int = 2  # classes in a bursty context
    seed: int = 0
    heldout_label_pairs: int = 0  # unordered label pairs never given to a training context (needs 2 context classes)

    def __post_init__(self) -> None:
        checks = {
            "n_pairs": self.n_pairs >= 1,
            "item_dim": self.item_dim >= 1,
            "n_labels": self.n_labels >= 2,
            "n_classes": self.n_classes >= 2,
            "n_heldout_classes": self.n_heldout_classes >= self.n_context_classes,
            "items": self.items in ("prototypes", "fresh"),
            "prototypes": self.prototypes in ("isotropic", "lowrank"),
            "prototype_rank": self.prototype_rank >= 1,
            "noise": self.noise >= 0,
            "labels": self.labels in ("per_sequence", "fixed"),
            "bursty": 0.0 <= self.bursty <= 1.0,
            "n_context_classes": 1 <= self.n_context_classes <= min(self.n_pairs, self.n_classes, self.n_labels),
            "heldout_label_pairs": self.heldout_label_pairs == 0 or (
                self.n_context_classes == 2 and self.labels == "per_sequence"
                and self.heldout_label_pairs < self.n_labels * (self.n_labels - 1) // 2
            ),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ItemLabelTask: invalid {name}={getattr(self, name)!r}")

    @property
    def d_input(self) -> int:
        return self.item_dim + self.n_labels

    @property
    def n_positions(self) -> int:
        return 2 * self.n_pairs + 1

    @property
    def train_prototypes(self) -> torch.Tensor:
        """(n_classes, item_dim) the training classes' prototypes (the same for every batch)."""
        return self._world["train_prototypes"]

    @cached_property
    def _world(self) -> dict[str, torch.Tensor]:
        """Prototypes (K, D) of training and held-out classes, and each class's fixed label."""
        generator = torch.Generator().manual_seed(self.seed)
        n_all = self.n_classes + self.n_heldout_classes
        prototypes = self._draw_prototypes(n_all, generator)
        labels = torch.randint(self.n_labels, (n_all,), generator=generator)
        pairs = torch.combinations(torch.arange(self.n_labels), 2)  # (n_labels choose 2, 2), drawn last
        pairs = pairs[torch.randperm(len(pairs), generator=generator)] if self.heldout_label_pairs else pairs
        return {
            "train_prototypes": prototypes[: self.n_classes],
            "heldout_prototypes": prototypes[self.n_classes :],
            "train_labels": labels[: self.n_classes],
            "heldout_labels": labels[self.n_classes :],
            "heldout_label_pairs": pairs[: self.heldout_label_pairs],
            "train_label_pairs": pairs[self.heldout_label_pairs :],
        }

    def _draw_prototypes(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, D) prototypes with entries of scale 1/sqrt(D)."""
        D = self.item_dim
        if self.prototypes == "isotropic":
            return torch.randn(n, D, generator=generator) / math.sqrt(D)
        # Non-centred, low-rank, like the post-ReLU ResNet features of Singh et al.'s Omniglot
        # exemplars (this book's stand-in: nothing is downloaded).
        rank = min(self.prototype_rank, D)
        factors = torch.randn(n, rank, generator=generator)
        basis = torch.randn(rank, D, generator=generator) / math.sqrt(rank)
        return (factors @ basis + 2.0) / math.sqrt(D)

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> Batch:
        """Draw ``batch_size`` sequences of ``split`` using ``generator`` for all randomness."""
        return Batch(*(tensor[0] for tensor in self._sample((self,), batch_size, split, [generator])))

    @staticmethod
    def sample_members(
        tasks: Sequence[ItemLabelTask], batch_size: int, split: str, generators: Sequence[torch.Generator]
    ) -> Batch:
        """Every member's batch at once: ``tasks[s].sample(batch_size, split, generators[s])`` for each s,
        stacked along a leading member axis (every tensor (S, ...)), equal to them exactly.

        Each generator makes the draws it makes in :meth:`sample`, in the same order; what is computed
        from the draws (gathering, permuting labels, assembling tokens) runs once for all members
        instead of once each (only the sort that picks each sequence's classes stays per member: it is
        faster so), so an ensemble's training loop draws its batches in a few operations rather than a
        few per member. Tasks that differ in more than their ``seed`` are sampled one by one and stacked.
        """
        if len(tasks) != len(generators):
            raise ValueError(f"sample_members needs one generator per task, got {len(generators)} for {len(tasks)}")
        tasks = tuple(tasks)
        if not _differ_only_in_seed(tasks):
            return devices.stack([task.sample(batch_size, split, g) for task, g in zip(tasks, generators)])
        return Batch(*tasks[0]._sample(tasks, batch_size, split, generators))

    def _sample(self, tasks: tuple[ItemLabelTask, ...], batch_size: int, split: str,
                generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, ...]:
        """The Batch fields of every member, stacked (S, ...); ``tasks`` differ from ``self`` at most in seed."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if split == "relabel" and not self.heldout_label_pairs:
            raise ValueError("the relabel split needs heldout_label_pairs > 0")
        B = batch_size
        if self.items == "fresh":
            if split == "in_weights":
                raise ValueError("the in_weights split needs items='prototypes' (fresh items have no classes)")
            return self._sample_fresh(B, generators)
        world = _stacked_worlds(tasks)
        heldout = split == "in_context"
        prototypes = world["heldout_prototypes" if heldout else "train_prototypes"]  # (S, K, D)
        class_labels = world["heldout_labels" if heldout else "train_labels"]  # (S, K)
        K = prototypes.shape[1]
        relabel = heldout or (split in ("train", "relabel") and self.labels == "per_sequence")
        if split == "in_weights":
            context, query = self._absent_query_classes(B, K, generators)
            label_ids, query_label_id = _per_member(class_labels, context), _per_member(class_labels, query)
        else:
            context, query, rank = self._bursty_classes(B, K, generators)
            if relabel:
                # A relabelled bursty context gives its classes distinct labels: the j-th class
                # drawn takes id j (the query's class is drawn first), then ids are permuted.
                label_ids, query_label_id = rank, torch.zeros_like(query)
            else:
                label_ids, query_label_id = _per_member(class_labels, context), _per_member(class_labels, query)
            if split == "train" and self.bursty < 1.0:
                iid_context, iid_query = self._iid_classes(B, K, generators)
                is_bursty = _draws(generators, lambda g: torch.rand(B, generator=g)) < self.bursty  # (S, B)
                context = torch.where(is_bursty[..., None], context, iid_context)
                query = torch.where(is_bursty, query, iid_query)
                label_ids = torch.where(is_bursty[..., None], label_ids, _per_member(class_labels, iid_context))
                query_label_id = torch.where(is_bursty, query_label_id, _per_member(class_labels, iid_query))
        permutation = self._label_permutation(len(tasks), B, relabel, generators)  # (S, B, n_labels)
        if self.heldout_label_pairs and split in ("train", "relabel"):
            pairs = world[f"{'heldout' if split == 'relabel' else 'train'}_label_pairs"]
            permutation = self._first_two_from(pairs, permutation, generators)
        context_labels = permutation.gather(-1, label_ids)
        target = permutation.gather(-1, query_label_id[..., None])[..., 0]
        items = self._exemplars(_per_member(prototypes, torch.cat([context, query[..., None]], dim=-1)), generators)
        return self._assemble(items, context_labels, target, context == query[..., None])

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy of the readout at the query position; logits (B, T, n_labels)."""
        return query_cross_entropy(logits, batch)

    def _bursty_classes(self, B: int, K: int, generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, ...]:
        """Contexts cycling through n_context_classes distinct classes, the query's among them.

        Returns context classes (S, B, N), query classes (S, B) and each context slot's rank
        (S, B, N): the index of its class in the order the classes were drawn (query's: 0).
        """
        # Sorted member by member: one sort of S B rows takes longer than S sorts of B rows (torch 2.13, CPU).
        chosen = _draws(generators, lambda g: torch.rand(B, K, generator=g).argsort(dim=1))[..., : self.n_context_classes]
        rank = (torch.arange(self.n_pairs) % self.n_context_classes).expand(len(generators), B, -1)
        order = _draws(generators, lambda g: torch.rand(B, self.n_pairs, generator=g)).argsort(dim=-1)
        rank = rank.gather(-1, order)
        return chosen.gather(-1, rank), chosen[..., 0], rank

    def _iid_classes(self, B: int, K: int, generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
        """Context classes (S, B, N) and query classes (S, B), all i.i.d."""
        context = _draws(generators, lambda g: torch.randint(K, (B, self.n_pairs), generator=g))
        return context, _draws(generators, lambda g: torch.randint(K, (B,), generator=g))

    def _absent_query_classes(self, B: int, K: int, generators: Sequence[torch.Generator]
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """i.i.d. context classes (S, B, N) drawn from all classes except the query's (S, B)."""
        query = _draws(generators, lambda g: torch.randint(K, (B,), generator=g))
        others = _draws(generators, lambda g: torch.randint(K - 1, (B, self.n_pairs), generator=g))
        return others + (others >= query[..., None]).long(), query

    def _label_permutation(self, S: int, B: int, relabel: bool, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """(S, B, n_labels) each sequence's permutation of the label ids (the identity without relabelling)."""
        if relabel:
            return _draws(generators, lambda g: torch.rand(B, self.n_labels, generator=g)).argsort(dim=-1)
        return torch.arange(self.n_labels).expand(S, B, -1)

    def _first_two_from(self, pairs: torch.Tensor, permutation: torch.Tensor, generators: Sequence[torch.Generator]
                        ) -> torch.Tensor:
        """Permutations (S, B, n_labels) whose first two ids (the two context classes' labels) are
        one of member s's ``pairs[s]`` (S, P, 2), drawn uniformly, in random order; the other ids
        keep their order."""
        S, B, _ = permutation.shape
        pair = _per_member(pairs, _draws(generators, lambda g: torch.randint(pairs.shape[1], (B,), generator=g)))
        flip = _draws(generators, lambda g: torch.rand(B, 1, generator=g)) < 0.5  # (S, B, 1)
        pair = torch.where(flip, pair, pair.flip(-1))  # (S, B, 2)
        rest = (permutation[..., None] != pair[..., None, :]).all(-1)  # (S, B, n_labels), True for ids not in the pair
        return torch.cat([pair, permutation[rest].view(S, B, -1)], dim=-1)

    def _exemplars(self, prototypes: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """(S, B, N+1, D) the items of the prototypes (S, B, N+1, D): with within-class noise when ``noise``."""
        if self.noise == 0:
            return prototypes
        noise = _draws(generators, lambda g: torch.randn(prototypes.shape[1:], generator=g)) / math.sqrt(self.item_dim)
        return prototypes + self.noise * noise

    def _sample_fresh(self, B: int, generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, ...]:
        """Every context item a new isotropic vector; the query repeats one of them."""
        D, N = self.item_dim, self.n_pairs
        context_items = _draws(generators, lambda g: torch.randn(B, N, D, generator=g)) / math.sqrt(D)  # (S, B, N, D)
        context_labels = _draws(generators, lambda g: torch.randint(self.n_labels, (B, N), generator=g))
        pick = _draws(generators, lambda g: torch.randint(N, (B,), generator=g))  # (S, B)
        query_item = context_items.gather(2, pick[..., None, None].expand(-1, -1, 1, D))  # (S, B, 1, D)
        items = self._exemplars(torch.cat([context_items, query_item], dim=2), generators)
        matches = torch.arange(N) == pick[..., None]
        return self._assemble(items, context_labels, context_labels.gather(-1, pick[..., None])[..., 0], matches)

    def _assemble(
        self, items: torch.Tensor, context_labels: torch.Tensor, target: torch.Tensor, matches: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """items (S, B, N+1, D) and labels (S, B, N) -> the Batch fields, tokens interleaved (S, B, 2N+1, D + n_labels)."""
        S, B, N = context_labels.shape
        D = self.item_dim
        tokens = torch.empty(S, B, 2 * N + 1, self.d_input)  # every entry written once below
        tokens[..., 0::2, :D] = items
        tokens[..., 0::2, D:] = 0.0
        tokens[..., 1::2, :D] = 0.0
        tokens[..., 1::2, D:] = F.one_hot(context_labels, self.n_labels).float()
        return tokens, target, context_labels, matches


def _draws(generators: Sequence[torch.Generator], draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """(S, ...) ``draw(generator)`` for each of the S generators, stacked: each generator draws as it would alone."""
    return torch.stack([draw(generator) for generator in generators])


def _per_member(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Member s's rows of its own table: ``table`` (S, K, ...) at ``index`` (S, ...) -> (S, ..., *table.shape[2:])."""
    S, K = table.shape[:2]
    offsets = (torch.arange(S) * K).view(-1, *[1] * (index.dim() - 1))  # member s's rows start at s K
    return table.flatten(0, 1).index_select(0, (index + offsets).flatten()).view(*index.shape, *table.shape[2:])


@lru_cache(maxsize=32)
def _differ_only_in_seed(tasks: tuple[ItemLabelTask, ...]) -> bool:
    """Whether the tasks share every field but ``seed`` (so one ``_sample`` call serves them all)."""
    return len({replace(task, seed=0) for task in tasks}) == 1


@lru_cache(maxsize=32)
def _stacked_worlds(tasks: tuple[ItemLabelTask, ...]) -> dict[str, torch.Tensor]:
    """The tasks' worlds (prototypes, class labels, label pairs), each stacked along a leading member axis."""
    return {name: torch.stack([task._world[name] for task in tasks]) for name in tasks[0]._world}
