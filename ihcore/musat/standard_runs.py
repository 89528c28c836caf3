"""One training run of the standard model on the token task: :class:`StandardRunConfig` and :func:`run`.

The standard model is a 2-layer attention-only transformer (:func:`ihcore.musat.tasks.token_task_model`)
trained with Adam on :class:`ihcore.musat.tasks.TokenTask`. Its induction circuit is read off
the weights (:mod:`ihcore.spine.circuit_weights`): the previous-position stripe of layer 0,
the matching and copying diagonals of layer 1 (Musat et al.'s Fig. 2), and their means, the
measures alpha3~, beta2~, gamma3~ of the paper's v2 (Eqs. 20-22, known from a secondary
source). The task, the sizes and every hyperparameter are this book's reconstruction; so is
"emergence" for these measures: reaching 50% (or 10%) of the final value, since their scale
differs from the minimal model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ihcore.spine.validation import refuse_invalid
from ihcore.musat.emergence import THRESHOLDS, emergence_times, in_order
from ihcore.musat.tasks import TokenTask, token_task_model
from ihcore.spine import measures
from ihcore.spine.circuit_weights import (
    READOUT_NAMES, copying_ov, matching_qk, position_qk, circuit_readout_measure, stripe_contrast, token_qk,
)
from ihcore.spine.train import Member, Seeds, run_in_groups, train_members

# product: the diagonal its contrast is measured on (-1: key = query - 1)
PRODUCT_OFFSETS = {"previous position": -1, "control": 0, "matching": 0, "copying": 0}


@dataclass(frozen=True)
class StandardRunConfig:
    """One run of the standard model; the defaults are the Musat chapter's (its ``std_*`` parameters).

    n_pairs: N; n_tokens: the vocabulary (>= 2N); d_model: the residual width (1 head per
    layer); Adam with ``lr`` for ``steps`` steps of ``batch_size`` sequences; the measures are
    taken about ``n_evals`` times on ``eval_batch_size`` sequences.
    """

    n_pairs: int = 8
    n_tokens: int = 32
    d_model: int = 64
    steps: int = 800
    lr: float = 3e-3
    batch_size: int = 64
    n_evals: int = 40
    eval_batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        def integer(value, low: int) -> bool:
            return isinstance(value, int) and value >= low

        refuse_invalid(self, {
            "n_pairs": (integer(self.n_pairs, 2), "an integer >= 2"),
            "n_tokens": (integer(self.n_tokens, 2 * self.n_pairs), f"an integer >= 2 n_pairs = {2 * self.n_pairs}"),
            "d_model": (integer(self.d_model, 1), "an integer >= 1"),
            "steps": (integer(self.steps, 1), "an integer >= 1"),
            "lr": (self.lr > 0, "a number > 0"),
            "batch_size": (integer(self.batch_size, 1), "an integer >= 1"),
            "n_evals": (integer(self.n_evals, 1), "an integer >= 1"),
            "eval_batch_size": (integer(self.eval_batch_size, 1), "an integer >= 1"),
            "seed": (integer(self.seed, 0), "an integer >= 0"),
        })


def run(config: StandardRunConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train ``config`` on ``device`` (None: the current device); ``progress``: the training
    loop's bar (None: on unless disabled, False: off).

    Returns the configuration's fields and (CPU arrays, E evaluations): ``eval_steps`` (E,),
    ``loss`` and ``accuracy`` (E,) on the training distribution, the three measures
    ``alpha3_tilde``, ``beta2_tilde``, ``gamma3_tilde`` (E,) and, divided by their final
    values, ``normalised`` (name -> (E,)); their emergence steps ``T_<name>@<c>`` (c = 0.5,
    0.1); the final weight products ``products`` (name of :data:`PRODUCT_OFFSETS` -> matrix:
    positions (T, T), layer-0 tokens (V, V), matching (V, V), copying (V, V)) and their
    stripe contrasts ``contrasts``. The one-config case of :func:`run_many`.
    """
    return run_many([config], device=device, progress=progress)[0]


def run_many(configs: Sequence[StandardRunConfig], *, device: str | torch.device | None = None,
             progress: bool | None = None) -> list[dict]:
    """:func:`run` of every config, in order; configs that differ only in ``seed`` train as one
    ensemble (:func:`ihcore.spine.train.train_members`: each member its own init, data and
    evaluation seeds), so each result equals ``run(config)`` to float rounding."""
    def run_group(group: list[StandardRunConfig]) -> list[dict]:
        first = group[0]
        task = TokenTask(n_pairs=first.n_pairs, n_tokens=first.n_tokens)
        members = []
        for config in group:
            seeds = Seeds.from_base(config.seed)
            members.append(Member(token_task_model(task, first.d_model, seeds.init), task, seeds,
                                  [measures.loss_and_accuracy(task, ["train"]), circuit_readout_measure()]))
        histories = train_members(
            members, steps=first.steps, lr=first.lr, batch_size=first.batch_size,
            eval_every=max(1, first.steps // first.n_evals), eval_batch_size=first.eval_batch_size,
            progress=progress, device=device,
        )
        return [_result(config, member.model, history) for config, member, history in zip(group, members, histories)]

    return run_in_groups(configs, run_group)


def label_row_contrast(matrix) -> float:
    """:func:`stripe_contrast` of key = query - 1 on the label rows alone (odd 0-based query positions: the labels,
    the only tokens whose previous token the circuit needs); "elsewhere" is the rest of those rows' causal part."""
    matrix = torch.as_tensor(matrix).detach()
    n = matrix.shape[0]
    rows = torch.arange(1, n, 2)
    stripe = matrix[rows, rows - 1]
    rest = torch.cat([matrix[r, [m for m in range(r + 1) if m != r - 1]] for r in rows.tolist()])
    return float((stripe.mean() - rest.mean()) / rest.std())


def mean_pattern(model, task: TokenTask, seed: int, batch_size: int = 256) -> np.ndarray:
    """(T, T) layer-0 attention pattern (head 0) averaged over ``batch_size`` sequences drawn from ``seed``:
    the attention the weights produce, token and position terms together."""
    batch = task.sample(batch_size, "train", torch.Generator().manual_seed(seed))
    with torch.no_grad():
        _, cache = model.run_with_cache(batch.tokens.to(next(model.parameters()).device), names=["layer0.attn.pattern"])
    pattern = cache["layer0.attn.pattern"]  # (B, H, T, T)
    return pattern[:, 0].mean(0).cpu().numpy()


def _result(config: StandardRunConfig, model, history) -> dict:
    pattern = mean_pattern(model, TokenTask(config.n_pairs, config.n_tokens), Seeds.from_base(config.seed).eval)
    products = {
        "previous position": position_qk(model).detach(),
        "control": token_qk(model).detach(),
        "matching": matching_qk(model).detach(),
        "copying": copying_ov(model).detach(),
    }
    normalised = {name: history[name] / history[name][-1] for name in READOUT_NAMES}
    steps = history.eval_steps
    return {
        **asdict(config), "eval_steps": steps, "loss": history["loss/train"], "accuracy": history["accuracy/train"],
        **{name: history[name] for name in READOUT_NAMES}, "normalised": normalised,
        **emergence_times(steps, np.stack([normalised[name] for name in READOUT_NAMES], axis=1), names=READOUT_NAMES),
        "products": {name: matrix.numpy() for name, matrix in products.items()},
        "contrasts": {name: stripe_contrast(products[name], offset) for name, offset in PRODUCT_OFFSETS.items()},
        "pattern": pattern,
        "label_row_contrasts": {"previous position": label_row_contrast(products["previous position"]),
                                "attention pattern": label_row_contrast(pattern)},
    }


def order_count(result: dict, thresholds=THRESHOLDS) -> int:
    """At how many of ``thresholds`` the measures emerge in the order gamma3~ < beta2~ < alpha3~."""
    return sum(in_order(result, c, READOUT_NAMES) for c in thresholds)


def chapter_config(p) -> StandardRunConfig:
    """The Musat chapter's standard run, from its validated parameters ``p`` (``std_*`` and ``seed``)."""
    return StandardRunConfig(n_pairs=p.std_n_pairs, n_tokens=p.std_n_tokens, d_model=p.std_d_model, steps=p.std_steps,
                             lr=p.std_lr, batch_size=p.std_batch_size, seed=p.seed)


def chapter_configs(p) -> list[StandardRunConfig]:
    """The chapter's standard runs: :func:`chapter_config` at seeds ``seed .. seed + n_seeds - 1`` (one ensemble)."""
    return [replace(chapter_config(p), seed=p.seed + i) for i in range(p.n_seeds)]
