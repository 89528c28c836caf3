"""The reviewers' doubts about Wang et al., run as experiments (beyond the paper): one row per changed setting.

Each row summarises a run by the phase structure it shows (:mod:`ihcore.wang.phases`): is the
4-gram learned before the induction head, is there a plateau between them, is the switch
sharper than the 4-gram phase, how far did the loss fall, and how lazy phase 1 was (kernel
drift over [0, end of phase 1], :mod:`ihcore.wang.laziness`). The spine's attention-only
transformer runs use its training loop (:func:`ihcore.spine.train.train`) with Adam; their
sizes (:class:`TransformerStressConfig`) are this book's choice.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import numpy as np
import torch

from ihcore.spine.claims import estimate_text, median_interval, printed_decimals, rounded_text
from ihcore.spine.markdown import markdown_table
from ihcore.spine.train import History, Member, Seeds, run_in_groups, train_members
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.spine.validation import refuse_invalid
from ihcore.wang import laziness, six_parameter
from ihcore.wang.mixed_target import (
    NORMALISATIONS,
    DiscreteMixedTarget,
    MixedTarget,
    component_measure,
    discrete_component_measure,
    sample_tokens,
)
from ihcore.wang.phases import detect_phases, phase_one_end
from ihcore.wang.six_parameter import SixParameterConfig

PLATEAU_RATIO = 2.0  # T_IH / T(r_G ≥ 0.9) at least this: a plateau
SHARPER = 1.0  # sharpness ratio below this: the switch is sharper than the 4-gram phase
PROBES = 256  # probe sequences of the tangent kernel
PROBE_SEED_OFFSET = 30_000  # the probes' generator is seeded with the run's seed + this
TOKENS = ("gaussian", "discrete")


def phase_row(setting: str, t: np.ndarray, curves: dict[str, np.ndarray], kernel_drift: float) -> dict:
    """One table row from times t (E,) and curves ``r_G``, ``r_I``, ``loss`` (E,)."""
    found = detect_phases(t, curves["r_G"], curves["r_I"])
    return {
        "setting": setting,
        "T_G4": found.t_four_gram,
        "T_IH": found.t_induction,
        "4-gram first": bool(found.t_four_gram < found.t_induction),
        "plateau ratio": found.plateau_ratio,
        "plateau": bool(found.plateau_ratio >= PLATEAU_RATIO),
        "sharpness ratio": found.sharpness_ratio,
        "sharper switch": bool(found.sharpness_ratio < SHARPER),
        "final / initial loss": float(curves["loss"][-1] / curves["loss"][0]),
        "phase-1 kernel drift": kernel_drift,
    }


def six_parameter_probe(config: SixParameterConfig) -> torch.Tensor:
    """(PROBES, L) probe sequences for the tangent kernel of a six-parameter run."""
    return sample_tokens(PROBES, config.length, torch.Generator().manual_seed(config.data_seed + PROBE_SEED_OFFSET))


def six_parameter_drift(result: dict, probe: torch.Tensor, end: int) -> dict[str, float]:
    """Parameter and kernel drift of a six-parameter run from t = 0 to evaluation ``end``, on the probe's device."""
    config = SixParameterConfig(**result["config"])
    theta = torch.as_tensor(result["theta"], device=probe.device)
    outputs, start = six_parameter.output_function(config, theta[0], probe)
    _, finish = six_parameter.output_function(config, theta[end], probe)
    return laziness.drift(outputs, start, finish)


def phase_one_drift(result: dict) -> dict[str, float]:
    """:func:`six_parameter_drift` over phase 1 (t = 0 to the first r_G ≥ 0.9) on :func:`six_parameter_probe`."""
    probe = six_parameter_probe(SixParameterConfig(**result["config"]))
    return six_parameter_drift(result, probe, phase_one_end(result["r_G"]))


def six_parameter_row(setting: str, result: dict) -> dict:
    """The table row of a six-parameter run (its t = 0 evaluation left out of the phase times),
    with its :func:`phase_one_drift`."""
    drift = phase_one_drift(result)
    return phase_row(setting, result["t"][1:], {k: result[k][1:] for k in ("r_G", "r_I", "loss")}, drift["kernel_drift"])


@dataclass(frozen=True)
class TransformerStressConfig:
    """A run of the spine's 2-layer, 2-head attention-only transformer on the mixed target:
    Gaussian scalar tokens (``tokens="gaussian"``, :class:`~ihcore.wang.mixed_target.MixedTarget`)
    or one-hot tokens from ``vocabulary`` symbols with a cross-entropy loss (``"discrete"``,
    :class:`~ihcore.wang.mixed_target.DiscreteMixedTarget` with w* = ``discrete_w_star``).
    Learned absolute positions, no self-attention, small init, Adam on fresh batches. All sizes
    are this book's choice (beyond the paper); the defaults are the Wang chapter's."""

    tokens: str = "gaussian"
    length: int = 16
    vocabulary: int = 16
    alpha: float = SixParameterConfig.alpha
    w_star: float = SixParameterConfig.w_star
    discrete_w_star: float = 4.0
    normalisation: str = SixParameterConfig.normalisation
    steps: int = 1000
    lr: float = 0.01
    seed: int = 0
    d_model: int = 32
    init_scale: float = 0.1
    batch_size: int = 64

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            "tokens": (self.tokens in TOKENS, f"one of {TOKENS}"),
            "length": (self.length >= 4, "an integer >= 4"),
            "vocabulary": (self.vocabulary >= 2, "an integer >= 2"),
            "alpha": (0.0 < self.alpha < 1.0, "a number in (0, 1)"),
            "normalisation": (self.normalisation in NORMALISATIONS, f"one of {NORMALISATIONS}"),
            "steps": (self.steps >= 1, "an integer >= 1"),
            "lr": (self.lr > 0, "a number > 0"),
            "d_model": (self.d_model >= 2 and self.d_model % 2 == 0, "an even integer >= 2 (2 heads)"),
            "init_scale": (self.init_scale > 0, "a number > 0"),
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
        })

    @property
    def width(self) -> int:
        """Input and output width: 1 (a scalar token) or the vocabulary (one-hot)."""
        return 1 if self.tokens == "gaussian" else self.vocabulary

    def task(self) -> MixedTarget | DiscreteMixedTarget:
        if self.tokens == "gaussian":
            return MixedTarget(self.length, self.alpha, self.w_star, self.normalisation)
        return DiscreteMixedTarget(self.length, self.vocabulary, self.alpha, self.discrete_w_star)

    def measure(self):
        """The training loop's measure: loss, r_G, r_M, r_I (:mod:`ihcore.wang.mixed_target`)."""
        task = self.task()
        return component_measure(task) if self.tokens == "gaussian" else discrete_component_measure(task)


def transformer_configs(p) -> dict[str, TransformerStressConfig]:
    """The chapter's two transformer stress tests, by table row, from its parameters ``p`` (at seed ``p.seed``)."""
    gaussian = TransformerStressConfig(length=p.transformer_length, vocabulary=p.vocabulary, alpha=p.alpha,
                                       w_star=p.w_star, normalisation=p.normalisation, steps=p.transformer_steps,
                                       lr=p.transformer_lr, seed=p.seed)
    return {"spine transformer, Adam": gaussian, "discrete tokens, cross-entropy": replace(gaussian, tokens="discrete")}


def seed_configs(config: TransformerStressConfig, n_seeds: int) -> list[TransformerStressConfig]:
    """``config`` at seeds config.seed, ..., config.seed + n_seeds − 1 (the chapter's seeds)."""
    return [replace(config, seed=config.seed + k) for k in range(n_seeds)]


def _model(config: TransformerStressConfig) -> AttentionOnlyTransformer:
    model_config = TransformerConfig(config.width, config.width, config.length, n_layers=2, n_heads=2,
                                     d_model=config.d_model, attend_to_self=False, init_scale=config.init_scale)
    return AttentionOnlyTransformer(model_config, seed=Seeds.from_base(config.seed).init)


def train_transformers(configs: list[TransformerStressConfig], *, device: str | torch.device | None = None,
                       progress: bool | None = None) -> list[tuple[AttentionOnlyTransformer, History]]:
    """Train the transformer of every config; configs that differ only in ``seed`` train as one
    ensemble (:func:`ihcore.spine.train.train_members`, seeds ``Seeds.from_base(seed)``), so each
    member is the run :func:`train_transformer` gives for its config. 100 evaluations, each with a
    (CPU) checkpoint. Returns (live model, history) per config, in order (the chapter reads both:
    the tangent kernel needs the model)."""
    def run_group(group: list[TransformerStressConfig]) -> list[tuple[AttentionOnlyTransformer, History]]:
        first = group[0]
        every = max(1, first.steps // 100)
        models = [_model(config) for config in group]
        members = [Member(model, config.task(), Seeds.from_base(config.seed), [config.measure()])
                   for model, config in zip(models, group)]
        histories = train_members(members, steps=first.steps, lr=first.lr, batch_size=first.batch_size,
                                  eval_every=every, eval_batch_size=1024,
                                  checkpoint_steps=range(0, first.steps + 1, every), progress=progress, device=device)
        for model, history in zip(models, histories):
            history.checkpoints[first.steps] = {n: v.detach().to("cpu", copy=True) for n, v in model.state_dict().items()}
        return list(zip(models, histories))

    return run_in_groups(configs, run_group)


def train_transformer(config: TransformerStressConfig, *, device: str | torch.device | None = None,
                      progress: bool | None = None) -> tuple[AttentionOnlyTransformer, History]:
    """:func:`train_transformers` of one config."""
    return train_transformers([config], device=device, progress=progress)[0]


def transformer_drift(model: AttentionOnlyTransformer, history: History, tokens: torch.Tensor, end: int) -> dict[str, float]:
    """Drift of ``model``'s readout (channel 0) from step 0 to evaluation index ``end``, computed
    on the model's device."""
    step = int(history.eval_steps[end])
    return laziness.model_drift(model, tokens, history.checkpoints[0], history.checkpoints[step])


def transformer_row(setting: str, config: TransformerStressConfig, model: AttentionOnlyTransformer,
                    history: History) -> dict:
    """The table row of a trained transformer (times: Adam steps, step 0 read as 1); kernel drift
    over phase 1 on PROBES sequences of its task."""
    steps = np.maximum(history.eval_steps, 1).astype(float)
    probe = config.task().sample(PROBES, "train", torch.Generator().manual_seed(config.seed + PROBE_SEED_OFFSET)).tokens
    drift = transformer_drift(model, history, probe, phase_one_end(history["r_G"]))
    return phase_row(setting, steps, {k: history[k] for k in ("r_G", "r_I", "loss")}, drift["kernel_drift"])


ROW_MARKS = ("4-gram first", "plateau", "sharper switch")
NEVER = ("T_IH", "plateau ratio")  # NaN in a seed's row when its induction head never switched on: read as inf


def seeds_row(setting: str, rows: list[dict]) -> dict:
    """One table row over seeds from the per-seed rows (:func:`phase_row`) of one setting, with
    the same columns and a ``seeds`` count after the setting: the marks as counts ``"k/S"`` of
    seeds, the numbers as their median with the order-statistic interval
    (:func:`ihcore.spine.claims.median_interval`; :func:`values_text`). T_IH and the plateau
    ratio of a seed whose induction head never switched on are infinite; another number that
    could not be read (NaN) is left out of its median (``"–"`` if none is left)."""
    summary: dict = {"setting": setting, "seeds": len(rows)}
    for name in rows[0]:
        if name == "setting":
            continue
        if name in ROW_MARKS:
            summary[name] = f"{sum(bool(r[name]) for r in rows)}/{len(rows)}"
            continue
        values = [math.inf if name in NEVER and math.isnan(r[name]) else r[name] for r in rows]
        summary[name] = values_text([v for v in values if not math.isnan(v)])
    return summary


def single_row(row: dict) -> dict:
    """A deterministic run's row (:func:`phase_row`) with ``seeds`` = 1, in :func:`seeds_row`'s columns."""
    return {"setting": row["setting"], "seeds": 1, **{k: v for k, v in row.items() if k != "setting"}}


def values_text(values: list[float]) -> str:
    """``"median [lower, upper]"`` over seeds: the median and its order-statistic interval
    (:func:`ihcore.spine.claims.median_interval`), all three rounded to the decimals the median is
    printed with (:func:`ihcore.spine.claims.printed_decimals`)."""
    if not values:
        return "–"
    lower, upper, _ = median_interval(values)
    middle = float(statistics.median(values))
    decimals = printed_decimals(middle, lower, upper) if math.isfinite(middle) else None

    def text(value: float) -> str:
        if not math.isfinite(value) or decimals is None:
            return estimate_text(value)
        return rounded_text(value, decimals)

    return f"{text(middle)} [{text(lower)}, {text(upper)}]"


def rows_markdown(rows: list[dict]) -> str:
    """The stress-test rows as a Markdown table (numbers to 2 significant digits, ✓ / ✗)."""

    def cell(value) -> str:
        if isinstance(value, bool):
            return "✓" if value else "✗"
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:.2g}"
        return str(value)

    header = list(rows[0])
    return markdown_table(header, [[cell(row[k]) for k in header] for row in rows])
