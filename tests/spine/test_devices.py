"""The device parameter: resolution, the current device, runs that honour it, batches that move.

CI has no GPU. Besides the CPU checks, forward and backward passes run on torch's ``meta``
device (shapes only, no data) under a mode that refuses any torch call mixing tensors of two
devices: a tensor created on the CPU where the model's device was meant fails there, as it
would on a GPU. Whole runs cannot go to ``meta`` (they read numbers back: ``.item()``,
``.numpy()``), so those are checked on the CPU only.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from ihcore.book.chapters import CHAPTERS, DEVICE, INTRODUCTION
from ihcore.musat import minimal_runs
from ihcore.musat.disentangled import DisentangledConfig, DisentangledTransformer
from ihcore.musat.reduced import CoefficientModel
from ihcore.musat.subspace import KEY_COEFFICIENTS
from ihcore.musat.tasks import ContinuousTask, TokenTask
from ihcore.singh import subcircuits
from ihcore.spine import ablations, devices, measures
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.train import train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.spine.validation import ParameterError
from ihcore.wang import six_parameter
from ihcore.wang.mixed_target import DiscreteMixedTarget, MixedTarget

ROOT = Path(__file__).resolve().parents[2]
NO_CUDA = not torch.cuda.is_available()
META = torch.device("meta")


@pytest.fixture(autouse=True)
def restore_current_device():
    before = devices.current()
    yield
    devices._current = before


# --- resolve, use, pick ---------------------------------------------------------------------------


def test_resolve_cpu_and_auto():
    assert devices.resolve("cpu") == torch.device("cpu")
    assert devices.resolve("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_resolve_cuda_without_cuda_is_a_parameter_error_naming_device():
    with pytest.raises(ParameterError, match="device = 'cuda'"):
        devices.resolve("cuda")
    assert "device = 'cuda'" in DEVICE.problem("cuda")


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda:0", ""])
def test_resolve_unknown_name_is_a_parameter_error(name):
    with pytest.raises(ParameterError, match="device"):
        devices.resolve(name)
    assert DEVICE.problem(name).startswith("device = ")


def test_use_sets_current_and_pick_defaults_to_it():
    assert devices.use("cpu") == torch.device("cpu")
    assert devices.current() == torch.device("cpu")
    assert devices.pick(None) == devices.current()
    assert devices.pick("cpu") == torch.device("cpu")
    assert devices.pick(torch.device("meta")) == META


def test_every_chapter_but_the_introduction_has_the_device_parameter_before_show_progress():
    for chapter in CHAPTERS.values():
        names = chapter.parameters.names()
        if chapter is INTRODUCTION:
            assert "device" not in names
            continue
        assert names[-2:] == ["device", "show_progress"], chapter.slug
        assert chapter.parameters.defaults()["device"] == "cpu"


# --- training follows the device --------------------------------------------------------------------

TASK = ItemLabelTask(n_pairs=2, item_dim=8, n_labels=4, n_classes=8, n_heldout_classes=4)


def small_model(seed=0):
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_layers=2, n_heads=2, d_model=16)
    return AttentionOnlyTransformer(config, seed=seed)


def test_use_then_train_puts_the_model_on_the_current_device():
    devices.use("cpu")
    model = small_model()
    history = train(model, TASK, steps=3, lr=1e-2, batch_size=8, eval_every=3, progress=False,
                    measures=[measures.loss_and_accuracy(TASK, ["train"])], checkpoint_steps=[0, 3])
    assert {p.device for p in model.parameters()} == {devices.current()}
    assert {b.device for b in model.buffers()} == {devices.current()}
    assert all(t.device.type == "cpu" for state in history.checkpoints.values() for t in state.values())


def test_train_moves_the_model_to_an_explicit_device(monkeypatch):
    """With the current device elsewhere (meta), device="cpu" still trains on the CPU."""
    monkeypatch.setattr(devices, "_current", META)
    model = small_model()
    train(model, TASK, steps=2, lr=1e-2, batch_size=8, eval_every=2, progress=False, device="cpu")
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_subcircuit_run_on_cpu_equals_run_with_device_none_bit_for_bit():
    devices.use("cpu")
    config = subcircuits.ClampedRunConfig(condition="1,2,3v,5 (layer 0 + copy: A+C)", n_classes=10, item_dim=8,
                                          n_heads=2, d_model=16, steps=20, eval_every=5, eval_batch_size=32)
    a, b = subcircuits.run(config, progress=False), subcircuits.run(config, device="cpu", progress=False)
    for key in ("eval_steps", "loss", "loss_in_context"):
        assert np.array_equal(a[key], b[key]), key


def test_six_parameter_run_on_cpu_equals_run_with_device_none_bit_for_bit():
    config = six_parameter.SixParameterConfig(time=4.0, lr=0.2, n_train=128, n_eval=128, n_evals=5, init_seed=1)
    a, b = six_parameter.run(config, progress=False), six_parameter.run(config, progress=False, device="cpu")
    for key in ("loss", "loss_G4", "loss_IH", "loss_lazy", "theta", "t"):
        assert np.array_equal(a[key], b[key]), key
    assert isinstance(a["theta"], np.ndarray)


def test_minimal_run_on_cpu_equals_run_with_device_none_bit_for_bit():
    config = minimal_runs.MinimalRunConfig(n_pairs=3, dim=8, tau_factor=6.0 / 9, n_evals=3, init_scale=0.1)
    a, b = minimal_runs.run(config, progress=False), minimal_runs.run(config, device="cpu", progress=False)
    for key in ("tau", "coefficients", "share_inside", "loss"):
        assert np.array_equal(a[key], b[key], equal_nan=True), key
    assert all(np.array_equal(x, y) for x, y in zip(a["weights"], b["weights"]))


# --- batches move -----------------------------------------------------------------------------------

GENERATOR_SEED = 0


def batches():
    generator = torch.Generator().manual_seed(GENERATOR_SEED)
    return {
        "item-label": TASK.sample(4, "train", generator),
        "token": TokenTask(n_pairs=2, n_tokens=8).sample(4, "train", generator),
        "continuous": ContinuousTask(n_pairs=2, dim=8).sample(4, "train", generator),
        "mixed": MixedTarget(8, 0.5, 0.5, "sqrt").sample(4, "train", generator),
        "discrete": DiscreteMixedTarget(8, 4, 0.5, 4.0).sample(4, "train", generator),
    }


@pytest.mark.parametrize("kind", list(batches()))
def test_moving_a_batch_moves_every_tensor(kind):
    batch = batches()[kind]
    moved = batch.to(META)
    fields = vars(moved)
    assert fields and all(value.device == META for value in fields.values() if isinstance(value, torch.Tensor))
    assert type(moved) is type(batch) and {k: v.shape for k, v in fields.items()} == {k: v.shape for k, v in vars(batch).items()}
    same = batch.to("cpu")
    assert all(getattr(same, name) is value for name, value in vars(batch).items())  # no copy on its own device


def test_label_positions_follow_the_batch():
    assert batches()["item-label"].to(META).label_positions.device == META


# --- no silent CPU tensors: forward and backward passes on meta ----------------------------------------

CROSS_DEVICE_OK = {torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.copy_, torch.Tensor.__getitem__,
                   torch.Tensor.__setitem__, torch.Tensor.index_put, torch.Tensor.index_put_}


class SameDevice(TorchFunctionMode):
    """Refuse a torch call whose tensor arguments live on two devices (0-dim CPU scalars and
    indexing with CPU indices are allowed, as CUDA allows them)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in CROSS_DEVICE_OK:
            found = {t.device for t in tree_leaves((args, kwargs))
                     if isinstance(t, torch.Tensor) and not (t.dim() == 0 and t.device.type == "cpu")}
            if len(found) > 1:
                raise AssertionError(f"{getattr(func, '__name__', func)} mixes devices {sorted(map(str, found))}")
        return func(*args, **kwargs)


def test_same_device_mode_catches_a_mix():
    with pytest.raises(AssertionError, match="mixes devices"), SameDevice():
        torch.einsum("i,i->", torch.ones(3, device=META), torch.ones(3))


@pytest.mark.parametrize("condition", list(subcircuits.CONDITIONS))
def test_clamped_forward_and_backward_stay_on_the_models_device(condition):
    task = subcircuits.singh_task(n_labels=5, n_classes=10, item_dim=8, prototypes="lowrank", seed=0)
    model = subcircuits.singh_model(task, n_heads=2, d_model=16, seed=0).to(META)
    clamp = subcircuits.condition_clamp(condition, model, previous_token_head=0, active_head=0)
    batch = task.sample(4, "train", torch.Generator().manual_seed(0)).to(META)
    with SameDevice():
        with clamp.on(model, batch):
            logits = model(batch.tokens)
        task.loss(logits, batch).backward()
        patterns = measures._attention_patterns(model, batch)
        ablated = ablations.path_ablated_logits(model, batch.tokens, 0, "both_preserving")
    assert logits.device == META and ablated.device == META and all(p.device == META for p in patterns)
    assert all(p.grad is None or p.grad.device == META for p in model.parameters())


@pytest.mark.parametrize("joint", [False, True])
def test_six_parameter_forward_and_gradient_stay_on_the_device(joint):
    config = six_parameter.SixParameterConfig(length=8, joint=joint, init_seed=0)
    theta = six_parameter.initial_parameters([config]).to(META).requires_grad_(True)
    x = torch.randn(16, 8, dtype=torch.float64).to(META)
    with SameDevice():
        z = None if joint else six_parameter.previous_token_features(x, theta[:, 0].detach())
        u_A, u_B = six_parameter.forward(theta, x, z)
        (gradient,) = torch.autograd.grad((u_A + u_B).pow(2).mean(), theta)
        step = gradient * six_parameter.trainable_mask(config, META)  # (output_function needs nonzero: no meta kernel)
    assert step.device == META


@pytest.mark.parametrize("model", ["full", "coefficients"])
def test_minimal_models_forward_and_backward_stay_on_the_device(model):
    config = DisentangledConfig(8, init_scale=0.1)
    net = DisentangledTransformer(config, seed=0) if model == "full" else CoefficientModel(config, KEY_COEFFICIENTS)
    net.to(META)
    task = ContinuousTask(n_pairs=3, dim=8)
    batch = task.sample(4, "train", torch.Generator().manual_seed(0)).to(META)
    with SameDevice():
        task.loss(net(batch.tokens), batch).backward()
    assert all(p.grad.device == META for p in net.parameters())


# --- the command line ---------------------------------------------------------------------------------


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_cli_refuses_cuda_without_cuda_before_any_kernel_starts():
    executed = ROOT / "_build" / "executed" / "chapters" / "from_scratch.ipynb"
    before = executed.stat().st_mtime_ns if executed.exists() else None
    result = subprocess.run([sys.executable, "-m", "ihcore", "run", "from-scratch", "-p", "device", "cuda"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "device = 'cuda'" in result.stderr and "CUDA" in result.stderr
    assert "executed:" not in result.stdout
    assert (executed.stat().st_mtime_ns if executed.exists() else None) == before
