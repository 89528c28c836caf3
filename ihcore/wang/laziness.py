"""How lazy is a training phase: drift of the parameters and of the empirical tangent kernel.

In the lazy (kernel) regime a network's tangent kernel K = J Jᵀ, with J (N, P) the
Jacobian of its N outputs on fixed probe inputs with respect to its P parameters, stays
close to its initial value, and so do the parameters relative to their size. Two numbers
over a phase [0, t]:

* parameter drift ‖θ_t − θ_0‖ / ‖θ_0‖;
* kernel drift ‖K_t − K_0‖_F / ‖K_0‖_F.

Both ≪ 1 mean lazy; both ≳ 1 mean the features moved (a "rich" phase).
Computations run on the device of the parameters (for a module: its own device).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def tangent_kernel(outputs: Callable[[torch.Tensor], torch.Tensor], parameters: torch.Tensor) -> torch.Tensor:
    """K = J Jᵀ (N, N) of ``outputs``: (P,) -> (N,) at ``parameters`` (P,)."""
    jacobian = torch.func.jacrev(outputs)(parameters)  # (N, P)
    return jacobian @ jacobian.T


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """‖after − before‖ / ‖before‖ (Frobenius for matrices)."""
    return float(torch.linalg.norm(after - before) / torch.linalg.norm(before))


def drift(outputs: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, end: torch.Tensor) -> dict[str, float]:
    """Parameter drift and kernel drift between flat parameter vectors ``start`` and ``end`` (P,)."""
    return {
        "parameter_drift": relative_change(start, end),
        "kernel_drift": relative_change(tangent_kernel(outputs, start), tangent_kernel(outputs, end)),
    }


def model_outputs(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable]:
    """(outputs, flatten) for a module: ``outputs(flat)`` is the readout at the last position,
    channel 0, (N,), of ``model`` with its parameters set from the flat vector; ``flatten(state)``
    turns a state_dict (or the model's own parameters) into that flat vector."""
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    names = [name for name, _ in model.named_parameters()]
    shapes = [parameter.shape for _, parameter in model.named_parameters()]
    sizes = [parameter.numel() for _, parameter in model.named_parameters()]

    def outputs(flat: torch.Tensor) -> torch.Tensor:
        values = {n: chunk.view(s) for n, chunk, s in zip(names, torch.split(flat, sizes), shapes)}
        return torch.func.functional_call(model, values, (tokens,))[:, -1, 0]

    def flatten(state: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([state[n].reshape(-1).to(device) for n in names])

    return outputs, flatten
