"""Seeds as a batch dimension: an ensemble member is the single run with its seeds."""

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from ihcore.spine import clamps, devices
from ihcore.spine import train as train_module
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.measures import head_scores, loss_and_accuracy
from ihcore.spine.train import (
    COMPILE_ENV,
    Member,
    Seeds,
    compiled_enabled,
    ensemble_seeds,
    run_in_groups,
    sample_stacked,
    seed_groups,
    train,
    train_members,
)
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

SETTINGS = {"steps": 30, "lr": 1e-2, "batch_size": 16, "eval_every": 10, "eval_batch_size": 64, "progress": False,
            "checkpoint_steps": [0, 30]}
# A clamp that involves no model object, so the same hooks object serves every member (one vmapped group).
SHARED_CLAMP = clamps.only_heads(1, [1], 2) + clamps.pattern(0, 0, clamps.previous_token_pattern)


def member(seed: int, hooks=None) -> Member:
    seeds = Seeds.from_base(seed)
    task = ItemLabelTask(n_pairs=2, item_dim=8, n_labels=4, n_classes=8, n_heldout_classes=4, seed=seeds.init)
    config = TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_layers=2, n_heads=2, d_model=16)
    model = AttentionOnlyTransformer(config, seed=seeds.init)
    return Member(model, task, seeds, [loss_and_accuracy(task, ["train"], hooks=hooks), head_scores("train")], hooks)


def reference_run(m: Member, steps: int, lr: float, batch_size: int, optimizer: str) -> tuple[list[float], dict]:
    """A plain Adam or SGD loop written out here, independent of the ensemble code: losses and final weights."""
    data = torch.Generator().manual_seed(m.seeds.data)
    optimiser = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(m.model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        batch = m.task.sample(batch_size, "train", data)
        with m.model.hooks(m.hooks(batch)) if m.hooks is not None else torch.enable_grad():
            loss = m.task.loss(m.model(batch.tokens), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses, m.model.state_dict()


@pytest.mark.parametrize("hooks", [None, SHARED_CLAMP], ids=["no clamp", "clamp"])
def test_member_i_equals_the_single_run_with_seed_i(hooks):
    ensemble = train_members([member(seed, hooks) for seed in range(4)], **SETTINGS)
    for seed in range(4):
        single = member(seed, hooks)
        alone = train(single.model, single.task, seeds=single.seeds, measures=single.measures, hooks=hooks, **SETTINGS)
        np.testing.assert_allclose(ensemble[seed].train_loss, alone.train_loss, rtol=1e-5, atol=1e-6)
        for name in alone.values:
            np.testing.assert_allclose(ensemble[seed][name], alone[name], rtol=1e-4, atol=1e-5)
        for step, state in alone.checkpoints.items():
            for key, tensor in state.items():
                torch.testing.assert_close(ensemble[seed].checkpoints[step][key], tensor, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("hooks", [None, SHARED_CLAMP], ids=["no clamp", "clamp"])
def test_ensemble_matches_a_plain_training_loop(hooks, optimizer):
    members = [member(seed, hooks) for seed in range(3)]
    histories = train_members(members, **{**SETTINGS, "checkpoint_steps": (), "optimizer": optimizer})
    for seed, m in enumerate(members):
        losses, final = reference_run(member(seed, hooks), SETTINGS["steps"], SETTINGS["lr"], SETTINGS["batch_size"],
                                      optimizer)
        np.testing.assert_allclose(histories[seed].train_loss, losses, rtol=1e-5, atol=1e-6)
        for key, tensor in final.items():
            torch.testing.assert_close(m.model.state_dict()[key], tensor, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_compiled_steps_train_the_same_runs_as_eager_ones_to_rounding(optimizer, monkeypatch):
    settings = {**SETTINGS, "checkpoint_steps": (), "optimizer": optimizer}
    hooks = [SHARED_CLAMP, SHARED_CLAMP, None]  # two groups: two compiled steps of one function
    eager = train_members([member(seed, h) for seed, h in enumerate(hooks)], **settings)
    monkeypatch.setenv(COMPILE_ENV, "1")  # the switch of `python -m ihcore sweep --compile`
    keyed = []  # the compiler's caches keep this run's vector width apart (ihcore.spine.reproducibility)
    key = train_module.key_compiled_kernels_by_isa
    monkeypatch.setattr(train_module, "key_compiled_kernels_by_isa", lambda: keyed.append(key()))
    members = [member(seed, h) for seed, h in enumerate(hooks)]
    counters.clear()
    compiled = train_members(members, **settings)
    # A step, clamps and optimiser update included, is one graph per group: nothing falls back to
    # Python between kernels. With guards skipped after the first step, each group still runs its own.
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
    assert len(keyed) == 1
    for seed in range(len(hooks)):
        np.testing.assert_allclose(compiled[seed].train_loss, eager[seed].train_loss, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(compiled[seed]["loss/train"], eager[seed]["loss/train"], rtol=1e-4, atol=1e-5)
    assert compiled_enabled(None) and not compiled_enabled(False)
    monkeypatch.delenv(COMPILE_ENV)
    assert not compiled_enabled(None)  # eager unless asked: the reference arithmetic


class OneByOne:
    """A task without a batched sampler (no ``sample_members``): its members are sampled one by one."""

    def __init__(self, task):
        self.task = task

    def sample(self, batch_size, split, generator):
        return self.task.sample(batch_size, split, generator)


def test_stacked_batches_are_each_members_own_with_or_without_the_tasks_batched_sampler():
    tasks = [member(seed).task for seed in range(3)]
    generators = lambda: [torch.Generator().manual_seed(s) for s in range(3)]
    batched = sample_stacked(tasks, 8, "train", generators())
    one_by_one = sample_stacked([OneByOne(task) for task in tasks], 8, "train", generators())
    assert batched.tokens.shape == (3, 8, tasks[0].n_positions, tasks[0].d_input)
    for field in ("tokens", "target", "context_labels", "context_matches"):
        assert torch.equal(getattr(batched, field), getattr(one_by_one, field)), field
    assert torch.equal(one_by_one.tokens[1], tasks[1].sample(8, "train", torch.Generator().manual_seed(1)).tokens)


def test_a_members_result_does_not_depend_on_the_other_members():
    together = train_members([member(0), member(1), member(2)], **SETTINGS)
    other_company = train_members([member(7), member(1), member(9), member(4)], **SETTINGS)
    np.testing.assert_allclose(together[1].train_loss, other_company[1].train_loss, rtol=1e-5, atol=1e-6)
    assert not np.allclose(together[0].train_loss, together[1].train_loss)  # distinct seeds: distinct runs


def test_members_with_their_own_clamps_train_in_separate_groups_and_are_clamped():
    """A clamp built from one member's model applies to that member only."""
    members = [member(seed) for seed in range(2)]
    members[1].hooks = clamps.shifted_input_for_qk(members[1].model, 1)
    histories = train_members(members, **SETTINGS)
    alone = member(1)
    clamp = clamps.shifted_input_for_qk(alone.model, 1)
    reference = train(alone.model, alone.task, seeds=alone.seeds, hooks=clamp, **SETTINGS)
    np.testing.assert_allclose(histories[1].train_loss, reference.train_loss, rtol=1e-5, atol=1e-6)
    unclamped = train(member(1).model, alone.task, seeds=alone.seeds, **SETTINGS)
    assert not np.allclose(histories[1].train_loss, unclamped.train_loss)


def test_members_are_left_trained_on_their_own_modules():
    members = [member(seed) for seed in range(2)]
    initial = [{k: v.clone() for k, v in m.model.state_dict().items()} for m in members]
    histories = train_members(members, **SETTINGS)
    for m, before, history in zip(members, initial, histories):
        assert any(not torch.equal(m.model.state_dict()[k], before[k]) for k in before)
        for key, tensor in history.checkpoints[SETTINGS["steps"]].items():
            torch.testing.assert_close(m.model.state_dict()[key], tensor)


def test_from_base_gives_distinct_init_data_and_eval_seeds_across_bases():
    seeds = [Seeds.from_base(base) for base in range(2000)]
    streams = [s.init for s in seeds] + [s.data for s in seeds] + [s.eval for s in seeds]
    assert len(set(streams)) == len(streams)
    assert all(s.init == base for base, s in enumerate(seeds))
    assert Seeds.from_base(3) == Seeds.from_base(3)


def test_ensemble_members_get_distinct_seeds():
    members = ensemble_seeds(5, 8)
    assert [s.init for s in members] == list(range(5, 13))
    for field in ("init", "data", "eval"):
        assert len({getattr(s, field) for s in members}) == 8
    with pytest.raises(ValueError, match="n_seeds"):
        ensemble_seeds(0, 0)


def test_seed_groups_group_configs_that_differ_only_in_seed_and_run_in_groups_keeps_their_order():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        lr: float
        seed: int

    configs = [Config(0.1, 0), Config(0.2, 0), Config(0.1, 1), Config(0.2, 1), Config(0.1, 2)]
    assert seed_groups(configs) == [[0, 2, 4], [1, 3]]
    assert seed_groups(configs, key=lambda c: c.seed) == [[0, 1], [2, 3], [4]]
    calls = []

    def run_group(group):
        calls.append(group)
        return [(c.lr, c.seed, len(group)) for c in group]

    assert run_in_groups(configs, run_group) == [(0.1, 0, 3), (0.2, 0, 2), (0.1, 1, 3), (0.2, 1, 2), (0.1, 2, 3)]
    assert calls == [[configs[0], configs[2], configs[4]], [configs[1], configs[3]]]
    with pytest.raises(ValueError):  # a group's results must match its configs one to one
        run_in_groups(configs, lambda group: group[:1])


def test_train_moves_every_member_to_the_device_before_the_first_step(monkeypatch):
    moved = []

    class Spy(AttentionOnlyTransformer):
        def to(self, *args, **kwargs):
            moved.append(args[0] if args else kwargs.get("device"))
            return super().to(*args, **kwargs)

    m = member(0)
    spy = Spy(m.model.config, seed=0)
    monkeypatch.setattr(devices, "_current", torch.device("cpu"))
    train(spy, m.task, **{**SETTINGS, "steps": 1, "eval_every": 1, "checkpoint_steps": ()}, device="cpu")
    assert moved == [torch.device("cpu")]


def test_no_member_is_refused():
    with pytest.raises(ValueError, match="at least one member"):
        train_members([], **SETTINGS)
