"""The first call of every chapter notebook, right after its ``parameters`` cell."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import torch

from ihcore.book.chapters import Chapter
from ihcore.spine import devices, plots


def start_chapter(chapter: Chapter, namespace: Mapping[str, Any]) -> SimpleNamespace:
    """Validate the chapter's parameters in ``namespace`` (the notebook's ``globals()``, where
    papermill injected its values), then set up the kernel: the chosen device for every run
    whose ``device`` is None, one torch thread (bit-identical results on one machine) and the
    book's plot style. Returns the validated parameters; raises
    :class:`~ihcore.spine.validation.ParameterError` before any work if a value is invalid.
    """
    p = chapter.parameters.validate(namespace)
    if "device" in chapter.parameters.names():
        devices.use(p.device)
    torch.set_num_threads(1)
    plots.use_style()
    return p
