"""Musat et al.'s order γ₃ → β₂ → α₃, tested in Singh et al.'s setting, through two lenses.

Musat et al. 2025 claim the induction circuit's parts emerge in the order γ₃ (copy/readout),
then β₂ (matching), then α₃ (previous-token) — as the ICLR 2026 reviewers state it for the
minimal model, and as a published summary of the paper's v2 (Fig. 8) states it for a
standard transformer. In Singh et al. 2024's vocabulary (the subcircuits of their clamping
experiments, Fig. 5b) these are subcircuits C (the induction head's OV copies the
label), B (its QK match) and A (a layer-0 head attends to the previous token and copies
it). One run (:func:`run`) trains the standard 2-layer, 8-head attention-only model
on Singh's few-shot task (``x1 y1 x2 y2 xq``), keeps a checkpoint at every evaluation,
picks that seed's own heads from its final model (strongest layer-0 previous-token head,
strongest layer-1 induction head) and then reads a curve per subcircuit off every
checkpoint, through each lens.

**Musat's lens** (weight-based, after Musat et al.'s progress measures, v2 Eqs. 20-22; :func:`weight_measures`). A token here
is ``[item (item_dim) ; label one-hot (n_labels)]``, so the one-hot forms of
:mod:`ihcore.spine.circuit_weights` are taken over the token vectors that play each role:

* A ← α̃₃: the layer-0 head's position-to-position scores ``S[n, m]`` (``circuit_weights.position_qk``)
  on the stripe m = n - 1;
* B ← β̃₂: the matching form ``S[k, j] = (t_k W_Q1) . (t_j W_V0 W_O0 W_K1) / sqrt(e)`` over the
  *training prototypes* t_k = [μ_k ; 0] (a query item against a key holding layer 0's copy
  of a context item), on the diagonal (same class);
* C ← γ̃₃: the copying form ``C[w, u] = (t_u W_V1 W_O1 W_U)[w]`` over the *label tokens*
  t_u = [0 ; e_u], on the diagonal (logit of the label attended to).

Primary measures are *contrasts* (``contrast=True``): diagonal (or stripe) mean minus the
mean of the competing entries — the other classes (B), the other labels' logits (C), the
other causal keys of the same query row (A). A softmax ignores what every competitor
shares, and here much is shared: prototypes are non-centred (a common offset), so the raw
diagonal of B grows with the common mode, not with the match. The raw means (Musat's
Eqs. 20-22 exactly, ``contrast=False``) are kept as the lens ``musat_raw``; on one-hot
tokens they equal :func:`ihcore.spine.circuit_weights.circuit_readouts` (tested).

**Singh's lens** (functional, on the fixed evaluation batch; :func:`functional_measures`):

* A: the chosen layer-0 head's previous-token score (attention from each label to its item);
* B: the chosen layer-1 head's induction score (attention to the correct label minus the
  incorrect one) *with the chosen layer-0 head's pattern clamped to the ideal
  previous-token pattern and the other layer-0 heads removed*. The clamp takes step 1 (A's
  attention) out of B's measure, so B does not inherit A's rise time; what is left is the
  match (3qk, 4) through that head's copy of the item (step 2) — the same path as β̃₂.
  The unclamped induction score would measure A and B together and so could never rise
  before A; Singh's own "only B free" clamp (layer 0 + copy) feeds layer 1 the raw shifted
  embeddings, an encoding the trained heads never read (the Singh chapter shows that
  evaluation-time clamp can make the loss worse), so it is kept only as a secondary lens;
* C: the loss with the match clamped (condition ``1,2,3qk,4``: the induction head's query
  row set to weight 1 on the correct label, the other layer-1 heads removed): only the
  head's copying (3v, 5) is left free.

Secondary lens ``singh_clamp`` — A as above, B = the loss under Singh's "layer 0 + copy"
clamp (only B free), C as above — uses Singh et al.'s clamp literally as an evaluation-time
measure, as their App. Fig. 10 applies clamps to checkpoints of an unclamped run.
Secondary lens ``singh_head`` (added after seeing seed 0's curves, so not a primary
lens): A, B as in ``singh``, C = the induction head's *own* logit margin under the match
clamp (correct label minus the other in-context label, from its direct write). The
match-clamped loss also falls when layer-0 heads copy both context labels into the query
position (the ln 2 plateau: "copy *a* label from context"), which is copying but not by
the induction head's OV; the margin isolates the head.

**Rise time** (:func:`rise_time`), stated before any result was seen: y_0 = the curve at
step 0, y_end = the median of its last 5 evaluations, Δ = s (y_end - y_0) with s = +1 for
scores and contrasts (expected to rise) and s = -1 for losses (expected to fall). Noise
σ = 1.4826 · MAD(first differences) / √2, the evaluation-to-evaluation jitter of the
curve. A curve with Δ ≤ 5σ (or Δ ≤ 0) did not change beyond noise (or moved the wrong
way) and has no rise time (NaN). Otherwise the rise time at fraction f is the first
evaluation step at which s (y(t) - y_0) ≥ f Δ. Default f = 0.5; 0.1 and 0.9 are reported too.

**Horizon and bands** (for the recipe controls, :mod:`ihcore.across.recipes`). ``horizon`` reads a
run as if it had stopped at that step (its end value then the median of the last evaluations up to
it), so one long run shows what a shorter one would have said. A run that diverged (its curves
not finite from some evaluation on) is read up to its last finite evaluation (a rule added after
plain SGD diverged in some seeds). A rise time's *band*
(:func:`rise_band`) runs from the evaluation before the first crossing of f - 2σ/Δ to the first
crossing of f + 2σ/Δ: the evaluation grid and the curve's noise. The gaps T_B - T_C and T_A - T_B get
intervals from the bands (:func:`gap_band`) and are judged on them (:func:`judge_gap`): a seed is
*settled* in Musat's order when both intervals lie above 0.

**Order** (:func:`order_over_seeds`): Musat's order holds for a seed when T_C < T_B < T_A
strictly; a tie (same evaluation) or a NaN counts as not ordered. The chapter's claims are
claims over seeds on the per-seed indicator (1 ordered, 0 not): its median says whether most
seeds are ordered, and its order-statistic interval whether that is settled at S seeds. The
per-seed *margin* min(T_B - T_C, T_A - T_B) (-inf when a rise time is missing; > 0 exactly
when the seed is ordered) shows how far each seed is from the order or from losing it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ihcore.singh import SinghSetting
from ihcore.singh.subcircuits import PHASE_CHANGE_LOSS, condition_clamp, singh_model, singh_task
from ihcore.spine import clamps, measures
from ihcore.spine.circuit_weights import copying_ov, matching_qk, position_qk
from ihcore.spine.curves import first_crossing, first_step_below
from ihcore.spine.train import Member, Seeds, run_in_groups, train_members
from ihcore.spine.transformer import AttentionOnlyTransformer
from ihcore.spine.validation import refuse_invalid

SUBCIRCUITS = ("C", "B", "A")  # Musat's claimed order: C (γ₃) first, then B (β₂), then A (α₃)
LENSES = ("musat", "singh", "musat_raw", "singh_clamp", "singh_head")
# s in the rise-time definition: +1 for curves expected to rise, -1 for losses
DIRECTIONS = {
    "musat": {"A": 1, "B": 1, "C": 1},
    "musat_raw": {"A": 1, "B": 1, "C": 1},
    "singh": {"A": 1, "B": 1, "C": -1},
    "singh_clamp": {"A": 1, "B": -1, "C": -1},
    "singh_head": {"A": 1, "B": 1, "C": 1},
}
FRACTIONS = (0.1, 0.5, 0.9)
END_WINDOW = 5  # evaluations whose median is the curve's end value
NOISE_MULTIPLE = 5.0  # a change must exceed this many noise standard deviations
BAND_SIGMAS = 2.0  # a rise time's band: the crossing of its fraction ± this many noise σ (relative to Δ)
SETTLED = ("ordered", "undecided", "against", "no rise")  # a seed's order, judged on its gaps' bands
GAPS = {"B-C": ("B", "C"), "A-B": ("A", "B")}  # Musat's order: both gaps > 0
MATCH_CLAMP = "1,2,3qk,4 (match: A+B)"
LAYER0_COPY_CLAMP = "1,2,3v,5 (layer 0 + copy: A+C)"


# --- Musat's lens: weight-based measures on item-label tokens ------------------------------------------


def diagonal_measure(matrix: torch.Tensor, contrast: bool) -> float:
    """Mean of the diagonal of a square matrix, minus the mean off the diagonal if ``contrast``."""
    matrix = matrix.detach()
    diagonal = torch.diagonal(matrix)
    if not contrast:
        return float(diagonal.mean())
    n = matrix.shape[0]
    off = matrix[~torch.eye(n, dtype=torch.bool)]
    return float(diagonal.mean() - off.mean())


def stripe_measure(scores: torch.Tensor, contrast: bool) -> float:
    """α̃₃ of a (T, T) position score matrix: mean over query rows n ≥ 1 of S[n, n-1].

    With ``contrast``, each row's stripe entry minus the mean of the row's other causal
    entries (keys m ≤ n, m ≠ n-1): what the softmax of that row sees.
    """
    scores = scores.detach()
    T = scores.shape[0]
    stripe = torch.diagonal(scores, -1)  # (T-1,) rows 1..T-1
    if not contrast:
        return float(stripe.mean())
    others = []
    for n in range(1, T):
        row = scores[n, : n + 1]
        keep = torch.ones(n + 1, dtype=torch.bool)
        keep[n - 1] = False
        others.append(row[keep].mean())
    return float((stripe - torch.stack(others)).mean())


def item_tokens(task) -> torch.Tensor:
    """(n_classes, d_input) the training prototypes as item tokens [μ_k ; 0]."""
    prototypes = task.train_prototypes
    return torch.cat([prototypes, torch.zeros(len(prototypes), task.n_labels)], dim=1)


def label_tokens(task) -> torch.Tensor:
    """(n_labels, d_input) the label tokens [0 ; e_u]."""
    return torch.cat([torch.zeros(task.n_labels, task.item_dim), torch.eye(task.n_labels)], dim=1)


def weight_measures(model, items: torch.Tensor, labels: torch.Tensor, prev_head: int, induction_head: int,
                    contrast: bool = True) -> dict[str, float]:
    """Musat's progress measures as subcircuits A (α̃₃), B (β̃₂ over ``items``), C (γ̃₃ over ``labels``).

    ``items`` (K, d_input) are the query/matched tokens, ``labels`` (L, d_input) the copied
    tokens; their outputs are the first L logits' diagonal. See the module docstring.
    """
    with torch.no_grad():
        copying = copying_ov(model, induction_head, tokens=labels)  # (d_output, L)
        return {
            "A": stripe_measure(position_qk(model, prev_head), contrast),
            "B": diagonal_measure(matching_qk(model, prev_head, induction_head, tokens=items), contrast),
            "C": diagonal_measure(copying[: labels.shape[0]], contrast),
        }


# --- Singh's lens: functional measures on a batch -------------------------------------------------------


def functional_measures(model, task, batch, prev_head: int, induction_head: int) -> dict[str, float]:
    """Subcircuits A, B, C measured by what they do (module docstring), and the clamp-lens B.

    Keys: ``A`` previous-token score, ``B`` induction score with ideal previous-token
    attention, ``C`` loss with the match clamped, ``B_clamp`` loss under Singh's layer-0 +
    copy clamp, ``C_head`` the induction head's own logit margin under the match clamp
    (its direct write to the correct label's logit minus the other in-context label's),
    plus ``loss`` and ``induction_score`` of the unclamped model.
    """
    H = model.config.n_heads
    ideal_layer0 = clamps.only_heads(0, [prev_head], H) + clamps.pattern(0, prev_head, clamps.previous_token_pattern)
    names = ["layer0.attn.pattern", "layer1.attn.pattern"]
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch.tokens, names=names)
        with ideal_layer0.on(model, batch):
            _, ideal_cache = model.run_with_cache(batch.tokens, names=["layer1.attn.pattern"])
        with condition_clamp(MATCH_CLAMP, model, prev_head, induction_head).on(model, batch):
            match_logits, match_cache = model.run_with_cache(batch.tokens, names=["layer1.head_out"])
        with condition_clamp(LAYER0_COPY_CLAMP, model, prev_head, induction_head).on(model, batch):
            b_clamp = task.loss(model(batch.tokens), batch).item()
    head_logits = match_cache["layer1.head_out"][:, -1, induction_head] @ model.W_U.detach()  # (B, n_labels)
    in_context = head_logits.gather(1, batch.context_labels)  # (B, N)
    match = batch.context_matches.float()
    margin = (in_context * match).sum(1) / match.sum(1).clamp(min=1) - (in_context * (1 - match)).sum(1) / (1 - match).sum(1).clamp(min=1)
    return {
        "A": float(measures.previous_token_score(cache["layer0.attn.pattern"], batch)[prev_head]),
        "B": float(measures.induction_score(ideal_cache["layer1.attn.pattern"], batch)[induction_head]),
        "C": task.loss(match_logits, batch).item(),
        "B_clamp": b_clamp,
        "C_head": float(margin.mean()),
        "loss": task.loss(logits, batch).item(),
        "induction_score": float(measures.induction_score(cache["layer1.attn.pattern"], batch)[induction_head]),
    }


def choose_heads(model, batch) -> tuple[int, int]:
    """(strongest layer-0 previous-token head, strongest layer-1 induction head) of ``model`` on ``batch``."""
    patterns = measures.attention_patterns(model, batch)
    return (int(np.argmax(measures.previous_token_score(patterns[0], batch))),
            int(np.argmax(measures.induction_score(patterns[1], batch))))


# --- one run per seed ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderConfig(SinghSetting):
    """One run of the order experiment: the Singh study's setting (task, model and training of
    its baseline, :class:`ihcore.singh.SinghSetting`), trained unclamped, with a checkpoint every
    ``eval_every`` steps (finer than the Singh chapter's grid) read on ``eval_batch_size`` fixed
    sequences."""

    eval_every: int = 10
    eval_batch_size: int = 128
    optimizer: str = "adam"  # or "sgd" (plain: no momentum, no weight decay)
    init_scale: float = 1.0  # every weight ~ N(0, init_scale^2 / fan_in); < 1: a small init

    def __post_init__(self) -> None:
        super().__post_init__()
        refuse_invalid(self, {
            "optimizer": (self.optimizer in ("adam", "sgd"), "'adam' or 'sgd'"),
            "init_scale": (self.init_scale > 0, "a number > 0"),
        })


def build_model(config: OrderConfig, task) -> AttentionOnlyTransformer:
    """Singh's baseline model for ``task`` (:func:`ihcore.singh.subcircuits.singh_model`), its
    weights drawn from the same seed and scaled by ``config.init_scale``."""
    seed = Seeds.from_base(config.seed).init
    model = singh_model(task, config.n_heads, config.d_model, seed, config.n_layers)
    if config.init_scale == 1.0:
        return model
    return AttentionOnlyTransformer(dataclasses.replace(model.config, init_scale=config.init_scale), seed=seed)


def run(config: OrderConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train one seed on ``device`` (None: the current device), pick its heads from its final
    model, and read every lens's curves off the checkpoints (on the CPU): :func:`run_many` of one config.

    Returns (JSON-friendly: numpy arrays, ints, floats) the config's fields; ``eval_steps``
    (E,); ``prev_head``, ``induction_head``; ``curve/<lens>/<A|B|C>`` (E,) for each lens in
    :data:`LENSES`; ``loss`` and ``induction_score`` (E,) of the unclamped model;
    ``phase_change`` (first step with loss below 0.4 ln 2, or None).
    """
    return run_many([config], device=device, progress=progress)[0]


def run_many(configs: Sequence[OrderConfig], *, device: str | torch.device | None = None,
             progress: bool | None = None) -> list[dict]:
    """:func:`run` of every config, in order; configs that differ only in ``seed`` train as one
    ensemble (:func:`ihcore.spine.train.train_members`: one batched computation, each member with
    its own init, data and evaluation seeds). Each seed's heads are chosen from its own final
    model, and its curves read off its own checkpoints."""
    def run_group(group: list[OrderConfig]) -> list[dict]:
        setting = group[0]
        eval_steps = sorted(set(range(0, setting.steps + 1, setting.eval_every)) | {setting.steps})
        members = []
        for config in group:
            seeds = Seeds.from_base(config.seed)
            task = singh_task(config.n_labels, config.n_classes, config.item_dim, config.prototypes, seeds.init)
            members.append(Member(build_model(config, task), task, seeds))
        histories = train_members(
            members, steps=setting.steps, lr=setting.lr, batch_size=setting.batch_size, eval_every=setting.steps,
            optimizer=setting.optimizer,
            eval_batch_size=setting.eval_batch_size, checkpoint_steps=eval_steps, progress=progress, device=device,
        )
        return [read_lenses(config, member, history, eval_steps)
                for config, member, history in zip(group, members, histories)]

    return run_in_groups(configs, run_group)


def read_lenses(config: OrderConfig, member: Member, history, eval_steps: list[int]) -> dict:
    """One seed's result (see :func:`run`) from its trained ``member`` and the checkpoints of its ``history``."""
    task, model, seeds = member.task, member.model, member.seeds
    model.cpu()  # the checkpoints are CPU copies: every lens reads them on the CPU
    # the same fixed batch train() evaluates on (first split drawn from the evaluation seed)
    batch = task.sample(config.eval_batch_size, "train", torch.Generator().manual_seed(seeds.eval))
    model.eval()
    prev_head, induction_head = choose_heads(model, batch)  # the final model's own heads
    items, labels = item_tokens(task), label_tokens(task)
    rows = []
    for step in eval_steps:
        model.load_state_dict(history.checkpoints[step])
        functional = functional_measures(model, task, batch, prev_head, induction_head)
        row = {f"musat/{k}": v for k, v in weight_measures(model, items, labels, prev_head, induction_head, True).items()}
        row |= {f"musat_raw/{k}": v for k, v in weight_measures(model, items, labels, prev_head, induction_head, False).items()}
        row |= {f"singh/{k}": functional[k] for k in "ABC"}
        row |= {"singh_clamp/A": functional["A"], "singh_clamp/B": functional["B_clamp"], "singh_clamp/C": functional["C"]}
        row |= {"singh_head/A": functional["A"], "singh_head/B": functional["B"], "singh_head/C": functional["C_head"]}
        row |= {"loss": functional["loss"], "induction_score": functional["induction_score"]}
        rows.append(row)
    curves = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    steps = np.array(eval_steps)
    return {
        **asdict(config),
        "eval_steps": steps,
        "prev_head": prev_head,
        "induction_head": induction_head,
        **{f"curve/{name}": values for name, values in curves.items() if "/" in name},
        "loss": curves["loss"],
        "induction_score": curves["induction_score"],
        "phase_change": first_step_below(steps, curves["loss"], PHASE_CHANGE_LOSS),
    }


# --- rise times and the order ----------------------------------------------------------------------------


def curve_noise(values: np.ndarray) -> float:
    """Evaluation-to-evaluation jitter σ of a curve: 1.4826 · MAD(first differences) / √2."""
    diffs = np.diff(np.asarray(values, dtype=float))
    if diffs.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2))


def _until(steps, values, horizon: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The evaluations at steps <= ``horizon`` (all if None): the curve a run stopped there would have;
    and only those before the curve's first non-finite value (a run that diverged is read up to its
    last finite evaluation, as if it had stopped there)."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    keep = np.cumprod(np.isfinite(values)).astype(bool)
    if horizon is not None:
        keep &= steps <= horizon
    return steps[keep], values[keep]


def diverged_at(result: dict) -> int | None:
    """The first evaluation step at which the run's loss is not finite (None if it never is)."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(result["loss"], dtype=float)))
    return int(result["eval_steps"][bad[0]]) if bad.size else None


def covered_fraction(values: np.ndarray, direction: int = 1) -> np.ndarray:
    """(E,) the fraction of its change from step 0 to its end value (the median of the last
    :data:`END_WINDOW` evaluations) that the curve has covered at each evaluation; ``direction``
    -1 for a loss (the change is a fall). NaN everywhere if the curve did not change."""
    values = direction * np.asarray(values, dtype=float)
    change = float(np.median(values[-END_WINDOW:])) - values[0]
    return (values - values[0]) / change if change != 0 else np.full(values.shape, np.nan)


def _change(values: np.ndarray) -> float:
    """The curve's change Δ (already signed by its direction), or NaN if not beyond its noise."""
    change = float(np.median(values[-END_WINDOW:])) - values[0]
    return change if change > 0 and change > NOISE_MULTIPLE * curve_noise(values) else float("nan")


def rise_time(steps: np.ndarray, values: np.ndarray, fraction: float = 0.5, direction: int = 1,
              horizon: int | None = None) -> float:
    """First step at which the curve has covered ``fraction`` of its change (module docstring); NaN if none.

    ``direction`` +1: the change is a rise; -1: a fall (a loss). ``horizon``: read the run as
    if it had stopped at that step (its end value is then the median of the last evaluations
    up to it); None: the whole run.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    steps, values = _until(steps, direction * np.asarray(values, dtype=float), horizon)
    if len(values) < 2 or np.isnan(_change(values)):
        return float("nan")
    return first_crossing(steps, covered_fraction(values), fraction)


def rise_band(steps: np.ndarray, values: np.ndarray, fraction: float = 0.5, direction: int = 1,
              horizon: int | None = None) -> tuple[float, float]:
    """(earliest, latest) step at which the curve's crossing of ``fraction`` can lie, given its
    evaluation grid and its noise: from the evaluation before the first crossing of
    ``fraction - BAND_SIGMAS σ/Δ`` to the first crossing of ``fraction + BAND_SIGMAS σ/Δ`` (the
    last evaluation if it never gets there), σ the curve's jitter (:func:`curve_noise`) and Δ
    its change. (NaN, NaN) if the curve has no rise time."""
    steps, values = _until(steps, direction * np.asarray(values, dtype=float), horizon)
    change = _change(values) if len(values) >= 2 else float("nan")
    if np.isnan(change):
        return float("nan"), float("nan")
    covered, slack = covered_fraction(values), BAND_SIGMAS * curve_noise(values) / change
    low = first_crossing(steps, covered, fraction - slack)
    if np.isnan(low):
        return float("nan"), float("nan")
    previous = steps[max(int(np.searchsorted(steps, low)) - 1, 0)]
    high = first_crossing(steps, covered, fraction + slack)
    return float(previous), float(steps[-1] if np.isnan(high) else high)


def rise_times(result: dict, lens: str, fraction: float = 0.5, horizon: int | None = None) -> dict[str, float]:
    """Rise time of subcircuits C, B, A of one run under ``lens`` (read up to ``horizon``)."""
    return {
        sub: rise_time(result["eval_steps"], result[f"curve/{lens}/{sub}"], fraction, DIRECTIONS[lens][sub], horizon)
        for sub in SUBCIRCUITS
    }


def rise_bands(result: dict, lens: str, fraction: float = 0.5, horizon: int | None = None
               ) -> dict[str, tuple[float, float]]:
    """:func:`rise_band` of subcircuits C, B, A of one run under ``lens``."""
    return {
        sub: rise_band(result["eval_steps"], result[f"curve/{lens}/{sub}"], fraction, DIRECTIONS[lens][sub], horizon)
        for sub in SUBCIRCUITS
    }


def gap_band(later: tuple[float, float], earlier: tuple[float, float]) -> tuple[float, float]:
    """The interval of T_later - T_earlier from the two rise bands: [low - high', high - low']."""
    return later[0] - earlier[1], later[1] - earlier[0]


def judge_gap(band: tuple[float, float]) -> str:
    """``after`` if the whole interval is > 0, ``before`` if < 0, ``tied`` if it holds 0, ``none`` if NaN."""
    low, high = band
    if np.isnan(low) or np.isnan(high):
        return "none"
    return "after" if low > 0 else "before" if high < 0 else "tied"


def in_musat_order(times: dict[str, float]) -> bool:
    """T_C < T_B < T_A, strictly (ties and NaN: not ordered)."""
    return bool(times["C"] < times["B"] < times["A"])


def first_to_rise(times: dict[str, float]) -> str:
    """The subcircuit with the earliest rise time; ``tie`` if several share it, ``none`` if all NaN."""
    finite = {sub: t for sub, t in times.items() if np.isfinite(t)}
    if not finite:
        return "none"
    earliest = min(finite.values())
    first = [sub for sub, t in finite.items() if t == earliest]
    return first[0] if len(first) == 1 else "tie"


def order_margin(times: dict[str, float]) -> float:
    """min(T_B - T_C, T_A - T_B): > 0 exactly when T_C < T_B < T_A; -inf if a rise time is NaN."""
    margin = min(times["B"] - times["C"], times["A"] - times["B"])
    return float("-inf") if np.isnan(margin) else float(margin)


def order_over_seeds(results: Sequence[dict], lens: str, fraction: float = 0.5, horizon: int | None = None) -> dict:
    """Per seed the rise times of C, B, A under ``lens`` and whether T_C < T_B < T_A; over seeds the
    fraction in that order and which subcircuit rose first. ``horizon``: every run read as if
    it had stopped at that step (None: the whole run).

    Returns ``lens``, ``fraction``, ``horizon``, ``seeds`` (S,), ``rise`` {C, B, A: (S,) steps, NaN =
    none}, ``ordered`` (S,) bool, ``indicators`` (S,) floats (1.0 ordered, 0.0 not: the per-seed
    values of a claim over seeds), ``margin`` (S,) :func:`order_margin`, ``fraction_ordered``,
    ``first`` (S,) names and ``first_counts``; and per gap (``B-C`` = T_B - T_C, ``A-B`` = T_A - T_B)
    ``gaps`` {gap: (S,) steps}, ``gap_bands`` {gap: (S, 2)} (:func:`gap_band`) and ``gap_verdicts``
    {gap: (S,) :func:`judge_gap`}; ``settled`` (S,): ``ordered`` if both gaps are ``after`` on their
    bands, ``against`` if either is ``before``, ``no rise`` if a curve has no rise time, else
    ``undecided``; ``settled_counts``.
    """
    if lens not in DIRECTIONS:
        raise ValueError(f"unknown lens {lens!r}; lenses: {list(DIRECTIONS)}")
    per_seed = [rise_times(result, lens, fraction, horizon) for result in results]
    bands = [rise_bands(result, lens, fraction, horizon) for result in results]
    ordered = np.array([in_musat_order(times) for times in per_seed], dtype=bool)
    first = [first_to_rise(times) for times in per_seed]
    gap_bands = {gap: np.array([gap_band(b[later], b[earlier]) for b in bands]).reshape(len(bands), 2)
                 for gap, (later, earlier) in GAPS.items()}
    gap_verdicts = {gap: [judge_gap(tuple(band)) for band in value] for gap, value in gap_bands.items()}
    settled = ["no rise" if any(gap_verdicts[g][i] == "none" for g in GAPS)
               else "ordered" if all(gap_verdicts[g][i] == "after" for g in GAPS)
               else "against" if any(gap_verdicts[g][i] == "before" for g in GAPS) else "undecided"
               for i in range(len(results))]
    return {
        "lens": lens,
        "fraction": fraction,
        "horizon": horizon,
        "seeds": np.array([result["seed"] for result in results]),
        "rise": {sub: np.array([times[sub] for times in per_seed]) for sub in SUBCIRCUITS},
        "ordered": ordered,
        "indicators": ordered.astype(float),
        "margin": np.array([order_margin(times) for times in per_seed]),
        "fraction_ordered": float(ordered.mean()) if len(ordered) else float("nan"),
        "first": first,
        "first_counts": {name: first.count(name) for name in (*SUBCIRCUITS, "tie", "none")},
        "gaps": {gap: np.array([t[later] - t[earlier] for t in per_seed]) for gap, (later, earlier) in GAPS.items()},
        "gap_bands": gap_bands,
        "gap_verdicts": gap_verdicts,
        "settled": settled,
        "settled_counts": {name: settled.count(name) for name in SETTLED},
    }


# Chapter defaults: the seeds are the chapter's n_seeds (5), trained as one ensemble;
# OrderConfig holds the per-run defaults.
DEFAULT_N_SEEDS = 5


def order_configs(n_seeds: int = DEFAULT_N_SEEDS, base_seed: int = 0, **overrides) -> list[OrderConfig]:
    """The sweep: one :class:`OrderConfig` per seed base_seed, base_seed + 1, ..."""
    return [OrderConfig(seed=base_seed + i, **overrides) for i in range(n_seeds)]


def chapter_configs(p) -> list[OrderConfig]:
    """The cross-paper chapter's order runs from its validated parameters ``p`` (``n_seeds``
    seeds from ``seed``, ``order_steps`` steps, a checkpoint every ``order_eval_every``)."""
    return order_configs(p.n_seeds, p.seed, steps=p.order_steps, eval_every=p.order_eval_every)
