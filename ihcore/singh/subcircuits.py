"""Singh et al.'s three subcircuits of an induction circuit, and training runs that clamp them.

The circuit on ``x_1 y_1 x_2 y_2 x_q`` in a 2-layer attention-only transformer (Singh et al.
2024, Sec. 5 and Fig 5b; layers counted from 0 here, so the paper's "layer 1" is layer 0):

* **A** (steps 1, 2): a layer-0 head attends from each label to the previous token and
  copies the item into the label's position (previous-token head);
* **B** (steps 3qk, 4): the layer-1 head's query at ``x_q`` matches the label whose
  preceding item is of the query's class;
* **C** (steps 3v, 5): the layer-1 head's value/output path copies that label to the output.

Each training condition clamps some of them to their ideal form (:data:`CONDITIONS`), with
only one layer-1 head active (the others removed from the start), so what is left must be
learned. The setting every run shares is :class:`SinghSetting` (defined once here: the
chapter's parameters, the book's benchmarks and the cross-paper runs take their defaults
from it); a clamped run is a :class:`ClampedRunConfig` and :func:`run` trains one and
returns a small dict; runs are independent of each other. :func:`run_many` trains many
configurations at once: the seeds of one setting as one batched ensemble
(:func:`ihcore.spine.train.train_members`), each seed with its own heads.
:func:`train_baselines` trains the unclamped model at several seeds, as one ensemble, with
every measure the chapter inspects and returns them live (:func:`train_baseline`: one seed).

**Clamps shared by an ensemble.** A clamp built with fixed head numbers, or from one
member's model (the layer-0 clamp reads layer 1's query and key weights), cannot serve the
other members of a vmapped ensemble. :func:`member_clamp` builds the clamp of a condition
that reads both from the module it is called on: the heads from a (2, H) boolean buffer
:data:`HEAD_MASKS` (:func:`attach_heads`: row 0 the previous-token head, row 1 the active
head), the weights from the module's parameters. Inside the ensemble's forward pass the
first member's module carries every member's parameters and buffers in turn, so one clamp
built on it serves them all; measures use a clamp built on each member's own module.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ihcore.spine import clamps, curves, measures
from ihcore.spine.hooks import replace
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.train import History, Member, Seeds, run_in_groups, train, train_members
from ihcore.spine.transformer import POSITIONALS, AttentionOnlyTransformer, TransformerConfig
from ihcore.spine.validation import refuse_invalid

# condition -> (subcircuits clamped to ideal, subcircuits left to learn)
CONDITIONS = {
    "none": ("", "ABC"),
    "1 (PT attention)": ("part of A", "ABC"),
    "1,2 (layer 0: A)": ("A", "BC"),
    "1,2,3qk,4 (match: A+B)": ("AB", "C"),
    "3v,5 (copy: C)": ("C", "AB"),
    "1,2,3v,5 (layer 0 + copy: A+C)": ("AC", "B"),
}

PLATEAU_LOSS = math.log(2)  # two labels in context: guessing between them costs ln 2
PHASE_CHANGE_LOSS = 0.4 * PLATEAU_LOSS  # Singh et al.'s threshold: 40% of the plateau loss ln 2
PROTOTYPES = ("lowrank", "isotropic")
BASELINE_SPLITS = ("train", "relabel", "in_context")


@dataclass(frozen=True)
class SinghSetting:
    """The paper's setting as this book runs it: task, model and training of the unclamped baseline.

    Paper (Singh et al. 2024, Sec. 3 and 4): 2 context pairs and a query, labels re-drawn per
    sequence from 5, 50 training classes; 2 attention-only layers of 8 heads, d_model 64;
    Adam, batch 32. This book's reconstruction: generated non-centred low-rank item
    features of dimension 64 instead of ResNet-18 features of Omniglot images (512), and
    Adam lr 3e-3 for 1000 steps instead of lr 1e-5 for 31,250 steps (the CPU budget).
    ``eval_batch_size`` sequences per evaluation split; ``seed`` is the base seed of
    :class:`ihcore.spine.train.Seeds`.
    """

    n_classes: int = 50
    n_labels: int = 5
    item_dim: int = 64
    prototypes: str = "lowrank"
    n_heads: int = 8
    d_model: int = 64
    n_layers: int = 2
    positional: str = "learned"
    layer_norm: bool = False
    steps: int = 1000
    lr: float = 3e-3
    batch_size: int = 32
    eval_every: int = 25
    eval_batch_size: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        refuse_invalid(self, self.rules())

    def rules(self) -> dict[str, tuple[bool, str]]:
        """Field -> (valid?, what is expected): every problem is reported at once (:func:`refuse_invalid`)."""
        at_least_one = ("item_dim", "n_heads", "n_layers", "steps", "batch_size", "eval_every", "eval_batch_size")
        return {
            **{name: (getattr(self, name) >= 2, "an integer >= 2") for name in ("n_classes", "n_labels")},
            **{name: (getattr(self, name) >= 1, "an integer >= 1") for name in at_least_one},
            "d_model": (self.d_model >= 1 and (self.n_heads < 1 or self.d_model % self.n_heads == 0),
                        f"a positive multiple of n_heads = {self.n_heads}"),
            "positional": (self.positional in POSITIONALS, f"one of {POSITIONALS}"),
            "prototypes": (self.prototypes in PROTOTYPES, f"one of {PROTOTYPES}"),
            "lr": (self.lr > 0, "a number > 0"),
            "seed": (self.seed >= 0, "an integer >= 0"),
        }


@dataclass(frozen=True)
class ClampedRunConfig(SinghSetting):
    """One training run under a clamp condition of :data:`CONDITIONS`, with one layer-1 head active.

    The setting's fields (:class:`SinghSetting`), then: ``condition``; ``previous_token_head``,
    the layer-0 head given the ideal previous-token pattern in condition "1";
    ``active_head``, the one layer-1 head kept (None: every head, only for the unclamped
    condition "none"). The default 1200 steps are those of the chapter's unclamped one-head run
    (its clamped runs are shorter: their phase change comes early); 256 evaluation sequences per split.
    """

    steps: int = 1200
    eval_batch_size: int = 256
    condition: str = "none"
    previous_token_head: int = 0
    active_head: int | None = 0

    def rules(self) -> dict[str, tuple[bool, str]]:
        """The setting's rules (:meth:`SinghSetting.rules`) and the run's: the heads, and the two
        layers and the active head every clamped condition needs."""
        heads = f"a head 0 .. {self.n_heads - 1}"
        unclamped = self.condition == "none"
        active_ok = (self.active_head is None and unclamped
                     or self.active_head is not None and 0 <= self.active_head < self.n_heads)
        return {
            **super().rules(),
            "n_layers": (self.n_layers >= 1 and (unclamped or self.n_layers == 2),
                         "an integer >= 1" if unclamped else f"2 under condition {self.condition!r}"),
            "condition": (self.condition in CONDITIONS, f"one of {list(CONDITIONS)}"),
            "previous_token_head": (0 <= self.previous_token_head < self.n_heads, heads),
            "active_head": (active_ok, f"{heads} or None" if unclamped else f"{heads} under condition {self.condition!r}"),
        }


def condition_clamp(condition: str, model, previous_token_head: int, active_head: int | None) -> clamps.Clamp:
    """The clamp of ``condition`` (a key of ``CONDITIONS``) on a 2-layer model (Singh et al., Fig 5b).

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


HEAD_MASKS = "singh_head_masks"  # buffer name: (2, H) bool, row 0 the previous-token head, row 1 the active head


def attach_heads(model, previous_token_head: int, active_head: int) -> None:
    """Give ``model`` its heads as a non-persistent (2, H) boolean buffer :data:`HEAD_MASKS`
    (not in its state_dict), read by :func:`member_clamp`."""
    masks = torch.zeros(2, model.config.n_heads, dtype=torch.bool, device=model.W_E.device)
    masks[0, previous_token_head] = masks[1, active_head] = True
    model.register_buffer(HEAD_MASKS, masks, persistent=False)


def member_clamp(condition: str, model) -> clamps.Clamp:
    """The clamp of ``condition`` as :func:`condition_clamp` builds it, with the heads and the
    layer-1 weights read, at each forward pass, from ``model``'s buffer :data:`HEAD_MASKS`
    and parameters (:func:`attach_heads`): shared by every member of an ensemble whose
    template is ``model`` (see the module docstring). Same operations, same values."""
    if condition not in CONDITIONS or condition == "none" and not hasattr(model, HEAD_MASKS):
        return condition_clamp(condition, model, 0, None)  # an unknown condition is refused there
    if not hasattr(model, HEAD_MASKS):
        raise ValueError(f"condition {condition!r} needs the model's heads: call attach_heads first")

    def head(row: int) -> torch.Tensor:
        return getattr(model, HEAD_MASKS)[row]  # (H,) bool, this member's

    def keep(activation: torch.Tensor, name: str) -> torch.Tensor:  # layer1.head_out (B, T, H, d), as ablate_heads
        return activation * head(1)[None, None, :, None]

    def pattern_of(row: int, ideal: torch.Tensor, only_last: bool):
        def fn(activation: torch.Tensor, name: str) -> torch.Tensor:  # (B, H, T, T)
            where = head(row)[None, :, None, None]
            if only_last:
                rows = torch.zeros(activation.shape[-2], dtype=torch.bool, device=activation.device)
                rows[-1] = True
                where = where & rows[None, None, :, None]
            return replace(ideal[:, None], where)(activation, name)
        return fn

    stored: dict[str, torch.Tensor] = {}

    def keep_scores(activation: torch.Tensor, name: str) -> None:
        stored["scores"] = activation

    def copy_for(batch):
        def logits(activation: torch.Tensor, name: str) -> torch.Tensor:
            scores = stored["scores"][:, :, batch.query_position][:, :, batch.label_positions]  # (B, H, N)
            to_labels = torch.where(head(1)[None, :, None], scores, torch.zeros((), dtype=scores.dtype)).sum(1)
            query_logits = torch.full_like(activation[:, -1], float("-inf")).scatter(1, batch.context_labels, to_labels)
            return torch.cat([activation[:, :-1], query_logits[:, None]], dim=1)
        return {"layer1.attn.scores": keep_scores, "logits": logits}

    layer0 = clamps.shifted_input_for_qk(model, 1)
    parts = {
        "none": [],
        "1 (PT attention)": [lambda batch: {"layer0.attn.pattern": pattern_of(0, clamps.previous_token_pattern(batch), False)}],
        "1,2 (layer 0: A)": [layer0],
        "1,2,3qk,4 (match: A+B)": [lambda batch: {"layer1.attn.pattern": pattern_of(1, clamps.match_pattern(batch), True)}],
        "3v,5 (copy: C)": [copy_for],
        "1,2,3v,5 (layer 0 + copy: A+C)": [layer0, copy_for],
    }[condition]
    clamp = clamps.Clamp(lambda batch: {"layer1.head_out": keep})
    for part in parts:
        clamp = clamp + (part if isinstance(part, clamps.Clamp) else clamps.Clamp(part))
    return clamps.Clamp(clamp.hooks_for, condition)


def singh_task(n_labels: int, n_classes: int, item_dim: int, prototypes: str, seed: int) -> ItemLabelTask:
    """The paper's few-shot task: 2 context pairs (query's class and one distractor), labels re-drawn per sequence.

    A fifth of the unordered label pairs (2 of the 10 for 5 labels, as in the authors' run
    script) is held out of training for the ``relabel`` split; 100 held-out classes.
    """
    return ItemLabelTask(
        n_pairs=2, item_dim=item_dim, n_labels=n_labels, n_classes=n_classes, n_heldout_classes=100,
        prototypes=prototypes, labels="per_sequence", n_context_classes=2, seed=seed,
        heldout_label_pairs=n_labels * (n_labels - 1) // 2 // 5,
    )


def singh_model(task: ItemLabelTask, n_heads: int, d_model: int, seed: int, n_layers: int = 2,
                positional: str = "learned", layer_norm: bool = False) -> AttentionOnlyTransformer:
    """Attention-only transformer sized for ``task``: one logit per label. The paper's architecture
    is ``positional="rotary", layer_norm=True`` (pre-LN blocks, RoPE on queries and keys, a final LN)."""
    config = TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_layers=n_layers, n_heads=n_heads,
                               d_model=d_model, positional=positional, layer_norm=layer_norm)
    return AttentionOnlyTransformer(config, seed=seed)


def task_and_model(setting: SinghSetting) -> tuple[ItemLabelTask, AttentionOnlyTransformer, Seeds]:
    """The task, the freshly initialised model and the seeds of ``setting`` (task world and init share the init seed)."""
    seeds = Seeds.from_base(setting.seed)
    task = singh_task(setting.n_labels, setting.n_classes, setting.item_dim, setting.prototypes, seeds.init)
    model = singh_model(task, setting.n_heads, setting.d_model, seeds.init, setting.n_layers,
                        setting.positional, setting.layer_norm)
    return task, model, seeds


def run(config: ClampedRunConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train under ``config.condition`` on ``device`` (None: the current device); returns the
    config's fields, the loss curve and the phase change.

    Result keys: the fields of ``config``, ``eval_steps`` (E,), ``loss`` and
    ``loss_in_context`` (E,) on training and held-out classes, evaluated under the same
    clamp, and ``phase_change`` (first step with training-class loss below 0.4 ln 2, or None).
    """
    task, model, seeds = task_and_model(config)
    clamp = condition_clamp(config.condition, model, config.previous_token_head, config.active_head)
    history = train(
        model, task, steps=config.steps, lr=config.lr, batch_size=config.batch_size, eval_every=config.eval_every,
        measures=[measures.loss_and_accuracy(task, ["train", "in_context"], hooks=clamp)],
        eval_splits=["train", "in_context"], eval_batch_size=config.eval_batch_size,
        seeds=seeds, hooks=clamp, progress=progress, device=device,
    )
    return _result(config, history)


def ensemble_key(config: ClampedRunConfig) -> ClampedRunConfig:
    """What the members of one ensemble share: every field but the seed and the heads (each
    seed keeps its own heads; a run with every head active stays apart from one-head runs)."""
    heads = {"previous_token_head": 0, "active_head": None if config.active_head is None else 0}
    return dataclasses.replace(config, seed=0, **heads)


def run_many(configs, *, device: str | torch.device | None = None, progress: bool | None = None) -> list[dict]:
    """:func:`run` of every config, each result equal to ``run(config)`` to float rounding.

    Configs that differ only in seed and heads (:func:`ensemble_key`) train as one batched
    ensemble (:func:`~ihcore.spine.train.train_members`), every member with its own task,
    initialisation, data and heads, under one shared :func:`member_clamp`.
    """
    def run_group(group: list[ClampedRunConfig]) -> list[dict]:
        key = ensemble_key(group[0])
        built = [task_and_model(config) for config in group]
        for config, (_, model, _) in zip(group, built):
            if config.active_head is not None:
                attach_heads(model, config.previous_token_head, config.active_head)
        shared = member_clamp(key.condition, built[0][1])  # built on the ensemble's template module
        members = [Member(model, task, seeds, [measures.loss_and_accuracy(task, ["train", "in_context"],
                                                                          hooks=member_clamp(key.condition, model))],
                          hooks=shared) for task, model, seeds in built]
        histories = train_members(
            members, steps=key.steps, lr=key.lr, batch_size=key.batch_size, eval_every=key.eval_every,
            eval_splits=["train", "in_context"], eval_batch_size=key.eval_batch_size, progress=progress, device=device,
        )
        return [_result(config, history) for config, history in zip(group, histories)]

    return run_in_groups(configs, run_group, key=ensemble_key)


def _result(config: ClampedRunConfig, history: History) -> dict:
    loss = history["loss/train"]
    return {
        **asdict(config),
        "eval_steps": history.eval_steps,
        "loss": loss,
        "loss_in_context": history["loss/in_context"],
        "phase_change": curves.first_step_below(history.eval_steps, loss, PHASE_CHANGE_LOSS),
    }


def train_baselines(
    setting: SinghSetting, n_seeds: int = 1, *, device: str | torch.device | None = None, progress: bool | None = None,
) -> list[tuple[ItemLabelTask, AttentionOnlyTransformer, History]]:
    """The unclamped baseline (Singh et al., Fig 3) at seeds ``setting.seed .. + n_seeds - 1``,
    trained as one batched ensemble, live: one ``(task, model, history)`` per seed.

    Evaluated on the three splits of :data:`BASELINE_SPLITS` with loss, accuracy and both
    head scores of every head; checkpoints every 2 evaluations and at the end (for the
    ablations over training). A direct call rather than :func:`run`: the chapter inspects
    the trained models and their checkpoints.
    """
    trained = train_settings([dataclasses.replace(setting, seed=setting.seed + i) for i in range(n_seeds)],
                             checkpoints=True, device=device, progress=progress)
    return [(task, model, history) for task, model, _, history in trained]


def train_settings(
    settings: Sequence[SinghSetting], *, checkpoints: bool, device: str | torch.device | None = None,
    progress: bool | None = None, compiled: bool | None = None, threads: int = 1,
) -> list[tuple[ItemLabelTask, AttentionOnlyTransformer, Seeds, History]]:
    """Unclamped baselines that differ only in seed, trained as one batched ensemble: one
    ``(task, model, seeds, history)`` per setting, evaluated as :func:`train_baselines` says, with
    its checkpoints (every 2 evaluations and at the end) when ``checkpoints``; ``compiled`` and
    ``threads`` as in :func:`ihcore.spine.train.train_members`."""
    first = settings[0]
    splits = list(BASELINE_SPLITS)
    built = [task_and_model(setting) for setting in settings]
    members = [Member(model, task, seeds, [measures.loss_and_accuracy(task, splits), measures.head_scores("train")])
               for task, model, seeds in built]
    checkpoint_steps = sorted({*range(0, first.steps, 2 * first.eval_every), first.steps}) if checkpoints else ()
    histories = train_members(
        members, steps=first.steps, lr=first.lr, batch_size=first.batch_size, eval_every=first.eval_every,
        eval_splits=splits, eval_batch_size=first.eval_batch_size, checkpoint_steps=checkpoint_steps,
        progress=progress, device=device, compiled=compiled, threads=threads,
    )
    return [(task, model, seeds, history) for (task, model, seeds), history in zip(built, histories)]


def train_baseline(
    setting: SinghSetting, *, device: str | torch.device | None = None, progress: bool | None = None,
) -> tuple[ItemLabelTask, AttentionOnlyTransformer, History]:
    """The unclamped baseline at ``setting.seed`` alone (:func:`train_baselines` with one seed)."""
    return train_baselines(setting, 1, device=device, progress=progress)[0]


def strongest_heads(history) -> dict[str, int]:
    """``previous_token_head`` (layer 0) and ``induction_head`` (layer 1) with the highest final scores."""
    return {"previous_token_head": int(history["previous_token_score"][-1, 0].argmax()),
            "induction_head": int(history["induction_score"][-1, 1].argmax())}


def clamped_losses(task, split: str, clamps_by_name: Mapping[str, clamps.Clamp]) -> measures.Measure:
    """Measure: ``loss/<split>/<name>``, the loss with clamp ``name`` applied at evaluation only.

    Applied to checkpoints of an unclamped run (or passed to ``train``), each tracks what
    its clamp leaves free (Singh et al., App. Fig 10): e.g. with subcircuits A and B
    clamped, the loss says how far C has come.
    """
    per_clamp = {name: measures.loss_and_accuracy(task, [split], hooks=clamp) for name, clamp in clamps_by_name.items()}

    def measure(model, batches) -> dict[str, np.ndarray]:
        return {f"loss/{split}/{name}": m(model, batches)[f"loss/{split}"] for name, m in per_clamp.items()}

    return measure


def phase_change_or_censored(result: dict) -> float:
    """The run's phase-change step, or ``inf`` if it had none within its steps."""
    return np.inf if result["phase_change"] is None else float(result["phase_change"])
