"""A trained ihcore model opened in TransformerLens computes what it computes in ihcore, and comes back.

Models are trained briefly (a few dozen steps: enough to move every weight away from its
initialisation, including LayerNorm's) on a one-hot token task written here and on the
item–label task; the converted HookedTransformer must give the same logits and attention
patterns to float tolerance, and the model converted back the same parameters.
"""

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformer_lens", reason="the interop extra is not installed: pip install -e '.[interop]'")

from ihcore.interop.hooked_transformer import (
    ContinuousInputs,
    UnsupportedModel,
    from_hooked_transformer,
    run_with_vectors,
    to_hooked_transformer,
    token_ids,
)
from ihcore.spine import devices
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.train import Seeds, train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

VOCAB, HALF = 10, 4
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


@dataclass(frozen=True)
class RepeatBatch(devices.TensorBatch):
    tokens: torch.Tensor  # (B, 2 HALF, VOCAB) one-hot
    ids: torch.Tensor  # (B, 2 HALF)


class RepeatedTokens:
    """Random tokens, then the same tokens again; next-token prediction (the second half is learnable)."""

    def sample(self, batch_size: int, split: str, generator: torch.Generator) -> RepeatBatch:
        half = torch.randint(VOCAB, (batch_size, HALF), generator=generator)
        ids = torch.cat([half, half], dim=1)
        return RepeatBatch(F.one_hot(ids, VOCAB).float(), ids)

    def loss(self, logits: torch.Tensor, batch: RepeatBatch) -> torch.Tensor:
        return F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), batch.ids[:, 1:].reshape(-1))


def trained(config: TransformerConfig, task, steps: int = 30) -> AttentionOnlyTransformer:
    model = AttentionOnlyTransformer(config, seed=3)
    train(model, task, seeds=Seeds.from_base(3), steps=steps, lr=3e-3, batch_size=16, eval_every=steps, progress=False)
    return model.eval()


def compare(model: AttentionOnlyTransformer, hooked, ihcore_inputs: torch.Tensor, ids: torch.Tensor) -> None:
    """Same logits and, layer by layer, the same attention patterns."""
    with torch.no_grad():
        logits, cache = model.run_with_cache(ihcore_inputs)
        hooked_logits, hooked_cache = hooked.run_with_cache(ids)
    torch.testing.assert_close(hooked_logits, logits, **TOLERANCE)
    for layer in range(model.config.n_layers):
        torch.testing.assert_close(hooked_cache[f"blocks.{layer}.attn.hook_pattern"],
                                   cache[f"layer{layer}.attn.pattern"], **TOLERANCE)


TOKEN_MODELS = {
    "2 layers": {},
    "LayerNorm, 3 layers, d_head != d_model / n_heads": {"layer_norm": True, "n_layers": 3, "n_heads": 3, "d_head": 5},
    "strict mask": {"attend_to_self": False},
    "no positions": {"positional": "none", "n_heads": 1},
}


@pytest.mark.parametrize("options", TOKEN_MODELS.values(), ids=TOKEN_MODELS.keys())
def test_trained_token_model_gives_the_same_logits_and_patterns_and_comes_back(options):
    config = TransformerConfig(d_input=VOCAB, d_output=VOCAB, n_positions=2 * HALF, d_model=16,
                               **{"n_heads": 2, **options})
    model = trained(config, RepeatedTokens())
    batch = RepeatedTokens().sample(8, "train", torch.Generator().manual_seed(0))
    hooked = to_hooked_transformer(model)
    compare(model, hooked, batch.tokens, token_ids(batch.tokens))
    assert torch.equal(token_ids(batch.tokens), batch.ids)

    back = from_hooked_transformer(hooked)
    assert back.config.head_size == config.head_size
    assert (back.config.attend_to_self, back.config.layer_norm, back.config.positional) == (
        config.attend_to_self, config.layer_norm, config.positional)
    assert model.state_dict().keys() == back.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name


def test_strict_mask_leaves_position_zero_empty_in_both():
    config = TransformerConfig(d_input=VOCAB, d_output=VOCAB, n_positions=2 * HALF, attend_to_self=False, d_model=8)
    hooked = to_hooked_transformer(AttentionOnlyTransformer(config))
    _, cache = hooked.run_with_cache(torch.zeros(1, 2 * HALF, dtype=torch.long))
    pattern = cache["blocks.0.attn.hook_pattern"][0, 0]
    assert torch.equal(pattern[0], torch.zeros(2 * HALF)) and torch.all(pattern.diagonal() == 0)
    hooked.reset_hooks()  # TL's reset keeps permanent hooks: the mask stays
    assert torch.equal(hooked.run_with_cache(torch.zeros(1, 2 * HALF, dtype=torch.long))[1]
                       ["blocks.0.attn.hook_pattern"], cache["blocks.0.attn.hook_pattern"])


@pytest.fixture(scope="module")
def item_label():
    """A model trained on the item–label task (items are prototypes, no noise) and its task."""
    task = ItemLabelTask(n_pairs=3, item_dim=8, n_labels=4, n_classes=6, n_heldout_classes=6, noise=0.0, seed=1)
    config = TransformerConfig(d_input=task.d_input, d_output=task.n_labels, n_positions=task.n_positions,
                               d_model=16, n_heads=2, layer_norm=True)
    return trained(config, task), task


def vocabulary(task: ItemLabelTask) -> torch.Tensor:
    """Token ids for the item–label task: one per class prototype, then one per label code."""
    world = task._world
    prototypes = torch.cat([world["train_prototypes"], world["heldout_prototypes"]])
    items = F.pad(prototypes, (0, task.n_labels))
    labels = F.pad(torch.eye(task.n_labels), (task.item_dim, 0))
    return torch.cat([items, labels])


def test_item_inputs_become_tokens_through_a_vocabulary(item_label):
    model, task = item_label
    batch = task.sample(16, "in_context", torch.Generator().manual_seed(5))
    V = vocabulary(task)
    compare(model, to_hooked_transformer(model, vocabulary=V), batch.tokens, token_ids(batch.tokens, V))


def test_continuous_items_are_refused_as_tokens_naming_the_ways_through(item_label):
    model, _ = item_label
    noisy = ItemLabelTask(n_pairs=3, item_dim=8, n_labels=4, n_classes=6, n_heldout_classes=6, noise=0.1, seed=1)
    batch = noisy.sample(4, "train", torch.Generator().manual_seed(0))
    with pytest.raises(ContinuousInputs, match=r"continuous item inputs have no token ids.*vocabulary=.*run_with_vectors"):
        token_ids(batch.tokens)
    hooked = to_hooked_transformer(model)
    with torch.no_grad():
        logits, cache = run_with_vectors(hooked, batch.tokens, cache=True)
        expected, ours = model.run_with_cache(batch.tokens)
    torch.testing.assert_close(logits, expected, **TOLERANCE)
    torch.testing.assert_close(cache["blocks.1.attn.hook_pattern"], ours["layer1.attn.pattern"], **TOLERANCE)


def test_unsupported_options_are_refused_with_one_error():
    model = AttentionOnlyTransformer(TransformerConfig(d_input=4, d_output=4, n_positions=4, d_model=8))
    object.__setattr__(model.config, "positional", "rotary")  # an option this converter does not map
    with pytest.raises(UnsupportedModel, match="positional='rotary' is not supported"):
        to_hooked_transformer(model)


@pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated")
def test_transformer_lens_options_ihcore_lacks_are_refused():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=8, n_ctx=4, d_head=4, n_heads=2, d_vocab=5, d_mlp=16,
                                  act_fn="relu", positional_embedding_type="rotary")
    with pytest.raises(UnsupportedModel, match=r"MLP layers.*positional_embedding_type='rotary'"):
        from_hooked_transformer(HookedTransformer(cfg))
