"""The standard repeated-random-tokens induction score, and token ids for item–label models."""

from dataclasses import replace

import pytest
import torch

pytest.importorskip("transformer_lens", reason="the interop extra is not installed: pip install -e '.[interop]'")

from ihcore.interop.hooked_transformer import to_hooked_transformer, token_ids
from ihcore.interop.induction import (
    content_blind_score,
    induction_stripe,
    item_label_vocabulary,
    repeated_item_label_tokens,
    repeated_random_tokens,
    repeated_tokens_induction_score,
)
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig


def test_repeated_tokens_repeat_and_the_stripe_reads_the_token_after_the_earlier_occurrence():
    tokens = repeated_random_tokens(50, 4, 3, torch.Generator().manual_seed(0))
    assert tokens.shape == (3, 8) and torch.equal(tokens[:, :4], tokens[:, 4:])
    perfect = torch.zeros(1, 1, 8, 8)
    perfect[0, 0, torch.arange(4, 8), torch.arange(1, 5)] = 1.0  # t -> t - L + 1
    assert torch.equal(induction_stripe(perfect, 4), torch.ones(1, 1, 4))


def test_a_head_blind_to_content_scores_the_floor():
    config = TransformerConfig(d_input=20, d_output=20, n_positions=8, n_layers=1, n_heads=2, d_model=8)
    model = AttentionOnlyTransformer(config)
    with torch.no_grad():
        model.layers[0].W_Q.zero_()  # every score 0: uniform attention over the keys s <= t
    tokens = repeated_random_tokens(20, 4, 16, torch.Generator().manual_seed(1))
    score = repeated_tokens_induction_score(to_hooked_transformer(model), tokens)
    assert score.shape == (1, 2)
    assert score == pytest.approx(content_blind_score(4), abs=1e-6)


def test_item_label_vocabulary_gives_every_noise_free_sequence_token_ids():
    task = ItemLabelTask(n_pairs=3, item_dim=6, n_labels=4, n_classes=5, n_heldout_classes=5, noise=0.1, seed=2)
    vocabulary = item_label_vocabulary(task)
    assert vocabulary.shape == (5 + 5 + 4, task.d_input)
    batch = replace(task, noise=0.0).sample(8, "in_context", torch.Generator().manual_seed(0))
    ids = token_ids(batch.tokens, vocabulary)
    assert torch.equal(vocabulary[ids], batch.tokens)
    assert (ids[:, 1::2] >= 10).all() and (ids[:, 0::2] >= 5).all()  # labels after the items; held-out classes
    formatted = repeated_item_label_tokens(10, 4, 2, 8, torch.Generator().manual_seed(0))
    assert torch.equal(formatted[:, :4], formatted[:, 4:]) and (formatted[:, 1::2] >= 10).all()
