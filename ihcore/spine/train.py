"""One training loop for every study: sample a batch, step, evaluate every k steps.

Randomness is split three ways (as in the Singh et al. code): the model's initialisation
is seeded by the model's constructor, the training batches by ``Seeds.data`` and the
fixed evaluation batches by ``Seeds.eval``, so changing one never changes the others.
Same seeds and the same thread count give bit-identical results on one machine.

Devices: the model is moved to ``device`` (:func:`ihcore.spine.devices.pick`: None is the
current device); batches are still drawn on the CPU from the CPU generators, so the data
are the same on every device, then moved. Checkpoints are kept on the CPU.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ihcore.spine import devices
from ihcore.spine.measures import Measure


@dataclass(frozen=True)
class Seeds:
    """Seeds of the model's initialisation, the training batches and the evaluation batches."""

    init: int = 0
    data: int = 1
    eval: int = 2

    @classmethod
    def from_base(cls, seed: int) -> Seeds:
        """Three distinct seeds derived from one chapter-level ``seed``."""
        return cls(init=seed, data=seed + 10_000, eval=seed + 20_000)


@dataclass
class History:
    """What a training run recorded.

    eval_steps: (E,) steps at which the measures ran (0 = before any update).
    values: name -> array of shape (E, ...) stacked over evaluations.
    train_loss: (steps,) loss of each training batch, before its update.
    checkpoints: step -> copy of the model's state_dict at that step.
    """

    eval_steps: np.ndarray
    values: dict[str, np.ndarray]
    train_loss: np.ndarray
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` flag: None means on, except under CI or IHCORE_PROGRESS=0."""
    if progress is not None:
        return progress
    return not os.environ.get("CI") and os.environ.get("IHCORE_PROGRESS", "1") != "0"


def train(
    model: torch.nn.Module,
    task,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    eval_every: int,
    measures: Sequence[Measure] = (),
    eval_splits: Sequence[str] = ("train",),
    eval_batch_size: int = 512,
    seeds: Seeds = Seeds(),
    optimizer: str = "adam",
    checkpoint_steps: Sequence[int] = (),
    threads: int = 1,
    progress: bool | None = None,
    hooks: Callable[[object], Mapping] | None = None,
    device: str | torch.device | None = None,
) -> History:
    """Train ``model`` on batches from ``task.sample`` with loss ``task.loss``.

    The measures run on fixed evaluation batches (one per split in ``eval_splits``) at
    step 0, every ``eval_every`` steps and after the last step. Checkpoints are taken at
    the listed steps (0 = the initialisation). ``threads`` sets torch's thread count for
    the process (results are bit-identical only at a fixed thread count). The model's own
    seed (``Seeds.init``) is given to its constructor, before training. ``hooks``, a
    function of the training batch returning hook functions by hook-point name (e.g. an
    :class:`ihcore.spine.clamps.Clamp`), is attached to the model for each training forward
    pass; measures that should see it take it themselves. ``device`` (None: the current
    device, :func:`ihcore.spine.devices.current`) is where the model (moved there, and left there)
    and the batches live; measures get their batches on it.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    torch.set_num_threads(threads)
    device = devices.pick(device)
    model.to(device)
    data = torch.Generator().manual_seed(seeds.data)
    evaluation = torch.Generator().manual_seed(seeds.eval)
    eval_batches = {split: devices.move(task.sample(eval_batch_size, split, evaluation), device) for split in eval_splits}
    optimiser_class = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    optimiser = optimiser_class(model.parameters(), lr=lr)

    eval_steps: list[int] = []
    records: list[dict[str, np.ndarray]] = []
    checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    train_loss = np.empty(steps)

    def evaluate(step: int) -> None:
        model.eval()
        eval_steps.append(step)
        records.append({k: np.asarray(v) for m in measures for k, v in m(model, eval_batches).items()})
        model.train()

    for step in tqdm(range(steps + 1), disable=not progress_enabled(progress), desc="training"):
        if step in checkpoint_steps:
            checkpoints[step] = _cpu_copy(model.state_dict())
        if step % eval_every == 0 or step == steps:
            evaluate(step)
        if step == steps:
            break
        batch = devices.move(task.sample(batch_size, "train", data), device)
        with model.hooks(hooks(batch)) if hooks is not None else nullcontext():
            loss = task.loss(model(batch.tokens), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        train_loss[step] = loss.item()

    values = {name: np.stack([r[name] for r in records]) for name in records[0]} if measures else {}
    return History(np.array(eval_steps), values, train_loss, checkpoints)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state_dict on the CPU (a deep copy when it is there already)."""
    if all(tensor.device.type == "cpu" for tensor in state.values()):
        return copy.deepcopy(state)
    copied = copy.copy(state)  # keeps the OrderedDict and its _metadata
    for name, tensor in state.items():
        copied[name] = tensor.detach().to("cpu", copy=True)
    return copied
