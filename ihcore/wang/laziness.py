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


def chunked_kernel(chunks: list[Callable[[torch.Tensor], torch.Tensor]], parameters: torch.Tensor) -> torch.Tensor:
    """K = J Jᵀ of the outputs of several chunks of probes, J stacked over the chunks.

    When each output depends on its own probe only (a model's outputs on a batch), the
    Jacobian of the whole batch is the stack of the chunks' Jacobians; ``jacrev`` of one
    chunk costs (chunk size)² forward passes' work instead of N², so chunks of a few dozen
    probes make a kernel on hundreds of probes cheap."""
    jacobian = torch.cat([torch.func.jacrev(outputs)(parameters) for outputs in chunks])  # (N, P)
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


def model_drift(model: torch.nn.Module, tokens: torch.Tensor, start: dict[str, torch.Tensor],
                end: dict[str, torch.Tensor], chunk: int = 32) -> dict[str, float]:
    """:func:`drift` of ``model``'s readout (:func:`model_outputs`) on ``tokens`` between the
    state_dicts ``start`` and ``end``, the kernel computed ``chunk`` probes at a time
    (:func:`chunked_kernel`)."""
    pieces = [model_outputs(model, tokens[k:k + chunk]) for k in range(0, tokens.shape[0], chunk)]
    flatten = pieces[0][1]
    first, last = flatten(start), flatten(end)
    chunks = [outputs for outputs, _ in pieces]
    return {
        "parameter_drift": relative_change(first, last),
        "kernel_drift": relative_change(chunked_kernel(chunks, first), chunked_kernel(chunks, last)),
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
