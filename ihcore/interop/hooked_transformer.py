"""The book's attention-only transformer as a TransformerLens 3.x ``HookedTransformer``, and back.

``to_hooked_transformer(model)`` copies an :class:`~ihcore.spine.transformer.AttentionOnlyTransformer`
(any layers, heads, ``d_head``; LayerNorm on or off) into a ``HookedTransformer`` that computes the
same logits and attention patterns; ``from_hooked_transformer(hooked)`` copies one back. Where the
two conventions differ:

=============================  ==================================  =============================================
what                           ihcore                              TransformerLens
=============================  ==================================  =============================================
inputs                         vectors (B, T, d_input): one-hot    token ids (B, T); ``W_E[id]``
                               codes, or continuous items
token id ``i``                 the one-hot input ``e_i``           ``W_E[i]`` (so ``d_vocab = d_input``), or
                                                                   ``vocabulary[i] @ W_E`` with ``vocabulary=``
strict mask                    ``attend_to_self=False``: keys      a permanent hook on every ``hook_attn_scores``
                               ``s < t``; position 0 attends to    sets the diagonal to ``-inf``; TL turns the
                               nothing and writes 0                all ``-inf`` row 0 into zeros, as ihcore does
no positions                   ``positional="none"``               ``W_pos`` of zeros
attention biases               none                                ``b_Q, b_K, b_V, b_O`` zero
LayerNorm                      pre-LN + final LN (``nn.LayerNorm``)  ``normalization_type="LN"``, same eps
hook names                     ``layer{l}.attn.pattern``           ``blocks.{l}.attn.hook_pattern`` (see below)
=============================  ==================================  =============================================

**Continuous item inputs have no token ids.** The item–label task's items are feature vectors
(prototype plus noise), so they cannot be written as TL tokens. Two ways through, both
explicit: convert with ``vocabulary=V`` (row ``i`` of ``V`` is the input vector of token id
``i``, e.g. the noise-free class prototypes and the label codes; exact for those inputs, since
the embedding is linear), or keep ``d_vocab = d_input`` and run the vectors themselves with
:func:`run_with_vectors` (TL's ``hook_embed`` is replaced by ``inputs @ W_E``; every other hook
point is TL's own). :func:`token_ids` refuses inputs that are no token of the vocabulary, with an
error naming both options.

Options this module does not map (a positional scheme other than learned or none, such as a
rotary one; any configuration field it does not know, at a non-default value) are refused with
one :class:`UnsupportedModel` error listing every reason.

Hook names: ihcore ``embed``, ``pos_embed``, ``resid.{l}``, ``layer{l}.attn.{q,k,v,scores,pattern}``,
``logits`` are TL's ``hook_embed``, ``hook_pos_embed``, ``blocks.{l}.hook_resid_pre`` (and
``blocks.{L-1}.hook_resid_post`` for ``resid.L``), ``blocks.{l}.attn.hook_{q,k,v,attn_scores,pattern}``
and the output; ihcore's ``layer{l}.head_out`` (B, T, H, d) is TL's ``hook_result`` with
``use_attn_result``. :data:`HOOK_NAMES` gives the map.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch

with warnings.catch_warnings():  # TransformerLens imports tqdm.auto, which warns in a kernel without ipywidgets
    warnings.filterwarnings("ignore", "IProgress not found")
    from transformer_lens import HookedTransformer, HookedTransformerConfig

from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig

# ihcore hook name (with {l}) -> TransformerLens hook name
HOOK_NAMES = {
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    "resid.{l}": "blocks.{l}.hook_resid_pre",
    "layer{l}.attn.q": "blocks.{l}.attn.hook_q",
    "layer{l}.attn.k": "blocks.{l}.attn.hook_k",
    "layer{l}.attn.v": "blocks.{l}.attn.hook_v",
    "layer{l}.attn.scores": "blocks.{l}.attn.hook_attn_scores",
    "layer{l}.attn.pattern": "blocks.{l}.attn.hook_pattern",
    "layer{l}.head_out": "blocks.{l}.attn.hook_result",
}
# The TransformerConfig fields this module maps; any other field at a non-default value is refused.
MAPPED_FIELDS = {"d_input", "d_output", "n_positions", "n_layers", "n_heads", "d_model", "d_head",
                 "attend_to_self", "positional", "layer_norm", "init_scale"}
STRICT_MASK_ATTRIBUTE = "ihcore_attend_to_self"  # set on converted models: False when the strict mask hook is on


class UnsupportedModel(ValueError):
    """The model uses an option that has no TransformerLens (or ihcore) counterpart here."""


class ContinuousInputs(ValueError):
    """Inputs that are not token ids of the converted model's vocabulary."""


def to_hooked_transformer(model: AttentionOnlyTransformer, *, vocabulary: torch.Tensor | None = None
                          ) -> HookedTransformer:
    """A ``HookedTransformer`` with ``model``'s weights: same logits and attention patterns.

    ``vocabulary`` (V, d_input): token id ``i`` of the result stands for the input vector
    ``vocabulary[i]`` (its ``W_E`` is ``vocabulary @ W_E``). Default: the identity, token ``i`` is
    the one-hot input ``e_i`` and ``d_vocab = d_input``. The result is on the CPU, in ``model``'s
    dtype, with no tokenizer (pass token ids, or vectors through :func:`run_with_vectors`).
    """
    problems = _ihcore_problems(model)
    if problems:
        raise UnsupportedModel("cannot convert to TransformerLens: " + "; ".join(problems))
    config = model.config
    W_E = model.W_E.detach().cpu()
    if vocabulary is not None:
        vocabulary = torch.as_tensor(vocabulary, dtype=W_E.dtype)
        if vocabulary.ndim != 2 or vocabulary.shape[1] != config.d_input:
            raise ValueError(f"vocabulary must have shape (V, d_input={config.d_input}), got {tuple(vocabulary.shape)}")
        W_E = vocabulary @ W_E  # (V, d): the embedding is linear, so exact for these inputs
    eps = model.norms[0].eps if config.layer_norm else 1e-5
    cfg = HookedTransformerConfig(
        n_layers=config.n_layers, d_model=config.d_model, n_ctx=config.n_positions, d_head=config.head_size,
        n_heads=config.n_heads, d_vocab=W_E.shape[0], d_vocab_out=config.d_output, attn_only=True, d_mlp=None,
        act_fn=None, normalization_type="LN" if config.layer_norm else None, positional_embedding_type="standard",
        eps=eps, default_prepend_bos=False, init_weights=False, device="cpu", dtype=W_E.dtype,
    )
    with warnings.catch_warnings():  # 3.x warns that 4.x drops HookedTransformer: the pin is the answer
        warnings.filterwarnings("ignore", "HookedTransformer is deprecated", DeprecationWarning)
        hooked = HookedTransformer(cfg)
    state = {name: torch.zeros_like(value) for name, value in hooked.state_dict().items()}  # biases stay 0
    state["embed.W_E"] = W_E
    state["pos_embed.W_pos"] = model.W_pos.detach().cpu() if model.W_pos is not None else state["pos_embed.W_pos"]
    for layer, attention in enumerate(model.layers):
        for name in ("W_Q", "W_K", "W_V", "W_O"):  # same layout: (H, d, e) and (H, e, d)
            state[f"blocks.{layer}.attn.{name}"] = getattr(attention, name).detach().cpu()
        if config.layer_norm:
            state[f"blocks.{layer}.ln1.w"] = model.norms[layer].weight.detach().cpu()
            state[f"blocks.{layer}.ln1.b"] = model.norms[layer].bias.detach().cpu()
    if config.layer_norm:
        state["ln_final.w"] = model.norms[-1].weight.detach().cpu()
        state["ln_final.b"] = model.norms[-1].bias.detach().cpu()
    state["unembed.W_U"] = model.W_U.detach().cpu()
    state["unembed.b_U"] = model.b_U.detach().cpu()
    for name, value in hooked.state_dict().items():  # buffers (IGNORE = -inf, ...) keep TL's values
        if not any(name == p for p, _ in hooked.named_parameters()):
            state[name] = value
    hooked.load_state_dict(state, strict=True)
    if not config.attend_to_self:
        for layer in range(config.n_layers):
            hooked.add_perma_hook(f"blocks.{layer}.attn.hook_attn_scores", forbid_current_position)
    setattr(hooked, STRICT_MASK_ATTRIBUTE, config.attend_to_self)
    return hooked


def forbid_current_position(scores: torch.Tensor, hook=None) -> torch.Tensor:
    """TL hook on ``hook_attn_scores`` (B, H, T_q, T_k): query t may not attend to key t (ihcore's strict mask)."""
    T_q, T_k = scores.shape[-2:]
    offset = T_k - T_q  # with a key-value cache the queries are the last T_q positions
    current = torch.arange(T_k, device=scores.device)[None, :] == torch.arange(T_q, device=scores.device)[:, None] + offset
    return scores.masked_fill(current, float("-inf"))


def from_hooked_transformer(hooked: HookedTransformer) -> AttentionOnlyTransformer:
    """An ihcore token model with ``hooked``'s weights (``d_input = d_vocab``; inputs are one-hot codes).

    A model made by :func:`to_hooked_transformer` comes back with the same parameters (with a
    ``vocabulary``, as a token model over that vocabulary). Options ihcore lacks (MLPs, attention
    biases, other positional schemes or masks, ...) are refused with one :class:`UnsupportedModel`.
    """
    problems = _hooked_problems(hooked)
    if problems:
        raise UnsupportedModel("cannot convert from TransformerLens: " + "; ".join(problems))
    cfg = hooked.cfg
    W_pos = hooked.W_pos.detach().cpu()
    config = TransformerConfig(
        d_input=cfg.d_vocab, d_output=cfg.d_vocab_out, n_positions=cfg.n_ctx, n_layers=cfg.n_layers,
        n_heads=cfg.n_heads, d_model=cfg.d_model,
        d_head=None if cfg.d_head * cfg.n_heads == cfg.d_model else cfg.d_head,
        attend_to_self=getattr(hooked, STRICT_MASK_ATTRIBUTE, True),
        positional="learned" if W_pos.any() else "none", layer_norm=cfg.normalization_type is not None,
    )
    model = AttentionOnlyTransformer(config)
    state = hooked.state_dict()
    with torch.no_grad():
        model.W_E.copy_(state["embed.W_E"])
        if model.W_pos is not None:
            model.W_pos.copy_(W_pos)
        for layer, attention in enumerate(model.layers):
            for name in ("W_Q", "W_K", "W_V", "W_O"):
                getattr(attention, name).copy_(state[f"blocks.{layer}.attn.{name}"])
        if config.layer_norm:
            prefixes = [f"blocks.{layer}.ln1" for layer in range(cfg.n_layers)] + ["ln_final"]
            for norm, prefix in zip(model.norms, prefixes):  # LNPre has no weights: w = 1, b = 0
                norm.weight.copy_(state.get(f"{prefix}.w", torch.ones(cfg.d_model)))
                norm.bias.copy_(state.get(f"{prefix}.b", torch.zeros(cfg.d_model)))
        model.W_U.copy_(state["unembed.W_U"])
        model.b_U.copy_(state["unembed.b_U"])
    return model


def token_ids(inputs: torch.Tensor, vocabulary: torch.Tensor | None = None) -> torch.Tensor:
    """ihcore inputs (B, T, d_input) -> TL token ids (B, T), for a model converted with ``vocabulary``.

    Every input vector must be a row of ``vocabulary`` exactly (default: a one-hot code).
    Raises :class:`ContinuousInputs`, naming the two ways through, where one is not.
    """
    inputs = torch.as_tensor(inputs)
    if vocabulary is None:
        is_token = ((inputs == 0) | (inputs == 1)).all(-1) & (inputs.sum(-1) == 1)
        ids = inputs.argmax(-1)
    else:
        vocabulary = torch.as_tensor(vocabulary, dtype=inputs.dtype, device=inputs.device)
        same = (inputs[..., None, :] == vocabulary).all(-1)  # (B, T, V)
        is_token, ids = same.any(-1), same.to(torch.int8).argmax(-1)
    if not is_token.all():
        where = tuple(int(i) for i in (~is_token).nonzero()[0])
        kind = "one-hot codes" if vocabulary is None else "rows of the vocabulary"
        raise ContinuousInputs(
            f"{int((~is_token).sum())} of {is_token.numel()} input vectors (first at batch, position {where}) are "
            f"not {kind}: continuous item inputs have no token ids. Convert with "
            "to_hooked_transformer(model, vocabulary=V), V holding the input vector of each token id (e.g. the "
            "class prototypes and label codes), and pass the same V here; or run the vectors as they are with "
            "run_with_vectors(hooked, inputs) on a model converted without a vocabulary"
        )
    return ids


def run_with_vectors(hooked: HookedTransformer, inputs: torch.Tensor, *, cache: bool = False):
    """Run ``hooked`` on ihcore input vectors (B, T, d_input): continuous items included.

    Token ids are placeholders (0); TL's ``hook_embed`` is replaced by ``inputs @ W_E``, so every
    other hook point, and ``run_with_cache``'s record, is TL's own. Needs a model converted without
    a vocabulary (``d_vocab = d_input``). Returns logits, or ``(logits, ActivationCache)`` with ``cache``.
    """
    if inputs.shape[-1] != hooked.cfg.d_vocab:
        raise ValueError(f"inputs of size {inputs.shape[-1]} need a model converted without a vocabulary "
                         f"(d_vocab = d_input); this one has d_vocab={hooked.cfg.d_vocab}")
    embed = inputs.to(hooked.W_E.dtype) @ hooked.W_E  # (B, T, d)

    def use_vectors(activation: torch.Tensor, hook=None) -> torch.Tensor:
        return embed

    placeholder = torch.zeros(inputs.shape[:2], dtype=torch.long)
    with hooked.hooks(fwd_hooks=[("hook_embed", use_vectors)]):
        return hooked.run_with_cache(placeholder) if cache else hooked(placeholder)


def _ihcore_problems(model) -> list[str]:
    if not isinstance(model, AttentionOnlyTransformer):
        return [f"expected an ihcore AttentionOnlyTransformer, got {type(model).__name__}"]
    config = model.config
    problems = []
    if config.positional not in ("learned", "none"):
        problems.append(f"positional={config.positional!r} is not supported (only 'learned' and 'none' map to "
                        "TransformerLens's 'standard' positions here)")
    for field in dataclasses.fields(config):
        if field.name not in MAPPED_FIELDS and getattr(config, field.name) != field.default:
            problems.append(f"option {field.name}={getattr(config, field.name)!r} is not supported")
    expected = {"W_E", "W_U", "b_U"} | ({"W_pos"} if model.W_pos is not None else set())
    expected |= {f"layers.{l}.{w}" for l in range(config.n_layers) for w in ("W_Q", "W_K", "W_V", "W_O")}
    expected |= {f"norms.{i}.{w}" for i in range(len(model.norms)) for w in ("weight", "bias")}
    unknown = sorted(set(model.state_dict()) - expected)
    if unknown:
        problems.append(f"parameters or buffers with no TransformerLens counterpart: {unknown}")
    return problems


def _hooked_problems(hooked) -> list[str]:
    if not isinstance(hooked, HookedTransformer):
        return [f"expected a transformer_lens HookedTransformer, got {type(hooked).__name__}"]
    cfg = hooked.cfg
    problems = []
    checks = [
        (cfg.attn_only, "it has MLP layers (attn_only=False)"),
        (cfg.normalization_type in (None, "LN", "LNPre"), f"normalization_type={cfg.normalization_type!r}"),
        (cfg.normalization_type is None or cfg.eps == 1e-5, f"LayerNorm eps={cfg.eps} (ihcore uses 1e-5)"),
        (cfg.positional_embedding_type == "standard", f"positional_embedding_type={cfg.positional_embedding_type!r}"),
        (cfg.attention_dir == "causal", f"attention_dir={cfg.attention_dir!r}"),
        (cfg.use_attn_scale and math.isclose(cfg.attn_scale, math.sqrt(cfg.d_head)),
         f"attention scale {cfg.attn_scale if cfg.use_attn_scale else 1} (ihcore divides by sqrt(d_head))"),
        (not getattr(cfg, "scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx=True"),
        (getattr(cfg, "attn_types", None) is None or set(cfg.attn_types) == {"global"}, "local attention"),
        (getattr(cfg, "n_key_value_heads", None) in (None, cfg.n_heads), "grouped-query attention"),
        (not getattr(cfg, "use_qk_norm", False), "use_qk_norm=True"),
        (not getattr(cfg, "use_attention_sinks", False), "use_attention_sinks=True"),
        ((getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0) <= 0, "attention score soft cap"),
        ((getattr(cfg, "output_logits_soft_cap", -1.0) or -1.0) <= 0, "output logit soft cap"),
    ]
    problems += [f"unsupported: {text}" for ok, text in checks if not ok]
    if problems:
        return problems
    state = hooked.state_dict()
    biased = [name for name in state if name.rsplit(".", 1)[-1] in ("b_Q", "b_K", "b_V", "b_O") and state[name].any()]
    if biased:
        problems.append(f"nonzero attention biases (ihcore's attention has none): {biased}")
    strict = getattr(hooked, STRICT_MASK_ATTRIBUTE, True) is False
    for layer in range(cfg.n_layers):
        point = hooked.hook_dict[f"blocks.{layer}.attn.hook_attn_scores"]
        permanent = sum(handle.is_permanent for handle in point.fwd_hooks)
        if permanent != (1 if strict else 0):
            problems.append(f"blocks.{layer}.attn.hook_attn_scores has {permanent} permanent hooks; only the strict "
                            "mask of to_hooked_transformer can be carried back")
    other = [name for name, point in hooked.hook_dict.items() if "hook_attn_scores" not in name
             and any(handle.is_permanent for handle in point.fwd_hooks)]
    if other:
        problems.append(f"permanent hooks change the computation at {other}; remove them first")
    return problems
