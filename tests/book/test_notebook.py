"""The notebook preamble: parameters validated first, then the device, one thread and the style."""

import pytest
import torch

from ihcore.book.chapters import FROM_SCRATCH, INTRODUCTION
from ihcore.book.notebook import start_chapter
from ihcore.spine import devices
from ihcore.spine.validation import ParameterError


def test_start_chapter_returns_the_validated_parameters_and_sets_up_the_kernel(monkeypatch):
    monkeypatch.setattr(devices, "_current", torch.device("meta"))
    torch.set_num_threads(2)
    p = start_chapter(FROM_SCRATCH, {"steps": 200, "unrelated_global": object()})
    assert p.steps == 200 and p.n_heads == FROM_SCRATCH.parameters["n_heads"].default
    assert devices.current() == torch.device("cpu") and torch.get_num_threads() == 1


def test_a_bad_value_is_refused_before_anything_is_set_up(monkeypatch):
    monkeypatch.setattr(devices, "_current", torch.device("meta"))
    with pytest.raises(ParameterError, match=r"steps = 0 is invalid: expected an integer in \[1, 200000\]"):
        start_chapter(FROM_SCRATCH, {"steps": 0})
    assert devices.current() == torch.device("meta")


def test_a_chapter_without_a_device_parameter_keeps_the_current_device(monkeypatch):
    monkeypatch.setattr(devices, "_current", torch.device("meta"))
    start_chapter(INTRODUCTION, {})
    assert devices.current() == torch.device("meta")
