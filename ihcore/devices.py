"""Where tensors live: the ``device`` parameter (``cpu``, ``cuda`` or ``auto``) of every chapter.

CPU is the default and what CI checks. A chapter (or ``python -m ihcore sweep``) calls
:func:`use` once with its ``device`` parameter; every training loop and run function
whose ``device`` argument is None then works on :func:`current`. Random draws stay on
the CPU (seeded CPU generators) and are moved afterwards, so the data and the
initialisation are the same on every device; the arithmetic on a GPU differs in the last
digits.
"""

from __future__ import annotations

import torch

from ihcore.params import ParameterError

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
