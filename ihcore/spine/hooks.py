"""Named hook points: every activation of a model is a place experiments can reach.

A :class:`HookPoint` is an identity module with a name. A model calls one at each
activation worth reaching; experiments attach functions to hook points *from outside*
(recording, ablating, replacing, clamping) and the model code never changes. This is the
design of TransformerLens's ``HookPoint``, reduced to what this book needs.

A hook function has the signature ``fn(activation, name) -> activation | None``: returning
``None`` keeps the activation, returning a tensor replaces it for everything downstream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, str], "torch.Tensor | None"]


class HookPoint(nn.Module):
    """Identity on its input, except for the hook functions currently attached."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""  # set by HookedModule.setup_hooks
        self.fns: list[HookFn] = []

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        # Without hook functions a hook point is the identity: skip nn.Module's call machinery
        # (it is most of a small model's forward time). Functions attach through ``fns`` only.
        return self.forward(activation) if self.fns else activation

    def forward(self, activation: torch.Tensor) -> torch.Tensor:
        for fn in self.fns:
            result = fn(activation, self.name)
            if result is not None:
                if result.shape != activation.shape:
                    raise ValueError(
                        f"hook on {self.name!r} returned shape {tuple(result.shape)}, "
                        f"expected {tuple(activation.shape)}"
                    )
                activation = result
        return activation


class HookedModule(nn.Module):
    """A module whose hook points are reachable by name.

    Subclasses create their :class:`HookPoint` attributes, then call
    :meth:`setup_hooks`; each hook point is named by its module path
    (``layers.0.pattern`` becomes ``layer0.attn.pattern`` through ``hook_name``).
    """

    def setup_hooks(self) -> None:
        self.hook_points: dict[str, HookPoint] = {}
        for path, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = self.hook_name(path)
                self.hook_points[module.name] = module

    def hook_name(self, module_path: str) -> str:
        """Public name of the hook point at ``module_path``; identity by default."""
        return module_path

    @contextmanager
    def hooks(self, fns: Mapping[str, HookFn | Sequence[HookFn]]) -> Iterator[None]:
        """Attach hook functions by hook-point name for the duration of a ``with`` block.

        The functions are removed on exit, also when the block raises. Hooks are applied
        in the order given, after any hooks attached by an enclosing ``with``.
        """
        unknown = sorted(set(fns) - set(self.hook_points))
        if unknown:
            raise KeyError(f"unknown hook points {unknown}; valid names: {sorted(self.hook_points)}")
        attached: list[HookPoint] = []
        try:
            for name, fn_or_fns in fns.items():
                for fn in [fn_or_fns] if callable(fn_or_fns) else fn_or_fns:
                    self.hook_points[name].fns.append(fn)
                    attached.append(self.hook_points[name])
            yield
        finally:
            for point in reversed(attached):
                point.fns.pop()  # with-blocks nest, so this block's functions are each point's last

    def run_with_cache(
        self, *inputs: torch.Tensor, names: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward pass that also returns the activations at ``names`` (default: all).

        Cached activations are detached; the output keeps its graph.
        """
        cache: dict[str, torch.Tensor] = {}
        names = list(self.hook_points) if names is None else list(names)
        with self.hooks({name: record(cache) for name in names}):
            output = self(*inputs)
        return output, cache


def record(store: dict[str, torch.Tensor]) -> HookFn:
    """Hook that stores a detached copy of the activation under its hook name."""

    def fn(activation: torch.Tensor, name: str) -> None:
        store[name] = activation.detach().clone()

    return fn


def replace(
    value: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
    where: torch.Tensor | None = None,
) -> HookFn:
    """Hook that overwrites the activation with ``value``, under an optional mask.

    ``value`` is a tensor broadcastable to the activation, or a function of the
    activation. ``where`` is a boolean mask broadcastable to the activation: True
    entries are overwritten, False entries keep the computed activation, so gradients
    still flow through them. This is the one clamp mechanism all experiments build on.
    """

    def fn(activation: torch.Tensor, name: str) -> torch.Tensor:
        new = value(activation) if callable(value) else value
        new = torch.as_tensor(new, dtype=activation.dtype, device=activation.device)
        if where is None:
            return new.expand_as(activation)
        return torch.where(where.to(activation.device), new, activation)

    return fn


def other_heads(n_heads: int, kept: Sequence[int]) -> list[int]:
    """The heads 0..n_heads-1 not in ``kept``: what :func:`ablate_heads` removes to keep only ``kept``."""
    return [h for h in range(n_heads) if h not in kept]


def ablate_heads(heads: Sequence[int], head_dim: int = 2) -> HookFn:
    """Hook that zeroes the given heads of a per-head activation.

    For ``layer{l}.head_out`` (shape ``(batch, pos, head, d_model)``) the head axis is 2;
    for ``layer{l}.attn.pattern`` (``(batch, head, query, key)``) pass ``head_dim=1``.
    """

    def fn(activation: torch.Tensor, name: str) -> torch.Tensor:
        shape = [1] * activation.ndim
        shape[head_dim] = activation.shape[head_dim]
        keep = torch.ones(shape, dtype=torch.bool, device=activation.device)
        keep.view(-1)[list(heads)] = False
        return activation * keep

    return fn
