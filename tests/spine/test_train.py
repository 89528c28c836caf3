"""The training loop: determinism, seed separation, checkpoints, evaluation schedule, validation."""

import numpy as np
import pytest
import torch

from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.measures import loss_and_accuracy
from ihcore.spine.train import Seeds, progress_enabled, train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

TASK = ItemLabelTask(n_pairs=2, item_dim=8, n_labels=4, n_classes=8, n_heldout_classes=4)
OPTIONS = dict(
    steps=6, lr=1e-2, batch_size=16, eval_every=3, eval_batch_size=64, threads=1, progress=False,
    measures=[loss_and_accuracy(TASK, ["train"])],
)


def make_model(seed=0):
    config = TransformerConfig(TASK.d_input, TASK.n_labels, TASK.n_positions, n_layers=2, n_heads=1, d_model=16)
    return AttentionOnlyTransformer(config, seed=seed)


def test_same_seeds_give_bit_identical_losses_and_parameters():
    torch.set_num_threads(1)
    model_a, model_b = make_model(), make_model()
    history_a, history_b = train(model_a, TASK, **OPTIONS), train(model_b, TASK, **OPTIONS)
    assert np.array_equal(history_a.train_loss, history_b.train_loss)
    assert np.array_equal(history_a["loss/train"], history_b["loss/train"])
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(model_a.W_E, make_model().W_E)  # training did move the weights


def test_data_seed_changes_training_batches_but_not_the_initial_evaluation():
    base = train(make_model(), TASK, **OPTIONS, seeds=Seeds(data=1))
    other = train(make_model(), TASK, **OPTIONS, seeds=Seeds(data=99))
    assert base["loss/train"][0] == other["loss/train"][0]
    assert base["loss/train"][-1] != other["loss/train"][-1]
    assert np.all(base.train_loss != other.train_loss)


def test_eval_seed_changes_evaluation_batches_but_not_the_training_losses():
    base = train(make_model(), TASK, **OPTIONS, seeds=Seeds(eval=2))
    other = train(make_model(), TASK, **OPTIONS, seeds=Seeds(eval=99))
    assert np.array_equal(base.train_loss, other.train_loss)
    assert base["loss/train"][0] != other["loss/train"][0]


def test_first_train_loss_is_the_initial_models_loss_on_the_first_data_batch():
    model = make_model()
    batch = TASK.sample(OPTIONS["batch_size"], "train", torch.Generator().manual_seed(Seeds().data))
    with torch.no_grad():
        expected = TASK.loss(model(batch.tokens), batch).item()
    history = train(model, TASK, **OPTIONS)
    assert history.train_loss.shape == (OPTIONS["steps"],)
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-6)


def test_single_sgd_step_is_parameters_minus_lr_times_gradient():
    model, reference = make_model(), make_model()
    batch = TASK.sample(OPTIONS["batch_size"], "train", torch.Generator().manual_seed(Seeds().data))
    TASK.loss(reference(batch.tokens), batch).backward()
    train(model, TASK, **OPTIONS | dict(steps=1, optimizer="sgd", lr=0.1))
    for (name, p), ref in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, ref - 0.1 * ref.grad, msg=name)


def test_checkpoints_are_copies_of_the_state_at_their_step():
    model = make_model()
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    history = train(model, TASK, **OPTIONS, checkpoint_steps=[0, OPTIONS["steps"]])
    assert sorted(history.checkpoints) == [0, OPTIONS["steps"]]
    first, last = history.checkpoints[0], history.checkpoints[OPTIONS["steps"]]
    for name, value in model.state_dict().items():
        assert torch.equal(first[name], initial[name]), name
        assert torch.equal(last[name], value), name
    assert not torch.equal(first["W_E"], model.W_E)
    with torch.no_grad():
        model.W_E.add_(1.0)
    assert torch.equal(last["W_E"] + 1.0, model.W_E)  # not an alias of the live parameter


@pytest.mark.parametrize("steps, eval_every, expected", [(7, 3, [0, 3, 6, 7]), (6, 3, [0, 3, 6]), (2, 5, [0, 2])])
def test_evaluations_run_at_step_zero_every_eval_every_and_at_the_end(steps, eval_every, expected):
    history = train(make_model(), TASK, **OPTIONS | dict(steps=steps, eval_every=eval_every))
    assert history.eval_steps.tolist() == expected
    assert history["loss/train"].shape == history["accuracy/train"].shape == (len(expected),)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(steps=0), "steps"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(batch_size=0), "batch_size"),
        (dict(eval_every=0), "eval_every"),
    ],
)
def test_invalid_arguments_raise_before_touching_the_model(bad, message):
    model = make_model()
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    calls = []
    with pytest.raises(ValueError, match=message):
        train(model, TASK, **OPTIONS | bad | dict(measures=[lambda m, b: calls.append(1) or {}]))
    assert not calls
    for name, value in model.state_dict().items():
        assert torch.equal(value, initial[name]), name


def test_two_layer_model_learns_the_in_context_task():
    options = dict(steps=150, batch_size=32, eval_every=150, eval_splits=["in_context"])
    measures = [loss_and_accuracy(TASK, ["in_context"])]
    history = train(make_model(), TASK, **OPTIONS | options | dict(measures=measures))
    first, last = history.train_loss[:20].mean(), history.train_loss[-20:].mean()
    assert last < 0.5 * first
    assert history["accuracy/in_context"][0] < 0.4 < 0.6 < history["accuracy/in_context"][-1]  # chance: 1/4


@pytest.mark.parametrize(
    "flag, env, expected",
    [(True, {"CI": "1"}, True), (False, {}, False), (None, {}, True), (None, {"CI": "1"}, False),
     (None, {"IHCORE_PROGRESS": "0"}, False)],
)
def test_progress_flag_overrides_environment_which_disables_it_under_ci(monkeypatch, flag, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("IHCORE_PROGRESS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert progress_enabled(flag) is expected


def test_hooks_are_attached_for_every_training_forward_and_removed_after():
    seen = []

    def hooks(batch):
        seen.append(batch.tokens.shape)
        return {"logits": lambda activation, name: None}

    model = make_model()
    train(model, TASK, **OPTIONS, hooks=hooks)
    assert seen == [(OPTIONS["batch_size"], TASK.n_positions, TASK.d_input)] * OPTIONS["steps"]
    assert all(not point.fns for point in model.hook_points.values())


def test_hooks_change_what_is_trained():
    def zero_layer0(batch):
        return {"layer0.head_out": lambda activation, name: torch.zeros_like(activation)}

    model = make_model()
    train(model, TASK, **OPTIONS, hooks=zero_layer0)
    layer0 = model.layers[0]
    assert torch.equal(layer0.W_Q, make_model().layers[0].W_Q)  # no gradient reaches a zeroed layer's weights
    assert not torch.equal(model.layers[1].W_Q, make_model().layers[1].W_Q)
