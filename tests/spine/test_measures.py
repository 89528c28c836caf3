"""Attention scores and accuracy on hand-built patterns and logits, and the Measure wrappers."""

import numpy as np
import pytest
import torch

from ihcore.spine.item_label_task import Batch, ItemLabelTask
from ihcore.spine.measures import (
    accuracy, attention_patterns, head_scores, induction_score, loss_and_accuracy, plateau_median, previous_token_score
)
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig, causal_mask


def make_batch(matches, target=None):
    """Batch with the given (B, N) context_matches; tokens are placeholders."""
    matches = torch.tensor(matches, dtype=torch.bool)
    B, N = matches.shape
    target = torch.zeros(B, dtype=torch.long) if target is None else torch.tensor(target)
    return Batch(torch.zeros(B, 2 * N + 1, 1), target, torch.zeros(B, N, dtype=torch.long), matches)

UNIFORM = {T: causal_mask(T).float() / causal_mask(T).sum(-1, keepdim=True) for T in (7, 9)}  # (T, T)


# --- previous_token_score ----------------------------------------------------------------


def test_previous_token_score_is_one_for_ideal_head_and_closed_form_for_uniform():
    batch = make_batch([[True, False, False]] * 2)  # N = 3, T = 7
    ideal = UNIFORM[7].clone()
    for t in batch.label_positions:
        ideal[t] = 0.0
        ideal[t, t - 1] = 1.0
    pattern = torch.stack([ideal, UNIFORM[7]]).expand(2, 2, 7, 7)  # head 0 ideal, head 1 uniform
    expected_uniform = np.mean([1 / (t + 1) for t in (1, 3, 5)])
    np.testing.assert_allclose(previous_token_score(pattern, batch), [1.0, expected_uniform], rtol=1e-6)


def test_previous_token_score_averages_over_sequences():
    batch = make_batch([[True, False]] * 2)  # N = 2, T = 5
    pattern = torch.zeros(2, 1, 5, 5)
    pattern[0, 0, [1, 3], [0, 2]] = 1.0  # sequence 0 ideal, sequence 1 never looks back
    np.testing.assert_allclose(previous_token_score(pattern, batch), [0.5])


# --- induction_score ---------------------------------------------------------------------


def test_induction_score_is_one_when_all_query_attention_is_on_matching_labels():
    batch = make_batch([[True, False, True, False], [False, False, False, True]])
    pattern = torch.zeros(2, 1, 9, 9)
    pattern[0, 0, 8, [1, 5]] = 0.5  # split over the two matching labels
    pattern[1, 0, 8, 7] = 1.0
    np.testing.assert_allclose(induction_score(pattern, batch), [1.0], rtol=1e-6)


@pytest.mark.parametrize("keys", ["labels", "all"])
def test_induction_score_is_zero_for_attention_that_ignores_the_match(keys):
    batch = make_batch([[True, False, True, False], [False, True, False, False]])
    pattern = UNIFORM[9].expand(2, 1, 9, 9).clone()
    if keys == "labels":
        pattern[:, 0, 8] = 0.0
        pattern[:, 0, 8, batch.label_positions] = 0.25
    np.testing.assert_allclose(induction_score(pattern, batch), [0.0], atol=1e-7)


def test_two_pair_induction_score_is_attention_to_correct_minus_incorrect_label():
    batch = make_batch([[True, False], [False, True]])  # T = 5, labels at 1 and 3
    pattern = torch.zeros(2, 2, 5, 5)
    pattern[0, :, 4, 1], pattern[0, :, 4, 3] = torch.tensor([0.6, 0.1]), torch.tensor([0.2, 0.7])
    pattern[1, :, 4, 3], pattern[1, :, 4, 1] = torch.tensor([0.3, 0.0]), torch.tensor([0.5, 0.9])
    expected = [((0.6 - 0.2) + (0.3 - 0.5)) / 2, ((0.1 - 0.7) + (0.0 - 0.9)) / 2]
    np.testing.assert_allclose(induction_score(pattern, batch), expected, rtol=1e-6)


def test_induction_score_skips_sequences_without_both_matching_and_other_labels():
    informative = make_batch([[True, False]])
    pattern = torch.zeros(1, 1, 5, 5)
    pattern[0, 0, 4, 1] = 0.8
    with_uninformative = make_batch([[True, False], [True, True], [False, False]])
    padded = torch.cat([pattern, torch.ones(2, 1, 5, 5)])
    np.testing.assert_allclose(induction_score(padded, with_uninformative), induction_score(pattern, informative))
    np.testing.assert_allclose(induction_score(pattern, informative), [0.8], rtol=1e-6)
    with pytest.raises(ValueError, match="matching and other"):
        induction_score(torch.ones(2, 1, 5, 5), make_batch([[True, True], [False, False]]))


# --- accuracy ----------------------------------------------------------------------------


def test_accuracy_counts_argmax_of_the_query_readout_only():
    batch = make_batch([[True]] * 4, target=[0, 1, 2, 2])
    logits = torch.zeros(4, 3, 3)
    logits[:, :-1, 1] = 100.0  # earlier positions would always say 1
    logits[torch.arange(4), -1, torch.tensor([0, 1, 2, 0])] = 1.0
    assert accuracy(logits, batch) == 0.75


# --- summaries of a run ------------------------------------------------------------------


def test_plateau_median_uses_only_evaluations_in_the_middle_half_before_the_change():
    steps = np.arange(0, 110, 10)  # 0, 10, ..., 100
    values = np.array([9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 100.0, 9.0, 9.0, 9.0, 9.0])
    assert plateau_median(steps, values, 80) == 3.0  # steps 20..60 hold 1, 2, 3, 4, 100
    assert np.isnan(plateau_median(np.array([0, 100]), np.array([1.0, 2.0]), 80))


# --- measures on a model -----------------------------------------------------------------


def test_measures_report_per_layer_per_head_scores_and_the_task_loss():
    task = ItemLabelTask(n_pairs=3, item_dim=6, n_labels=4, n_classes=8, n_heldout_classes=4)
    config = TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_layers=2, n_heads=2, d_model=8)
    model = AttentionOnlyTransformer(config, seed=0)
    batch = task.sample(32, "train", torch.Generator().manual_seed(0))
    patterns = attention_patterns(model, batch)
    assert [p.shape for p in patterns] == [(32, 2, 7, 7)] * 2
    assert not torch.equal(patterns[0], patterns[1])
    scores = head_scores("train")(model, {"train": batch})
    np.testing.assert_array_equal(scores["previous_token_score"][1], previous_token_score(patterns[1], batch))
    np.testing.assert_array_equal(scores["induction_score"][0], induction_score(patterns[0], batch))
    assert scores["induction_score"].shape == scores["previous_token_score"].shape == (2, 2)
    values = loss_and_accuracy(task, ["train"])(model, {"train": batch})
    with torch.no_grad():
        logits = model(batch.tokens)
    assert values["loss/train"] == pytest.approx(task.loss(logits, batch).item())
    assert values["accuracy/train"] == pytest.approx(accuracy(logits, batch))


def test_loss_and_accuracy_evaluates_under_the_given_hooks():
    task = ItemLabelTask(n_pairs=2, item_dim=8, n_labels=4, n_classes=8, n_heldout_classes=4)
    config = TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_layers=2, n_heads=1, d_model=16)
    model = AttentionOnlyTransformer(config)
    batches = {"train": task.sample(64, "train", torch.Generator().manual_seed(0))}

    def target_logits(batch):  # hooks that make the readout put all its weight on the target label
        confident = 10.0 * torch.nn.functional.one_hot(batch.target, task.n_labels).float()  # (B, n_labels)
        return {"logits": lambda activation, name: confident[:, None].expand_as(activation)}

    hooked = loss_and_accuracy(task, ["train"], hooks=target_logits)(model, batches)
    plain = loss_and_accuracy(task, ["train"])(model, batches)
    assert hooked["accuracy/train"] == 1.0 and hooked["loss/train"] < 1e-3
    assert plain["accuracy/train"] < 1.0
