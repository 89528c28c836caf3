"""Where tensors live: the ``device`` parameter (``cpu``, ``cuda`` or ``auto``) of every chapter.

CPU is the default and what CI checks. A chapter (or ``python -m ihcore sweep``) calls
:func:`use` once with its ``device`` parameter; every training loop and run function
whose ``device`` argument is None then works on :func:`current`. Random draws stay on
the CPU (seeded CPU generators) and are moved afterwards, so the data and the
initialisation are the same on every device; the arithmetic on a GPU differs in the last
digits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ihcore.spine.validation import ParameterError

DEVICE_CHOICES = ("cpu", "cuda", "auto")

_current = torch.device("cpu")


def resolve(name: str) -> torch.device:
    """The torch device for a ``device`` parameter value; ``auto`` is cuda when one is available.

    Raises :class:`ParameterError` for an unknown name, or for ``cuda`` on a machine
    without a CUDA device, before any work starts.
    """
    if name not in DEVICE_CHOICES:
        raise ParameterError(f"device = {name!r} is invalid: expected one of {', '.join(map(repr, DEVICE_CHOICES))}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device = 'cuda' is invalid here: torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(name)


def problem(name: str) -> str | None:
    """None if ``name`` resolves on this machine, else why not (a message naming ``device``);
    the ``check`` of the chapters' ``device`` parameter, so that a bad value fails before a kernel starts."""
    try:
        resolve(name)
    except ParameterError as error:
        return str(error)
    return None


def use(name: str) -> torch.device:
    """Make ``name`` (resolved) the device of every later run whose ``device`` is None; returns it."""
    global _current
    _current = resolve(name)
    return _current


def current() -> torch.device:
    """The device set by :func:`use` (CPU until then)."""
    return _current


def pick(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device (a parameter value is resolved), or :func:`current` when None."""
    if device is None:
        return _current
    return resolve(device) if isinstance(device, str) else torch.device(device)


def of(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); CPU for a module with neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


class TensorBatch:
    """Base of the tasks' (frozen dataclass) batches: ``batch.to(device)`` is :func:`move`."""

    def to(self, device: str | torch.device):
        """The batch with every tensor field on ``device``."""
        return move(self, device)


def move(batch, device: str | torch.device):
    """``batch`` on ``device``: the one way batches move. A tensor; a dataclass (every tensor
    field moved, the others kept); a mapping of those (values moved); anything else as it is.

    On the device the tensors already live on, the tensors are the same objects (no copy).
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if dataclasses.is_dataclass(batch):
        changes = {f.name: getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)
                   if isinstance(getattr(batch, f.name), torch.Tensor)}
        return dataclasses.replace(batch, **changes)
    if isinstance(batch, dict):
        return {key: move(value, device) for key, value in batch.items()}
    return batch


def stack(batches: Sequence):
    """Batches (dataclasses of one type) as one, every tensor field stacked along a new leading axis
    (S, ...), the other fields the first batch's: an ensemble's batches, member s's at index s."""
    first = batches[0]
    return dataclasses.replace(first, **{f.name: torch.stack([getattr(b, f.name) for b in batches])
                                         for f in dataclasses.fields(first) if isinstance(getattr(first, f.name), torch.Tensor)})
