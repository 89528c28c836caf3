"""One training loop for every study: sample a batch, step, evaluate every k steps; seeds batched.

Randomness is split three ways (as in the Singh et al. code): the model's initialisation
is seeded by the model's constructor, the training batches by ``Seeds.data`` and the
fixed evaluation batches by ``Seeds.eval``, so changing one never changes the others.
Same seeds and the same thread count give bit-identical results on one machine.

**Seeds as a batch dimension.** :func:`train_members` trains S independent models (an
ensemble: one :class:`Member` each, with its own initialisation, task, seeds, measures and
hooks) in one batched computation: the members' parameters are stacked along a leading
axis (``torch.func.stack_module_state``) and one forward and backward pass over all of
them is ``torch.func.vmap`` of ``functional_call`` on the first member's module. The loss
is the sum of the members' losses, so member i's gradient is its own loss's; Adam and SGD
update every entry on its own, so member i's trajectory is the one it would follow alone
(to float rounding: a batched matrix product may round differently from a single one).
Inside the vmapped call every hook point sees one member's activations, with that
member's shapes, so hooks, clamps and ablations are written once, for one model. Members
whose hooks differ (a clamp built for one member's model or choices) cannot share one
vmapped call: members are grouped by their hooks object (members with none form one group)
and each group is one batched computation. Measures run on each member's own module, with
that member's weights copied in, so a member's measurements never see another member.
Each step draws the members' batches together (:func:`sample_stacked`), each from the
member's own generator and equal to the batch it would draw alone.
:func:`train` is the one-member case.

**Compiled steps** (``compiled=True``, or ``IHCORE_COMPILE=1``): a whole step, the batched
forward pass, its gradient (``torch.func.grad``) and the optimiser's update (torch's own
functional Adam or SGD, with the optimiser's settings), is one ``torch.compile`` graph, fused
into a few C++ kernels with no Python, autograd engine or graph boundary between them; the
attention's small per-head products are written so that they fuse too
(:func:`ihcore.spine.transformer.head_products`). Every step calls the graph with the same
objects and shapes, so after the first its guards are not evaluated. Its kernels are cached
apart by the vector width the CPU pin selects
(:func:`ihcore.spine.reproducibility.key_compiled_kernels_by_isa`). It needs a C compiler at
run time; the paper-scale Singh step takes about 50 s to compile the first time, a few seconds
from the compiler's cache. It computes the same functions, rounded differently: a compiled run
differs from the eager one in the last digits, as a run on another CPU does, so it is not
bit-identical to the eager runs. Eager (the default) is the book's reference: the chapters and the
shipped results are eager; ``make bench`` times both.

Devices: the models are moved to ``device`` (:func:`ihcore.spine.devices.pick`: None is the
current device); batches are still drawn on the CPU from the CPU generators, so the data
are the same on every device, then moved. Checkpoints are kept on the CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap
from torch.optim.adam import adam
from torch.optim.sgd import sgd
from tqdm import tqdm

from ihcore.spine import devices
from ihcore.spine.measures import Measure
from ihcore.spine.reproducibility import key_compiled_kernels_by_isa

HookFactory = Callable[[object], Mapping]
COMPILE_ENV = "IHCORE_COMPILE"  # "1": every training loop compiles its step (see compiled_enabled)


@dataclass(frozen=True)
class Seeds:
    """Seeds of the model's initialisation, the training batches and the evaluation batches."""

    init: int = 0
    data: int = 1
    eval: int = 2

    @classmethod
    def from_base(cls, seed: int) -> Seeds:
        """Three seeds derived from one chapter-level ``seed`` (an integer >= 0).

        ``init`` is ``seed`` itself (a chapter's seed 0 is the model drawn from seed 0);
        ``data`` and ``eval`` are two 63-bit draws of ``numpy.random.SeedSequence(seed)``, so
        they differ from each other, from every small ``init`` and from other bases' draws
        (a collision has probability about 2^-63 per pair; a test checks 2000 bases).
        """
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        data, evaluation = (int(s) for s in np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64) >> 1)
        return cls(init=seed, data=data, eval=evaluation)


def ensemble_seeds(base: int, n_seeds: int) -> list[Seeds]:
    """Seeds of an ensemble of ``n_seeds`` members: member i has ``Seeds.from_base(base + i)``."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    return [Seeds.from_base(base + i) for i in range(n_seeds)]


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


@dataclass
class Member:
    """One model of an ensemble: its module (initialised by its own seed), task, seeds,
    measures and training hooks (see :func:`train`)."""

    model: torch.nn.Module
    task: object
    seeds: Seeds = Seeds()
    measures: Sequence[Measure] = ()
    hooks: HookFactory | None = None


def compiled_enabled(compiled: bool | None) -> bool:
    """Resolve a ``compiled`` flag: None means off, unless ``IHCORE_COMPILE=1`` (``python -m ihcore
    sweep --compile`` sets it for its runs)."""
    if compiled is not None:
        return compiled
    return os.environ.get(COMPILE_ENV, "0") == "1"


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` flag: None means on, except under CI or IHCORE_PROGRESS=0."""
    if progress is not None:
        return progress
    return not os.environ.get("CI") and os.environ.get("IHCORE_PROGRESS", "1") != "0"


def train(
    model: torch.nn.Module,
    task,
    *,
    seeds: Seeds = Seeds(),
    measures: Sequence[Measure] = (),
    hooks: HookFactory | None = None,
    **settings,
) -> History:
    """Train ``model`` on batches from ``task.sample`` with loss ``task.loss``.

    ``hooks``, a function of the training batch returning hook functions by hook-point
    name (e.g. an :class:`ihcore.spine.clamps.Clamp`), is attached to the model for each
    training forward pass; measures that should see it take it themselves. The model's own
    seed (``Seeds.init``) is given to its constructor, before training. ``settings`` are
    those of :func:`train_members`. The one-member case of :func:`train_members`.
    """
    return train_members([Member(model, task, seeds, measures, hooks)], **settings)[0]


def train_members(
    members: Sequence[Member],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    eval_every: int,
    eval_splits: Sequence[str] = ("train",),
    eval_batch_size: int = 512,
    optimizer: str = "adam",
    checkpoint_steps: Sequence[int] = (),
    threads: int = 1,
    progress: bool | None = None,
    device: str | torch.device | None = None,
    compiled: bool | None = None,
) -> list[History]:
    """Train every member for ``steps`` steps in one batched computation; one History per member.

    The measures run on fixed evaluation batches (one per split in ``eval_splits``, drawn
    from the member's ``Seeds.eval``) at step 0, every ``eval_every`` steps and after the
    last step. Checkpoints are taken at the listed steps (0 = the initialisation).
    ``threads`` sets torch's thread count for the process (results are bit-identical only
    at a fixed thread count). ``device`` (None: the current device,
    :func:`ihcore.spine.devices.current`) is where the models (moved there, and left there,
    trained) and the batches live; measures get their batches on it. ``compiled`` (None:
    :func:`compiled_enabled`) trains through ``torch.compile`` (see the module's docstring).
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not members:
        raise ValueError("train_members needs at least one member")
    torch.set_num_threads(threads)
    device = devices.pick(device)
    for member in members:
        member.model.to(device)
    compiled = compiled_enabled(compiled)
    if compiled:
        torch._dynamo.reset()  # earlier runs' compiled steps guard on their own (now unused) modules
        key_compiled_kernels_by_isa()
    groups = [_Group(group, lr, optimizer, compiled) for group in _groups(members)]
    data = [torch.Generator().manual_seed(m.seeds.data) for m in members]
    evaluation = [torch.Generator().manual_seed(m.seeds.eval) for m in members]
    eval_batches = [{split: devices.move(m.task.sample(eval_batch_size, split, gen), device) for split in eval_splits}
                    for m, gen in zip(members, evaluation)]
    eval_steps: list[int] = []
    records: list[list[dict[str, np.ndarray]]] = [[] for _ in members]
    checkpoints: list[dict[int, dict[str, torch.Tensor]]] = [{} for _ in members]
    train_loss = np.empty((len(members), steps))

    for step in tqdm(range(steps + 1), disable=not progress_enabled(progress), desc="training"):
        evaluate = step % eval_every == 0 or step == steps
        if evaluate or step in checkpoint_steps:
            for group in groups:
                group.write_back()
        if step in checkpoint_steps:
            for i, m in enumerate(members):
                checkpoints[i][step] = _cpu_copy(m.model.state_dict())
        if evaluate:
            eval_steps.append(step)
            for i, m in enumerate(members):
                m.model.eval()
                records[i].append({k: np.asarray(v) for meas in m.measures for k, v in meas(m.model, eval_batches[i]).items()})
                m.model.train()
        if step == steps:
            break
        for group in groups:
            tasks, generators = [members[i].task for i in group.indices], [data[i] for i in group.indices]
            batch = devices.move(sample_stacked(tasks, batch_size, "train", generators), device)
            train_loss[group.indices, step] = group.step(batch)

    return [
        History(np.array(eval_steps), _stack(records[i]), train_loss[i], checkpoints[i]) for i in range(len(members))
    ]


def sample_stacked(tasks: Sequence, batch_size: int, split: str, generators: Sequence[torch.Generator]):
    """Member s's batch ``tasks[s].sample(batch_size, split, generators[s])`` for every s, stacked along a
    leading member axis (:func:`ihcore.spine.devices.stack`: tensors (S, ...)): one call of the tasks'
    ``sample_members`` when their class has one (the same batches, drawn in fewer operations:
    :meth:`ihcore.spine.item_label_task.ItemLabelTask.sample_members`), else one ``sample`` each."""
    sample_members = getattr(type(tasks[0]), "sample_members", None)
    if sample_members is not None and all(type(task) is type(tasks[0]) for task in tasks):
        return sample_members(tasks, batch_size, split, generators)
    return devices.stack([task.sample(batch_size, split, g) for task, g in zip(tasks, generators, strict=True)])


def _groups(members: Sequence[Member]) -> list[list[tuple[int, Member]]]:
    """Members that can share one vmapped call: the same hooks object (or none) and parameter shapes."""
    groups: dict[tuple, list[tuple[int, Member]]] = {}
    for i, member in enumerate(members):
        shapes = tuple((name, tuple(p.shape)) for name, p in member.model.named_parameters())
        groups.setdefault((id(member.hooks), type(member.model), shapes), []).append((i, member))
    return list(groups.values())


class _Group:
    """Members trained by one vmapped forward and backward pass over their stacked parameters."""

    def __init__(self, group: list[tuple[int, Member]], lr: float, optimizer: str, compiled: bool) -> None:
        self.indices = [i for i, _ in group]
        self.members = [m for _, m in group]
        self.template = self.members[0].model
        self.hooks = self.members[0].hooks
        self.loss = self.members[0].task.loss
        self.params, self.buffers = stack_module_state([m.model for m in self.members])
        self._template_batch = None  # the current step's stacked batch: its type and non-tensor fields
        optimiser_class = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        self.optimiser = optimiser_class(list(self.params.values()), lr=lr)
        self.batched_loss = vmap(self.member_loss)
        self.compiled_step, self.compiled_once = None, False
        if compiled:
            self.update = _FunctionalUpdate(self.optimiser)
            self.compiled_step = torch.compile(self._step_graph)

    def member_loss(self, params, buffers, fields) -> torch.Tensor:
        batch = dataclasses.replace(self._template_batch, **fields)
        with self.template.hooks(self.hooks(batch)) if self.hooks is not None else nullcontext():
            output = functional_call(self.template, (params, buffers), (batch.tokens,))
        return self.loss(output, batch)

    def step(self, batch) -> np.ndarray:
        """One optimiser step on every member, member k on its own batch, index k of the stacked
        ``batch`` (:func:`sample_stacked`: tensors (S, ...)); returns (S,) losses before it."""
        self._template_batch = batch
        fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)
                  if isinstance(getattr(batch, f.name), torch.Tensor)}
        if self.compiled_step is not None:
            # The graph updates the parameters in place: it is traced as an inference graph (no_grad).
            # Every step calls it with the same objects and shapes, so once compiled, its guards are skipped.
            with torch.no_grad(), torch.compiler.set_stance(skip_guard_eval_unsafe=self.compiled_once):
                losses = self.compiled_step(fields)
            self.compiled_once = True
            return losses.cpu().numpy()
        losses = self.batched_loss(self.params, self.buffers, fields)  # (S,)
        self.optimiser.zero_grad()
        losses.sum().backward()
        self.optimiser.step()
        return losses.detach().cpu().numpy()

    def _step_graph(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        """The compiled step: (S,) losses before an update of every member by its own gradient."""
        def total(params):
            losses = self.batched_loss(params, self.buffers, fields)
            return losses.sum(), losses

        gradients, losses = torch.func.grad(total, has_aux=True)(self.params)
        self.update(gradients)
        return losses

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy each member's current parameters into its own module (for measures, checkpoints, the caller)."""
        for k, member in enumerate(self.members):
            for name, parameter in member.model.named_parameters():
                parameter.copy_(self.params[name][k])


class _FunctionalUpdate:
    """The update of a ``torch.optim`` Adam or SGD (one parameter group, its settings) as torch's
    functional one, on gradients given as values, so that it can join the compiled step's graph
    (``Optimizer.step`` breaks a graph on purpose). Holds Adam's moments and step counts."""

    def __init__(self, optimiser: torch.optim.Optimizer) -> None:
        (group,) = optimiser.param_groups
        self.group, self.params = group, list(group["params"])
        self.adam = isinstance(optimiser, torch.optim.Adam)
        if self.adam:
            device = self.params[0].device
            self.capturable = device.type != "cpu"  # steps stay on the parameters' device, as torch's capturable Adam
            self.exp_avgs = [torch.zeros_like(p) for p in self.params]
            self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
            self.steps = [torch.zeros((), device=device if self.capturable else "cpu") for _ in self.params]

    def __call__(self, gradients: Mapping[str, torch.Tensor]) -> None:
        """Update the parameters in place; ``gradients`` in the parameters' order."""
        grads, g = list(gradients.values()), self.group
        if self.adam:
            beta1, beta2 = g["betas"]
            adam(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps, foreach=False,
                 capturable=self.capturable, amsgrad=g["amsgrad"], beta1=beta1, beta2=beta2, lr=g["lr"],
                 weight_decay=g["weight_decay"], eps=g["eps"], maximize=g["maximize"])
        else:  # plain SGD, as train_members builds it: momentum 0, so no momentum buffers
            sgd(self.params, grads, [None] * len(self.params), foreach=False, weight_decay=g["weight_decay"],
                momentum=g["momentum"], lr=g["lr"], dampening=g["dampening"], nesterov=g["nesterov"],
                maximize=g["maximize"])


def _stack(records: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.stack([r[name] for r in records]) for name in records[0]} if records and records[0] else {}


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state_dict on the CPU (a deep copy when it is there already)."""
    if all(tensor.device.type == "cpu" for tensor in state.values()):
        return copy.deepcopy(state)
    copied = copy.copy(state)  # keeps the OrderedDict and its _metadata
    for name, tensor in state.items():
        copied[name] = tensor.detach().to("cpu", copy=True)
    return copied


def seed_groups(configs: Sequence, key: Callable[[object], object] | None = None) -> list[list[int]]:
    """Indices of ``configs`` grouped by ``key(config)``, in first-appearance order: the runs that
    can train as one ensemble. The default key is every field but ``seed`` (dataclasses with a
    ``seed`` field); a study whose members differ in more (e.g. each seed's own heads) passes its own."""
    key = key or (lambda config: dataclasses.replace(config, seed=0))
    groups: dict[object, list[int]] = {}
    for k, config in enumerate(configs):
        groups.setdefault(key(config), []).append(k)
    return list(groups.values())


def run_in_groups(configs: Sequence, run_group: Callable[[list], list], key: Callable[[object], object] | None = None
                  ) -> list:
    """The results of ``configs`` in their order, ``run_group`` called once per :func:`seed_groups`
    group with that group's configs (e.g. trained as one ensemble) and returning their results in order:
    the body of a study's ``run_many``."""
    results: list = [None] * len(configs)
    for group in seed_groups(configs, key):
        for k, result in zip(group, run_group([configs[k] for k in group]), strict=True):
            results[k] = result
    return results
