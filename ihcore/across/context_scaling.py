"""Phase-change time against context length N in the standard attention-only transformer.

Musat et al. 2025 prove t_ICL = Θ(N²) for their minimal model (Theorem 2: gradient flow on the
3-parameter model, orthonormal inputs, query last). Whether the law carries over to a
standard transformer trained as usual is a question beyond the paper; here it is asked of the spine's
:class:`~ihcore.spine.transformer.AttentionOnlyTransformer` trained with Adam on two tasks, each
generalised to N item–label pairs:

* ``task="singh"`` — Singh et al.'s few-shot task at N pairs (reconstruction). The paper's
  task has 2 pairs: one of the query's class, one of a distractor. At N pairs the context
  holds **N distinct classes, each once, the query's among them** (``ItemLabelTask`` with
  ``n_context_classes = N``), in random order; labels are re-drawn per sequence, so the N
  context classes get N distinct labels out of ``n_labels``; ``n_labels`` (default 8) is
  **fixed across N**, so only the number of candidate pairings varies (more labels alone
  delay the phase change, Singh et al. 2024, Fig. 6). The default N stay <= n_labels / 2: as N nears
  n_labels, copying a context label gains only ln(n_labels / N) over chance, and at
  N = n_labels nothing, which removes the copying signal of the plateau for a reason
  other than N (:data:`DEFAULT_N`). Everything else is the Singh chapter's
  default: 50 low-rank training classes, item_dim 64, 8 heads, d_model 64, Adam lr 3e-3,
  batch 32 (:func:`ihcore.singh.subcircuits.singh_model`).
* ``task="musat"`` — Musat et al.'s token task ``TokenTask(n_pairs=N, n_tokens=max(32, 2N))``
  with the Musat chapter's standard model (1 head per layer, ``std_d_model``) and training
  (``std_lr``, ``std_batch_size``): :func:`ihcore.musat.tasks.token_task_model`, the model the chapter builds.
  The same caution as for ``n_labels``: the default N keep 2N <= n_tokens / 2. At 2N =
  n_tokens every token is in every context, so a readout of the context average (the first
  signal in Musat et al.'s mechanism, as a published summary of the paper describes it) is uniform and carries nothing; N = 16 with 32
  tokens had not even reached the ln N plateau after 3000 steps (seed 0).

**Phase-change time** (stated before any run): the first evaluation step at which the loss
on a fixed evaluation batch falls below ``0.4 ln N``. Before the phase change the network
copies *a* label from the context without matching; with N distinct labels in context its
loss is then ln N (:func:`plateau_loss`), and 0.4 ln N is Singh et al.'s rule (0.4 ln 2)
scaled with that plateau: 60% of the way from the plateau to a perfect fit. Runs that never
cross within their ``steps`` are *censored*: reported, counted, left out of the fits
(which biases a slope downwards if the slowest runs are the ones censored).

The fit (:func:`scaling_fit`): per task, each seed's log-log slope of phase-change time
against N (:func:`ihcore.spine.fits.slope_interval`), and their mean with a 95% Student-t
interval over seeds. The chapter's claim judges the per-seed slopes as a claim over seeds:
their median and its order-statistic interval (:mod:`ihcore.spine.claims`), against the
rule fixed before the sweep: Θ(N²) reproduced if the slope is in [1.5, 2.5], partly if in
[1, 3]. The seeds of one N train as one ensemble (:func:`run_many`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ihcore.musat import StandardRunConfig
from ihcore.musat.tasks import TokenTask, token_task_model
from ihcore.singh import SinghSetting
from ihcore.singh.subcircuits import singh_model
from ihcore.spine import curves, fits, measures
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.train import Member, Seeds, run_in_groups, train_members
from ihcore.spine.transformer import AttentionOnlyTransformer
from ihcore.spine.validation import refuse, refuse_invalid

TASKS = ("singh", "musat")
PHASE_CHANGE_FRACTION = 0.4  # of the plateau loss ln N (Singh et al.: 0.4 ln 2 at N = 2)

# Defaults of the sweep (the seeds are the chapter's n_seeds), chosen so that both tasks fit
# in the chapter's time budget on one core (the seeds of each N trained as one ensemble).
# Singh: N <= n_labels / 2, so that copying a context label still gains ln(n_labels / N) >= ln 2
# over chance; at N = n_labels every label is in context and the plateau's copy signal vanishes.
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
DEFAULT_N = {"singh": (2, 3, 4), "musat": (2, 3, 4, 6, 8)}
DEFAULT_STEPS = {"singh": 1100, "musat": 550}  # caps; the slowest default runs crossed at 880 and 450
# Evaluation grids resolve the smallest N's phase change (about 550 and 220 steps) to < 5%;
# singh's is the Singh study's eval_every.
DEFAULT_EVAL_EVERY = {"singh": SinghSetting.eval_every, "musat": 10}


@dataclass(frozen=True)
class ScalingConfig:
    """One run: task and context length N, model and training sizes, steps cap and evaluation.

    Fields marked singh or musat are used by that task only. The defaults are the Singh
    study's setting (:class:`ihcore.singh.SinghSetting`) but for ``n_labels`` (8, fixed across
    N) and the steps cap; build a run with :func:`scaling_config` to get the musat task's
    model and training (:class:`ihcore.musat.StandardRunConfig`) too.
    """

    task: str = "singh"  # "singh" or "musat"
    n_pairs: int = 2  # N, item–label pairs in the context
    seed: int = 0  # base seed: init, data and evaluation seeds derive from it
    steps: int = DEFAULT_STEPS["singh"]  # cap: a run that has not crossed by then is censored
    eval_every: int = DEFAULT_EVAL_EVERY["singh"]
    eval_batch_size: int = 256
    n_heads: int = SinghSetting.n_heads
    d_model: int = SinghSetting.d_model
    lr: float = SinghSetting.lr  # Adam
    batch_size: int = SinghSetting.batch_size
    n_labels: int = 8  # singh: label set, fixed across N (>= N)
    n_classes: int = SinghSetting.n_classes  # singh: training classes
    item_dim: int = SinghSetting.item_dim  # singh: item feature size
    prototypes: str = SinghSetting.prototypes  # singh: class prototype generator
    n_tokens: int = StandardRunConfig.n_tokens  # musat: vocabulary is max(n_tokens, 2N)
    optimizer: str = "adam"  # or "sgd" (plain: no momentum, no weight decay)
    init_scale: float = 1.0  # every weight ~ N(0, init_scale^2 / fan_in); < 1: a small init

    def __post_init__(self) -> None:
        largest_n = min(self.n_labels, self.n_classes) if self.task == "singh" else None
        refuse_invalid(self, {
            "task": (self.task in TASKS, f"one of {TASKS}"),
            "n_pairs": (self.n_pairs >= 2 and (largest_n is None or self.n_pairs <= largest_n),
                        "an integer >= 2" + (f" and <= min(n_labels, n_classes) = {largest_n}" if largest_n else "")),
            "steps": (self.steps >= 1, "an integer >= 1"),
            "eval_every": (self.eval_every >= 1, "an integer >= 1"),
            "d_model": (self.d_model >= 1 and self.d_model % self.n_heads == 0, f"a multiple of n_heads = {self.n_heads}"),
            "optimizer": (self.optimizer in ("adam", "sgd"), "'adam' or 'sgd'"),
            "init_scale": (self.init_scale > 0, "a number > 0"),
        })


def scaling_config(task: str, n_pairs: int, seed: int = 0, **overrides) -> ScalingConfig:
    """The config of ``task`` at N = ``n_pairs`` with its study's defaults, then ``overrides``.

    singh: the Singh study's model, lr, batch, classes, item size and prototypes (the
    :class:`ScalingConfig` defaults); musat: the Musat study's standard model (its
    ``d_model``, 1 head), ``lr``, ``batch_size`` and ``n_tokens``.
    """
    if task == "singh":
        base = {}
    elif task == "musat":
        base = {"n_heads": 1, "d_model": StandardRunConfig.d_model, "lr": StandardRunConfig.lr,
                "batch_size": StandardRunConfig.batch_size, "n_tokens": StandardRunConfig.n_tokens}
    else:
        refuse("task", task, f"one of {TASKS}")
    defaults = {"steps": DEFAULT_STEPS[task], "eval_every": DEFAULT_EVAL_EVERY[task], **base}
    return ScalingConfig(task=task, n_pairs=n_pairs, seed=seed, **{**defaults, **overrides})


def default_configs(
    seeds: Sequence[int] = DEFAULT_SEEDS, n_values: dict[str, Sequence[int]] | None = None, **overrides
) -> list[ScalingConfig]:
    """The default sweep: every (task, N, seed) of ``n_values`` (default :data:`DEFAULT_N`) and ``seeds``."""
    n_values = DEFAULT_N if n_values is None else n_values
    return [scaling_config(task, n, seed, **overrides) for task, ns in n_values.items() for n in ns for seed in seeds]


def chapter_configs(p) -> list[ScalingConfig]:
    """The cross-paper chapter's N-scaling runs from its validated parameters ``p``: both tasks,
    N up to ``singh_n_max`` and ``musat_n_max`` (:func:`context_lengths`), ``n_seeds``
    seeds from ``seed``."""
    lengths = {task: context_lengths(task, n_max) for task, n_max in (("singh", p.singh_n_max), ("musat", p.musat_n_max))}
    return default_configs(range(p.seed, p.seed + p.n_seeds), lengths)


def context_lengths(task: str, n_max: int) -> tuple[int, ...]:
    """The N of the chapter's sweep up to ``n_max``: every N from 2 for singh (few labels), and
    2, 3, 4, 6, 8, 12, ... (about √2 apart on the log axis) for musat."""
    if task == "singh":
        return tuple(range(2, n_max + 1))
    return tuple(n for n in sorted({2**k for k in range(1, 12)} | {3 * 2**k for k in range(11)}) if 2 <= n <= n_max)


def plateau_loss(n_pairs: int) -> float:
    """ln N: cross-entropy of a readout uniform over the N distinct labels in context (the target among them)."""
    return math.log(n_pairs)


def phase_change_threshold(n_pairs: int, fraction: float = PHASE_CHANGE_FRACTION) -> float:
    """``fraction`` · ln N; at N = 2 and the default fraction, Singh et al.'s 0.4 ln 2."""
    return fraction * plateau_loss(n_pairs)


def build_task(config: ScalingConfig) -> ItemLabelTask | TokenTask:
    """The task of ``config`` at its N (module docstring); the singh task's world is seeded by the init seed."""
    if config.task == "musat":
        return TokenTask(n_pairs=config.n_pairs, n_tokens=max(config.n_tokens, 2 * config.n_pairs))
    return ItemLabelTask(
        n_pairs=config.n_pairs, item_dim=config.item_dim, n_labels=config.n_labels, n_classes=config.n_classes,
        n_heldout_classes=100, prototypes=config.prototypes, labels="per_sequence", bursty=1.0,
        n_context_classes=config.n_pairs, seed=Seeds.from_base(config.seed).init,
    )


def build_model(config: ScalingConfig, task) -> AttentionOnlyTransformer:
    """The task's standard model, its weights drawn from the init seed and scaled by ``config.init_scale``."""
    seed = Seeds.from_base(config.seed).init
    if config.task == "musat":
        model = token_task_model(task, config.d_model, seed, config.n_heads)
    else:
        model = singh_model(task, config.n_heads, config.d_model, seed)
    if config.init_scale == 1.0:
        return model
    return AttentionOnlyTransformer(dataclasses.replace(model.config, init_scale=config.init_scale), seed=seed)


def run(config: ScalingConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train one run; returns the config's fields, the loss curve and the phase-change time
    (:func:`run_many` of one config).

    Result keys: the fields of ``config``; ``eval_steps``, ``loss``, ``accuracy`` (E,) on the
    fixed evaluation batch; ``plateau_loss`` (ln N); ``threshold`` (0.4 ln N);
    ``phase_change`` (first evaluation step with loss below the threshold, None if never);
    ``censored`` (bool). ``device``: where to train (None: :func:`ihcore.spine.devices.current`).
    """
    return run_many([config], device=device, progress=progress)[0]


def run_many(configs: Sequence[ScalingConfig], *, device: str | torch.device | None = None,
             progress: bool | None = None) -> list[dict]:
    """:func:`run` of every config, in order; the configs that differ only in ``seed`` (one task
    at one N) train as one ensemble (:func:`ihcore.spine.train.train_members`), each member with
    its own task world, init, data and evaluation seeds."""
    def run_group(group: list[ScalingConfig]) -> list[dict]:
        setting = group[0]
        members = []
        for config in group:
            task = build_task(config)
            members.append(Member(build_model(config, task), task, Seeds.from_base(config.seed),
                                  [measures.loss_and_accuracy(task, ["train"])]))
        histories = train_members(
            members, steps=setting.steps, lr=setting.lr, batch_size=setting.batch_size,
            eval_every=setting.eval_every, eval_splits=["train"], eval_batch_size=setting.eval_batch_size,
            optimizer=setting.optimizer, progress=progress, device=device,
        )
        return [_result(config, history) for config, history in zip(group, histories)]

    return run_in_groups(configs, run_group)


def _result(config: ScalingConfig, history) -> dict:
    loss = history["loss/train"]
    threshold = phase_change_threshold(config.n_pairs)
    phase_change = curves.first_step_below(history.eval_steps, loss, threshold)
    return {
        **asdict(config),
        "eval_steps": history.eval_steps,
        "loss": loss,
        "accuracy": history["accuracy/train"],
        "plateau_loss": plateau_loss(config.n_pairs),
        "threshold": threshold,
        "phase_change": phase_change,
        "censored": phase_change is None,
    }


def phase_change_at(result: dict, fraction: float) -> int | None:
    """The run's phase-change step under another threshold ``fraction`` · ln N (None if never); for sensitivity."""
    return curves.first_step_below(result["eval_steps"], result["loss"], phase_change_threshold(result["n_pairs"], fraction))


def scaling_fit(results: Sequence[dict], level: float = 0.95, fraction: float | None = None) -> dict[str, dict]:
    """Per task: log-log slope of phase-change time against N for each seed, their mean and t interval.

    ``results``: dicts of :func:`run` (several tasks, N and seeds). ``fraction`` other than
    None recomputes the times under ``fraction`` · ln N from the stored curves. Per task the
    value is a dict: ``n_values`` (sorted N), ``seeds``, ``times`` {seed: [time or None per N]},
    ``per_seed_slopes`` {seed: slope} for the seeds with at least two uncensored N,
    ``dropped_seeds`` (fewer than two), ``mean``, ``low``, ``high`` (NaN if fewer than two
    seeds' slopes), ``level``, ``n_censored`` and ``censored`` [(N, seed), ...], ``n_runs``.
    """
    summary = {}
    for task in dict.fromkeys(r["task"] for r in results):
        runs = [r for r in results if r["task"] == task]
        n_values = sorted({r["n_pairs"] for r in runs})
        seeds = sorted({r["seed"] for r in runs})

        def time_of(r: dict) -> int | None:
            return r["phase_change"] if fraction is None else phase_change_at(r, fraction)

        times = {s: [next((time_of(r) for r in runs if r["seed"] == s and r["n_pairs"] == n), None) for n in n_values]
                 for s in seeds}
        censored = [(r["n_pairs"], r["seed"]) for r in runs if time_of(r) is None]
        usable = [s for s in seeds if sum(t is not None for t in times[s]) >= 2]
        interval = fits.slope_interval(
            [n_values] * len(usable), [[math.nan if t is None else t for t in times[s]] for s in usable], level,
        ) if usable else None  # censored (NaN) points are dropped by the log-log fit
        slopes = dict(zip(usable, interval.slopes.tolist())) if interval else {}
        summary[task] = {
            "n_values": n_values, "seeds": seeds, "times": times,
            "per_seed_slopes": slopes, "dropped_seeds": [s for s in seeds if s not in slopes],
            "mean": interval.mean if interval else math.nan,
            "low": interval.low if interval else math.nan,
            "high": interval.high if interval else math.nan,
            "level": level, "n_censored": len(censored), "censored": censored, "n_runs": len(runs),
        }
    return summary

