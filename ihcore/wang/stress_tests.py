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
from dataclasses import dataclass, replace

import numpy as np
import torch

from ihcore.spine.markdown import markdown_table
from ihcore.spine.train import History, Seeds, train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.spine.validation import ParameterError
from ihcore.wang import laziness, six_parameter
from ihcore.wang.mixed_target import (
    NORMALISATIONS, DiscreteMixedTarget, MixedTarget, component_measure, discrete_component_measure, sample_tokens
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
    batch_size: int = 128

    def __post_init__(self) -> None:
        checks = [
            ("tokens", self.tokens, self.tokens in TOKENS, f"one of {TOKENS}"),
            ("length", self.length, self.length >= 4, "an integer >= 4"),
            ("vocabulary", self.vocabulary, self.vocabulary >= 2, "an integer >= 2"),
            ("alpha", self.alpha, 0.0 < self.alpha < 1.0, "a number in (0, 1)"),
            ("normalisation", self.normalisation, self.normalisation in NORMALISATIONS, f"one of {NORMALISATIONS}"),
            ("steps", self.steps, self.steps >= 1, "an integer >= 1"),
            ("lr", self.lr, self.lr > 0, "a number > 0"),
            ("d_model", self.d_model, self.d_model >= 2 and self.d_model % 2 == 0, "an even integer >= 2 (2 heads)"),
            ("init_scale", self.init_scale, self.init_scale > 0, "a number > 0"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1"),
        ]
        for name, value, ok, expected in checks:
            if not ok:
                raise ParameterError(f"{name} = {value!r} is invalid: expected {expected}")

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
    """The chapter's two transformer stress tests, by table row, from its parameters ``p``."""
    gaussian = TransformerStressConfig(length=p.transformer_length, vocabulary=p.vocabulary, alpha=p.alpha,
                                       w_star=p.w_star, normalisation=p.normalisation, steps=p.transformer_steps,
                                       lr=p.transformer_lr, seed=p.seed)
    return {"spine transformer, Adam": gaussian, "discrete tokens, cross-entropy": replace(gaussian, tokens="discrete")}


def train_transformer(config: TransformerStressConfig, *, device: str | torch.device | None = None,
                      progress: bool | None = None) -> tuple[AttentionOnlyTransformer, History]:
    """Train the transformer of ``config`` on ``device`` (None: the current device; the model is
    left there); 100 evaluations, each with a (CPU) checkpoint. Returns the live model and its
    history (the chapter reads both: the tangent kernel needs the model)."""
    model_config = TransformerConfig(config.width, config.width, config.length, n_layers=2, n_heads=2,
                                     d_model=config.d_model, attend_to_self=False, init_scale=config.init_scale)
    seeds = Seeds.from_base(config.seed)
    every = max(1, config.steps // 100)
    model = AttentionOnlyTransformer(model_config, seed=seeds.init)
    history = train(model, config.task(), steps=config.steps, lr=config.lr, batch_size=config.batch_size,
                    eval_every=every, measures=[config.measure()], eval_batch_size=1024, seeds=seeds,
                    checkpoint_steps=range(0, config.steps + 1, every), progress=progress, device=device)
    history.checkpoints[config.steps] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return model, history


def transformer_drift(model: AttentionOnlyTransformer, history: History, tokens: torch.Tensor, end: int) -> dict[str, float]:
    """Drift of ``model``'s readout (channel 0) from step 0 to evaluation index ``end``, computed
    on the model's device."""
    outputs, flatten = laziness.model_outputs(model, tokens)
    step = int(history.eval_steps[end])
    return laziness.drift(outputs, flatten(history.checkpoints[0]), flatten(history.checkpoints[step]))


def transformer_row(setting: str, config: TransformerStressConfig, model: AttentionOnlyTransformer,
                    history: History) -> dict:
    """The table row of a trained transformer (times: Adam steps, step 0 read as 1); kernel drift
    over phase 1 on PROBES sequences of its task."""
    steps = np.maximum(history.eval_steps, 1).astype(float)
    probe = config.task().sample(PROBES, "train", torch.Generator().manual_seed(config.seed + PROBE_SEED_OFFSET)).tokens
    drift = transformer_drift(model, history, probe, phase_one_end(history["r_G"]))
    return phase_row(setting, steps, {k: history[k] for k in ("r_G", "r_I", "loss")}, drift["kernel_drift"])


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
