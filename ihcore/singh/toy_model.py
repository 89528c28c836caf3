"""Singh et al.'s toy model of interacting subcircuits (Fig 5a, App. 9): a rank-1 three-factor model.

The model is ``a ⊗ b ⊗ c`` with ``a, b, c`` in R^dim, fit to a target ``a* ⊗ b* ⊗ c*``
(entries of a*, b*, c* ~ N(0, 1)) by gradient descent on ``½ mean((a⊗b⊗c − a*⊗b*⊗c*)²)``.
Each factor stands for a subcircuit: the gradient of one is scaled by how well the other
two are already learned, so from a small random start all three grow slowly together —
a plateau — then fast: an abrupt drop from smooth factor dynamics. Clamping a factor to
its target (the analogue of clamping a subcircuit) removes that multiplicative delay.
The paper's measure of factor ``a`` is its misalignment ``1 − cos²(a, a*)`` (1 = unaligned,
0 = learned). The initial scale of the factors (0.1) is this book's reconstruction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from ihcore.spine.curves import first_step_below
from ihcore.spine.train import progress_enabled
from ihcore.spine.validation import refuse_invalid

FACTORS = "abc"


@dataclass(frozen=True)
class ToyConfig:
    """One run of the toy model: dimension 20, lr 1, 1000 steps (the paper's); ``clamped``
    names the factors held at their targets ("", "c" or "bc"); initial entries ~ N(0, init_scale²)."""

    dim: int = 20
    steps: int = 1000
    lr: float = 1.0
    init_scale: float = 0.1
    clamped: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        refuse_invalid(self, {
            **{name: (getattr(self, name) >= 1, "an integer >= 1") for name in ("dim", "steps")},
            **{name: (getattr(self, name) > 0, "a number > 0") for name in ("lr", "init_scale")},
            "clamped": (not set(self.clamped) - set("bc") and len(set(self.clamped)) == len(self.clamped),
                        "distinct factors among 'b', 'c'"),
            "seed": (self.seed >= 0, "an integer >= 0"),
        })


def run(config: ToyConfig, *, device=None, progress: bool | None = None) -> dict:
    """Gradient descent on the three-factor model (numpy: ``device`` is not used).

    Returns the config's fields, ``loss`` (steps + 1,) and ``misalignment`` (steps + 1,) =
    1 − cos²(a, a*), before each update and after the last.
    """
    rng = np.random.default_rng(config.seed)
    targets = {name: rng.standard_normal(config.dim) for name in FACTORS}
    factors = {name: config.init_scale * rng.standard_normal(config.dim) for name in FACTORS}
    for name in config.clamped:
        factors[name] = targets[name].copy()
    target = np.einsum("i,j,k->ijk", targets["a"], targets["b"], targets["c"])
    n = target.size
    loss, misalignment = np.empty(config.steps + 1), np.empty(config.steps + 1)
    for step in tqdm(range(config.steps + 1), desc="toy model", disable=not progress_enabled(progress)):
        a, b, c = factors["a"], factors["b"], factors["c"]
        error = np.einsum("i,j,k->ijk", a, b, c) - target  # (dim, dim, dim)
        loss[step] = 0.5 * np.mean(error**2)
        misalignment[step] = 1 - (a @ targets["a"]) ** 2 / ((a @ a) * (targets["a"] @ targets["a"]))
        if step == config.steps:
            break
        gradients = {
            "a": np.einsum("ijk,j,k->i", error, b, c) / n,
            "b": np.einsum("ijk,i,k->j", error, a, c) / n,
            "c": np.einsum("ijk,i,j->k", error, a, b) / n,
        }
        for name in FACTORS:
            if name not in config.clamped:
                factors[name] = factors[name] - config.lr * gradients[name]
    return {**asdict(config), "loss": loss, "misalignment": misalignment}


def steps_to_fraction(result: dict, fraction: float = 0.1) -> float:
    """The first step at which the loss is below ``fraction`` of its initial value (inf if never)."""
    relative = result["loss"] / result["loss"][0]
    step = first_step_below(np.arange(len(relative)), relative, fraction)
    return np.inf if step is None else float(step)
