"""nbval's re-execution of the from-scratch chapter is a check of another CPU.

The committed notebooks were executed with the math libraries pinned to their AVX2 paths
(:mod:`ihcore.spine.reproducibility`). ``conftest.py`` has nbval re-execute the from-scratch
chapter (five trained seeds) under :data:`ALTERNATE_CPU_ENVIRONMENT` (ATen's own dispatch, the
best the CPU has, and MKL's ``COMPATIBLE`` path); nbval then requires every checked output to be
identical to the committed one, and the session's end requires every claim to keep its verdict
with an interval meeting the committed one. These tests check that the setting is a real change:
it changes what training computes, as another CPU does, and reaches that notebook's kernel.
``make cross-cpu`` does the same for every chapter with seeds.
"""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import conftest
from ihcore.book.cross_cpu import ALTERNATE_CPU_ENVIRONMENT, environment
from ihcore.spine.reproducibility import PINNED_CPU_ENVIRONMENT

# 40 Adam steps of a 2-layer model on the item-label task; prints the trained weights.
TRAIN = """
from ihcore.spine.reproducibility import pin_cpu_numerics
pin_cpu_numerics()
import torch
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.train import train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
task = ItemLabelTask(n_pairs=4, item_dim=32, n_labels=8, n_classes=64, n_heldout_classes=16)
model = AttentionOnlyTransformer(TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_heads=2), seed=0)
train(model, task, steps=40, lr=1e-3, batch_size=64, eval_every=40, progress=False)
print(" ".join(f"{v:.9e}" for v in torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()))
"""


def trained_weights() -> np.ndarray:
    """The weights TRAIN prints, trained in a fresh process under this process's environment."""
    result = subprocess.run([sys.executable, "-c", TRAIN], capture_output=True, text=True, check=True, timeout=300)
    return np.array(result.stdout.split(), dtype=float)


def test_the_alternate_setting_changes_training_in_the_last_digits_only():
    pinned = trained_weights()
    with environment(ALTERNATE_CPU_ENVIRONMENT):
        alternate = trained_weights()
    assert not np.array_equal(pinned, alternate)  # the setting does change the runs
    np.testing.assert_allclose(alternate, pinned, rtol=1e-3, atol=1e-5)  # as another CPU does: in the last digits


def environment_during_setup(path) -> dict[str, str]:
    """The environment while the set-up of an item of the file at ``path`` runs (where nbval starts
    a notebook's kernel), through conftest's set-up hook."""
    hook = conftest.pytest_runtest_setup(SimpleNamespace(path=path))
    next(hook)
    seen = dict(os.environ)
    with pytest.raises(StopIteration):
        hook.send(None)
    return seen


def test_only_the_from_scratch_kernel_starts_under_the_alternate_setting():
    before = dict(os.environ)
    during = environment_during_setup(conftest.ANOTHER_CPU_NOTEBOOK)
    assert {name: during[name] for name in ALTERNATE_CPU_ENVIRONMENT} == ALTERNATE_CPU_ENVIRONMENT
    assert dict(os.environ) == before  # restored after the set-up
    assert environment_during_setup(conftest.ROOT / "chapters" / "singh.ipynb") == before
    assert any(ALTERNATE_CPU_ENVIRONMENT[name] != value for name, value in PINNED_CPU_ENVIRONMENT.items())
