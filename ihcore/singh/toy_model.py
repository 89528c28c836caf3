"""Singh et al.'s toy model of interacting subcircuits: a rank-1 three-factor model.

The model is ``a ⊗ b ⊗ c`` with ``a, b, c`` in R^dim, fit to a target ``a* ⊗ b* ⊗ c*``
(entries of a*, b*, c* ~ N(0, 1)) by gradient descent on ``½ mean((a⊗b⊗c − a*⊗b*⊗c*)²)``.
Each factor stands for a subcircuit: the gradient of one is scaled by how well the other
two are already learned, so from a small random start all three grow slowly together —
a plateau — then fast: an abrupt drop from smooth factor dynamics. Clamping a factor to
its target (the analogue of clamping a subcircuit) removes that multiplicative delay.
Progress of factor ``a`` is ``1 − cos²(a, a*)`` (1 = unaligned, 0 = learned).
"""

from __future__ import annotations

import numpy as np


def train_toy(
    dim: int = 20, steps: int = 1000, lr: float = 1.0, init_scale: float = 0.1, clamped: str = "", seed: int = 0
) -> dict[str, np.ndarray]:
    """Gradient descent on the three-factor model; ``clamped`` names factors held at their targets ("c", "bc").

    Returns ``loss`` (steps + 1,) and ``progress`` (steps + 1,) = 1 − cos²(a, a*), before
    each update and after the last. Initial factors: entries ~ N(0, init_scale²).
    """
    if set(clamped) - set("bc"):
        raise ValueError(f"clamped must name factors among 'b', 'c', got {clamped!r}")
    rng = np.random.default_rng(seed)
    targets = {name: rng.standard_normal(dim) for name in "abc"}
    factors = {name: init_scale * rng.standard_normal(dim) for name in "abc"}
    for name in clamped:
        factors[name] = targets[name].copy()
    target = np.einsum("i,j,k->ijk", targets["a"], targets["b"], targets["c"])
    n = target.size
    loss, progress = np.empty(steps + 1), np.empty(steps + 1)
    for step in range(steps + 1):
        a, b, c = factors["a"], factors["b"], factors["c"]
        error = np.einsum("i,j,k->ijk", a, b, c) - target  # (dim, dim, dim)
        loss[step] = 0.5 * np.mean(error**2)
        progress[step] = 1 - (a @ targets["a"]) ** 2 / ((a @ a) * (targets["a"] @ targets["a"]))
        if step == steps:
            break
        gradients = {
            "a": np.einsum("ijk,j,k->i", error, b, c) / n,
            "b": np.einsum("ijk,i,k->j", error, a, c) / n,
            "c": np.einsum("ijk,i,j->k", error, a, b) / n,
        }
        for name in "abc":
            if name not in clamped:
                factors[name] = factors[name] - lr * gradients[name]
    return {"loss": loss, "progress": progress}
