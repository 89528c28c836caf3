"""The reviewers' doubts about Wang et al., run as experiments: one row per changed setting.

Each row summarises a run by the phase structure it shows (:mod:`ihcore.wang.phases`): is the
4-gram learned before the induction head, is there a plateau between them, is the switch
sharper than the 4-gram phase, how far did the loss fall, and how lazy phase 1 was (kernel
drift over [0, end of phase 1], :mod:`ihcore.wang.laziness`). The spine's attention-only
transformer runs use its training loop (:func:`ihcore.spine.train.train`) with Adam.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ihcore.spine.markdown import markdown_table
from ihcore.spine.train import History, Seeds, train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.wang import laziness, six_parameter
from ihcore.wang.phases import detect_phases

PLATEAU_RATIO = 2.0  # T_IH / T(r_G ≥ 0.9) at least this: a plateau
SHARPER = 1.0  # sharpness ratio below this: the switch is sharper than the 4-gram phase


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


def phase_one_end(t: np.ndarray, r_four_gram: np.ndarray) -> int:
    """Index of the first evaluation with r_G ≥ 0.9 (the end of phase 1); the last if never."""
    hits = np.flatnonzero(r_four_gram >= 0.9)
    return int(hits[0]) if hits.size else len(t) - 1


def six_parameter_drift(result: dict, probe: torch.Tensor, end: int) -> dict[str, float]:
    """Parameter and kernel drift of a six-parameter run from t = 0 to evaluation ``end``, on the probe's device."""
    config = result["config"]
    theta = torch.as_tensor(result["theta"], device=probe.device)
    outputs, start = six_parameter.output_function(config, theta[0], probe)
    _, finish = six_parameter.output_function(config, theta[end], probe)
    return laziness.drift(outputs, start, finish)


def train_transformer(task, measure, *, d_input: int, d_output: int, length: int, steps: int, lr: float,
                      seed: int, d_model: int = 32, init_scale: float = 0.1, batch_size: int = 128,
                      progress: bool | None = None,
                      device: str | torch.device | None = None) -> tuple[AttentionOnlyTransformer, History]:
    """The spine's 2-layer, 2-head attention-only transformer (learned absolute positions,
    no self-attention), small init, trained with Adam on ``task`` on ``device`` (None: the
    current device; the model is left there); 100 evaluations, each with a (CPU) checkpoint."""
    config = TransformerConfig(d_input, d_output, length, n_layers=2, n_heads=2, d_model=d_model,
                               attend_to_self=False, init_scale=init_scale)
    seeds = Seeds.from_base(seed)
    every = max(1, steps // 100)
    model = AttentionOnlyTransformer(config, seed=seeds.init)
    history = train(model, task, steps=steps, lr=lr, batch_size=batch_size, eval_every=every,
                    measures=[measure], eval_batch_size=1024, seeds=seeds,
                    checkpoint_steps=range(0, steps + 1, every), progress=progress, device=device)
    history.checkpoints[steps] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return model, history


def transformer_drift(model: AttentionOnlyTransformer, history: History, tokens: torch.Tensor, end: int) -> dict[str, float]:
    """Drift of ``model``'s readout (channel 0) from step 0 to evaluation index ``end``, computed
    on the model's device."""
    outputs, flatten = laziness.model_outputs(model, tokens)
    step = int(history.eval_steps[end])
    return laziness.drift(outputs, flatten(history.checkpoints[0]), flatten(history.checkpoints[step]))


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
