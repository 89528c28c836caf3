"""Musat et al.'s continuous minimal task and token task."""

import torch

from ihcore.musat.tasks import ContinuousTask, TokenTask, rotate, rotation_matrix


def sample(task, batch_size=6, seed=0):
    return task.sample(batch_size, "train", torch.Generator().manual_seed(seed))


def test_rotation_is_orthogonal_with_zero_trace_and_squares_to_minus_identity():
    M = rotation_matrix(6)
    assert torch.allclose(M @ M.T, torch.eye(6)) and torch.allclose(M @ M, -torch.eye(6)) and M.trace() == 0
    v = torch.randn(3, 6)
    assert torch.allclose(rotate(v), v @ M.T)


def test_tokens_hold_items_labels_with_rotated_positions_and_the_query():
    task = ContinuousTask(n_pairs=3, dim=4)
    batch = sample(task)
    D = task.dim
    assert batch.tokens.shape == (6, 7, 8) and batch.target.shape == (6, 4)
    items, labels = batch.tokens[:, 0:-1:2], batch.tokens[:, 1::2]
    assert torch.allclose(labels[..., D:], rotate(items[..., D:]))
    assert torch.equal(batch.tokens[:, -1, :D], items[:, -1, :D])  # q = N
    assert torch.equal(batch.target, labels[:, -1, :D])


def test_random_query_copies_the_item_and_targets_the_label_of_its_pair():
    task = ContinuousTask(n_pairs=5, dim=4, query="random")
    batch = sample(task, 64)
    rows = torch.arange(64)
    assert torch.equal(batch.tokens[:, -1, :4], batch.tokens[rows, 2 * batch.query_index, :4])
    assert torch.equal(batch.target, batch.tokens[rows, 2 * batch.query_index + 1, :4])
    assert len(batch.query_index.unique()) == 5


def test_orthonormal_mode_gives_orthonormal_contents_and_positions():
    task = ContinuousTask(n_pairs=3, dim=8, data="orthonormal")
    batch = sample(task, 4)
    D = task.dim
    contents = batch.tokens[:, :-1, :D]  # (B, 2N, D)
    positions = batch.tokens[:, :, D:]  # p1, Mp1, ..., pN, MpN, pQ
    eye = torch.eye(6)
    assert torch.allclose(contents @ contents.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(positions @ positions.transpose(1, 2), torch.eye(7), atol=1e-5)


def test_label_cue_variants():
    same = sample(ContinuousTask(n_pairs=2, dim=4, label_cue="same"))
    none = sample(ContinuousTask(n_pairs=2, dim=4, label_cue="none"))
    assert torch.equal(same.tokens[:, 1::2, 4:], same.tokens[:, 0:-1:2, 4:])
    assert none.tokens[:, 1::2, 4:].abs().sum() == 0


def test_zero_prediction_costs_one_half_on_orthonormal_data():
    task = ContinuousTask(n_pairs=3, dim=8, data="orthonormal")
    batch = sample(task)
    assert abs(task.loss(torch.zeros_like(batch.target), batch).item() - 0.5) < 1e-6


def test_token_task_draws_distinct_tokens_and_targets_the_label_after_the_matching_item():
    task = TokenTask(n_pairs=4, n_tokens=10)
    batch = sample(task, 32)
    ids = batch.tokens.argmax(-1)  # (B, 9)
    assert all(len(set(row[:-1].tolist())) == 8 for row in ids)
    match = batch.context_matches.float().argmax(1)
    assert torch.equal(ids[:, -1], ids[torch.arange(32), 2 * match])
    assert torch.equal(batch.target, ids[torch.arange(32), 2 * match + 1])
