"""Training recipes as controls: is a verdict about the theory, or about how the model was trained?

Musat et al.'s order (γ₃ → β₂ → α₃) and their Θ(N²) law are derived for gradient flow from a
zero initialisation; this book's cross-paper runs train the standard model with Adam from the
usual random initialisation. A :class:`Recipe` is one way of training the *same* model on the
*same* task, so that a difference between recipes is the recipe's:

* ``adam`` — this book's recipe: Adam at the study's learning rate, weights ~ N(0, 1/fan_in);
* ``adam-small`` — the issue's control "Adam at a small learning rate": Adam at 1e-3 (a third of
  this book's 3e-3) from the standard initialisation. From a small initialisation (0.3×) Adam at
  1e-3 had not crossed 0.4 ln N within 2000 steps at N = 2 or 8 in trial runs, so the small rate
  is tested alone; its runs are 3× as long as Adam's (order) or about so (N-scaling cap);
* ``sgd`` — plain SGD (no momentum, no weight decay) from the standard initialisation;
* ``sgd-small`` — the theory's recipe as closely as the budget allows: plain SGD from a small
  initialisation, every weight scaled by ``init_scale`` = 0.3 (the same draws, scaled). On
  Singh's task smaller scales (0.1) or a smaller learning rate did not leave the plateau within
  the budget in trial runs (see the chapter), and a larger learning rate diverged. On Musat's
  token task its N-scaling runs (lr 0.5, cap 1500 steps) are a **diagnosis, not a claim**
  (``judge_slope=False``, chosen after trial runs of 2 seeds): the model first sits at the
  uniform output (loss ln n_tokens) and leaves it late, later the larger N; at lr 0.5 it had not
  left it at N = 8 within 4000 steps, and where it did leave it (N = 2, 4) the loss went
  non-finite at the escape; at lr 1.0 it diverged the same way at N = 2 and 8; at lr 0.3 (and
  from 0.5×, at lr 0.3 or 0.5) it had not left it at N = 8 within 3000 steps. The chapter
  shows the sweep's runs (censored and diverged) and says the law is not reached.

Two registered sweeps (:mod:`ihcore.book.sweep_registry`) run every recipe over
``recipe_n_seeds`` seeds: the order on Singh's task (:func:`order_configs`, read by
:mod:`ihcore.across.subcircuit_order`) and the phase-change time against N on Musat's token
task (:func:`scaling_configs`, :mod:`ihcore.across.context_scaling`). They are too heavy for the
chapter's budget and are shipped (``python -m ihcore ship``).

**The lens.** The claims read the order through Singh's functional measures (:data:`ORDER_LENS`),
whose curves are bounded and settle after the phase change; Musat's weight-based measures are shown
beside them but not judged, because their contrasts keep growing after the phase change, so their
end value depends on when training stops (chosen after seeing the Adam runs; the chapter shows it).

**Rise times that do not depend on when training stops.** A rise time is the first evaluation
at which a curve has covered half of its change to its *converged* value; the converged value is
estimated from a run ``2×`` as long as the one the order is first read from (the recipe's
``order_steps`` is that long run). :func:`horizon_check` reads every seed's order twice — as if
the run had stopped at half its length, and from the whole run — and counts the seeds whose
order changes.

**Verdicts per recipe** (:func:`recipe_verdicts`), computed from the claims: Musat's order
*appears* when the order claim is reproduced (most seeds ordered, settled on the median's
interval), *does not appear* when it is not reproduced, and is *undecided* otherwise; it *is not
reached* when most seeds have a curve that never rose (the circuit did not form within the run); the N² law
*holds* when the slope claim is reproduced (slope in [1.5, 2.5]), *holds partly* when partly (in
[1, 3]), *does not hold* when not reproduced, and is *undecided* otherwise; the same words, from
the same rule, for the longer-context runs.

**Longer contexts** (:func:`long_context_configs`, the third sweep). The theory's time scales,
Θ(N) and Θ(N²), are only 2× apart at N = 2 and 4× at N = 4, so a slope fitted over N = 2–8 weighs
an N-independent start-up cost heavily. The recipes whose N-scaling runs reach the phase change
(``adam``, ``adam-small``, ``sgd``) are run again at N = 4, 8 and 16 on one vocabulary of 64
tokens, so that 2N stays at most half of it at every N. A run's cap grows in proportion to N
(``long_steps`` at the largest N), so a time that grows as N or faster stays inside its cap at
every N if it does at the largest. The caps were first one per recipe at every N (SGD 10,000
steps, from its N = 8 time at 32 tokens). SGD's N = 4 runs at 64 tokens then took twice their
32-token time (about 1,075 against 540 steps), before any larger N had finished, so the caps were
made proportional to N and raised: SGD 20,000 steps at N = 16 (its N = 4 time grown as N² is
about 17,000), Adam 4,000 and Adam at the small rate 12,000 (several times their 32-token N = 8
times: no Adam run had started). N = 32 would need 128 tokens and, under the N² law, SGD runs
about 4× as long as at N = 16 (hours per ensemble on one core of this edition's CPUs):
``recipe_long_n_max`` = 32 runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ihcore.across import context_scaling, subcircuit_order
from ihcore.across.subcircuit_order import OrderConfig
from ihcore.musat import StandardRunConfig
from ihcore.spine.claims import Claim, median_interval, seeds_estimate

# The claims judge the order under Singh's functional lens: its measures are bounded and settle after
# the phase change. Musat's weight lens is shown beside it, not judged: its contrasts keep growing
# after the phase change (weights grow under cross-entropy), so a "converged value" of them does not
# exist, and their half rises move when the run is made longer (a choice made after seeing the Adam runs).
ORDER_LENS = "singh"
SECOND_LENS = "musat"
LENS_NAMES = {"singh": "Singh's lens", "musat": "Musat's lens"}


@dataclass(frozen=True)
class Recipe:
    """One way of training the standard model: optimiser, initial scale, learning rates per task,
    the order run's length and evaluation grid, and the N-scaling runs' step cap."""

    name: str
    description: str
    optimizer: str
    init_scale: float
    lr_singh: float  # Singh's task (the order runs)
    lr_musat: float  # Musat's token task (the N-scaling runs)
    order_steps: int  # the long run; the order is also read at half of it
    order_eval_every: int
    scaling_steps: int  # cap of each N-scaling run (censored if not crossed); 0: no N-scaling runs
    scaling_eval_every: int
    judge_slope: bool = True  # False: the N-scaling runs are a diagnosis, shown but not judged by a claim
    long_steps: int = 0  # longer-context runs' cap at the largest N, in proportion to N below (:func:`long_context_configs`); 0: not run
    long_eval_every: int = 25


RECIPES = (
    Recipe("adam", "Adam, standard initialisation (this book's recipe)", "adam", 1.0, 3e-3, 3e-3,
           order_steps=2000, order_eval_every=10, scaling_steps=800, scaling_eval_every=10,
           long_steps=4000, long_eval_every=10),
    Recipe("adam-small", "Adam at a small learning rate (1e-3, a third of this book's), standard initialisation",
           "adam", 1.0, 1e-3, 1e-3, order_steps=6000, order_eval_every=30, scaling_steps=2400, scaling_eval_every=20,
           long_steps=12000, long_eval_every=20),
    Recipe("sgd", "plain SGD, standard initialisation", "sgd", 1.0, 0.3, 0.3,
           order_steps=2000, order_eval_every=20, scaling_steps=2500, scaling_eval_every=25,
           long_steps=20000, long_eval_every=25),
    # judge_slope=False: in trials (2 seeds, before the sweep) no learning rate gave a phase change at
    # every N within an affordable cap; the runs show why (a choice made after seeing the trials).
    Recipe("sgd-small", "plain SGD from a small initialisation (0.3×)", "sgd", 0.3, 0.5, 0.5,
           order_steps=3000, order_eval_every=30, scaling_steps=1500, scaling_eval_every=25, judge_slope=False),
)
RECIPE_NAMES = tuple(recipe.name for recipe in RECIPES)
DEFAULT_N_SEEDS = 10
DEFAULT_MUSAT_N_MAX = 8
DEFAULT_LONG_N_MAX = 16
MUSAT_N_TOKENS = StandardRunConfig.n_tokens  # the smallest vocabulary of the N-scaling runs


def get_recipe(name: str) -> Recipe:
    for recipe in RECIPES:
        if recipe.name == name:
            return recipe
    raise KeyError(f"unknown recipe {name!r}; recipes: {RECIPE_NAMES}")


def recipe_of(config) -> str:
    """The name of the recipe a run's config (or result dict) was trained with: its optimiser,
    initial scale and learning rate (one of the recipe's two)."""
    get = config.get if isinstance(config, dict) else lambda name: getattr(config, name)
    for recipe in RECIPES:
        if (get("optimizer") == recipe.optimizer and get("init_scale") == recipe.init_scale
                and get("lr") in (recipe.lr_singh, recipe.lr_musat)):
            return recipe.name
    raise KeyError(f"no recipe trains with {get('optimizer')} at init_scale {get('init_scale')} and lr {get('lr')}")


def order_configs(p) -> list[OrderConfig]:
    """The order runs of every recipe: Singh's baseline setting, ``recipe_n_seeds`` seeds from
    ``seed``, the recipe's optimiser, init scale, learning rate, length and grid (recipe-major,
    so one recipe's seeds are one chunk of the sweep)."""
    return [
        OrderConfig(seed=seed, steps=recipe.order_steps, eval_every=recipe.order_eval_every, lr=recipe.lr_singh,
                    optimizer=recipe.optimizer, init_scale=recipe.init_scale)
        for recipe in RECIPES for seed in range(p.seed, p.seed + p.recipe_n_seeds)
    ]


def scaling_configs(p) -> list[context_scaling.ScalingConfig]:
    """The N-scaling runs of every recipe on Musat's token task at N = 2, 3, 4, 6, 8, ... up to
    ``recipe_musat_n_max``, ``recipe_n_seeds`` seeds from ``seed``. The vocabulary is the same for
    every N, max(32, 4 N_max) tokens, so that 2N stays <= half of it (32 at the default N_max = 8,
    the Musat chapter's)."""
    lengths = context_scaling.context_lengths("musat", p.recipe_musat_n_max)
    n_tokens = max(MUSAT_N_TOKENS, 4 * p.recipe_musat_n_max)
    return [
        context_scaling.scaling_config("musat", n, seed, steps=recipe.scaling_steps, n_tokens=n_tokens,
                                       eval_every=recipe.scaling_eval_every, lr=recipe.lr_musat,
                                       optimizer=recipe.optimizer, init_scale=recipe.init_scale)
        for recipe in RECIPES if recipe.scaling_steps for n in lengths for seed in range(p.seed, p.seed + p.recipe_n_seeds)
    ]


def long_context_lengths(n_max: int) -> tuple[int, int, int]:
    """The N of the longer-context runs: n_max / 4, n_max / 2 and n_max (4, 8, 16 at the default),
    a factor 2 apart, so that the per-seed slope spans a factor 4 in N. ``n_max``: a multiple of 4."""
    return n_max // 4, n_max // 2, n_max


def long_context_configs(p) -> list[context_scaling.ScalingConfig]:
    """The longer-context runs on Musat's token task: every recipe with ``long_steps`` (those whose
    N-scaling runs reach the phase change), N = :func:`long_context_lengths` of ``recipe_long_n_max``,
    ``recipe_n_seeds`` seeds from ``seed``; the vocabulary is 4 · ``recipe_long_n_max`` tokens for
    every N, so that 2N <= half of it (64 at the default); each recipe's grid is its
    ``long_eval_every`` and its cap ``long_steps`` · N / ``recipe_long_n_max`` (recipe-major, then N)."""
    n_max = p.recipe_long_n_max
    return [
        context_scaling.scaling_config("musat", n, seed, steps=recipe.long_steps * n // n_max, n_tokens=4 * n_max,
                                       eval_every=recipe.long_eval_every, lr=recipe.lr_musat,
                                       optimizer=recipe.optimizer, init_scale=recipe.init_scale)
        for recipe in RECIPES if recipe.long_steps for n in long_context_lengths(n_max)
        for seed in range(p.seed, p.seed + p.recipe_n_seeds)
    ]


def by_recipe(results: Sequence[dict]) -> dict[str, list[dict]]:
    """The results grouped by recipe, in :data:`RECIPES` order (recipes without results left out)."""
    groups = {name: [r for r in results if recipe_of(r) == name] for name in RECIPE_NAMES}
    return {name: runs for name, runs in groups.items() if runs}


def horizon_check(results: Sequence[dict], lens: str = ORDER_LENS, fraction: float = 0.5) -> dict:
    """Each seed's order read as if its run had stopped at half its length and from the whole run.

    Returns ``short`` and ``long`` (:func:`ihcore.across.subcircuit_order.order_over_seeds` at
    horizon steps/2 and steps), ``horizons``, ``changed`` (S,) bool (the seed's ordered/not
    status differs), ``n_changed``, ``settled_changed`` (S,) bool (its settled verdict differs)
    and ``shift`` {C, B, A: (S,) long - short rise time}.
    """
    steps = int(results[0]["steps"])
    horizons = (steps // 2, steps)
    short, long = (subcircuit_order.order_over_seeds(results, lens, fraction, h) for h in horizons)
    changed = short["ordered"] != long["ordered"]
    settled_changed = np.array([a != b for a, b in zip(short["settled"], long["settled"])])
    return {
        "short": short, "long": long, "horizons": horizons, "changed": changed, "n_changed": int(changed.sum()),
        "settled_changed": settled_changed,
        "shift": {sub: long["rise"][sub] - short["rise"][sub] for sub in subcircuit_order.SUBCIRCUITS},
    }


def censored_gaps(order: dict, gap: str) -> tuple[list[float], list[int]]:
    """Per seed the gap ``gap`` of :func:`ihcore.across.subcircuit_order.order_over_seeds`, with a
    rise time that is missing (the curve did not change beyond its noise in the run) taken as
    after the run's end (+inf): the gap is then +inf or -inf, and 0 when both are missing
    (neither rose before the other). Returns the values (no NaN) and the seeds with a missing rise."""
    later, earlier = subcircuit_order.GAPS[gap]
    values, censored = [], []
    for i, seed in enumerate(order["seeds"]):
        t_later, t_earlier = (float(order["rise"][sub][i]) for sub in (later, earlier))
        if np.isnan(t_later) or np.isnan(t_earlier):
            censored.append(int(seed))
            t_later, t_earlier = (np.inf if np.isnan(t) else t for t in (t_later, t_earlier))
        values.append(0.0 if np.isinf(t_later) and np.isinf(t_earlier) else t_later - t_earlier)
    return values, censored


ORDER_WORDS = {"reproduced": "appears", "not reproduced": "does not appear", "partly": "appears in part",
               "undecided": "is undecided"}
LAW_WORDS = {"reproduced": "holds", "partly": "holds in part", "not reproduced": "does not hold",
             "undecided": "is undecided"}


NOT_REACHED = "is not reached within the run"


def recipe_verdicts(order_claim: Claim | None, slope_claim: Claim | None, n_no_rise: int = 0,
                    n_seeds: int = 0, n_slopes: int | None = None,
                    long_slope_claim: Claim | None = None) -> dict[str, str]:
    """``order``, ``law`` and ``long law``: what the recipe's claims say of Musat's order, of the
    N² law over the N-scaling runs and over the longer-context runs (``long_slope_claim``)
    (module docstring); ``not run`` for a claim that was not measured. When most of the
    ``n_seeds`` seeds have a curve without a rise (``n_no_rise``: the circuit did not form within
    the run), the order is :data:`NOT_REACHED` whatever its claim says: the run cannot tell
    (a rule added after plain SGD from a small initialisation stayed on its plateau). Likewise the
    law, for a recipe whose N-scaling runs were made but not judged (no ``slope_claim``), when at
    most half of the seeds have a slope (``n_slopes``: seeds that crossed at two N or more);
    ``n_slopes`` None: no N-scaling runs."""
    if order_claim is None:
        order = "not run"
    elif n_no_rise > n_seeds / 2:
        order = NOT_REACHED
    else:
        order = ORDER_WORDS[order_claim.verdict]
    if slope_claim is not None:
        law = LAW_WORDS[slope_claim.verdict]
    elif n_slopes is not None and n_slopes <= n_seeds / 2:
        law = NOT_REACHED
    else:
        law = "not judged" if n_slopes is not None else "not run"
    long_law = LAW_WORDS[long_slope_claim.verdict] if long_slope_claim is not None else "not run"
    return {"order": order, "law": law, "long law": long_law}


def recipe_sentence(recipe: Recipe, verdicts: dict[str, str], order_claim: Claim | None,
                    slope_claim: Claim | None, n_ordered: int | None = None, n_seeds: int | None = None,
                    n_slopes: int | None = None, long_slope_claim: Claim | None = None,
                    long_n: Sequence[int] = ()) -> str:
    """One sentence for ``recipe`` built from its verdicts and claims' estimates (no typed numbers);
    ``n_slopes``: the seeds with a slope, said when the slope is not judged; ``long_n``: the N of
    the longer-context runs, said with ``long_slope_claim``."""
    order = f"Musat's order {verdicts['order']}"
    if order_claim is not None and n_ordered is not None:
        order += f" ({n_ordered} of {n_seeds} seeds settled in it; {order_claim.verdict})"
    law = f"the N² law {verdicts['law']}"
    if slope_claim is not None:
        law += f" (median slope over seeds {slope_claim.estimate()}, {slope_claim.interval_text()}; {slope_claim.verdict})"
    elif n_slopes is not None:
        law += f" ({n_slopes} of {n_seeds} seeds crossed 0.4 ln N at two N or more; not judged)"
    if long_slope_claim is not None:
        law += (f"; at N = {', '.join(map(str, long_n))} it {verdicts['long law']} (median slope "
                f"{long_slope_claim.estimate()}, {long_slope_claim.interval_text()}; {long_slope_claim.verdict})")
    return f"**{recipe.description}**: {order}; {law}."


def recipes_with(verdicts: dict[str, dict[str, str]], kind: str, words: Sequence[str]) -> str:
    """The recipes whose ``kind`` verdict (``order`` or ``law``) is one of ``words``, as Markdown
    code names joined by commas ("none" if none): ``verdicts`` maps recipe -> :func:`recipe_verdicts`."""
    return ", ".join(f"`{name}`" for name, verdict in verdicts.items() if verdict[kind] in words) or "none"


def verdict_cell(subject: str, verdict: str) -> str:
    """A verdict table's cell: ``subject`` with its verdict of :func:`recipe_verdicts` ("the N² law
    holds in part"), or the verdict alone when the claim was not run."""
    return verdict if verdict == "not run" else f"{subject} {verdict}"


def fit_line(name: str, fit: dict, runs: Sequence[dict]) -> str:
    """``name``'s N-scaling ``fit`` (:func:`ihcore.across.context_scaling.scaling_fit`) over its
    ``runs`` in one line: the N, the runs, those censored (never below 0.4 ln N within the cap),
    those that diverged (loss not finite; read up to the last finite evaluation) and the seeds
    without a slope (crossed at fewer than two N)."""
    diverged = sum(subcircuit_order.diverged_at(r) is not None for r in runs)
    return (f"{name}: N = {fit['n_values']}, {fit['n_runs']} runs, {fit['n_censored']} censored, {diverged} diverged, "
            f"{len(fit['dropped_seeds'])} seeds without a slope")


PER_N_COLUMNS = ["recipe", "N", "cap", "crossed 0.4 ln N", "never below ln N", "diverged", "median phase-change step"]


def per_n_rows(name: str, fit: dict, runs: Sequence[dict]) -> list[list]:
    """Per N of ``fit`` (columns :data:`PER_N_COLUMNS`): the cap (steps), the seeds that crossed
    0.4 ln N within it, those whose loss never fell below ln N (at or above the copy plateau), those
    that diverged, and the median phase-change step over seeds at its interval's precision (a seed
    that never crossed counts as later than every other; "after the cap" when most never crossed)."""
    rows = []
    for n in fit["n_values"]:
        at_n = [r for r in runs if r["n_pairs"] == n]
        lowest = [np.nanmin(np.asarray(r["loss"], dtype=float)) for r in at_n]
        times = [np.inf if r["phase_change"] is None else r["phase_change"] for r in at_n]
        cap = at_n[0]["steps"]
        median = seeds_estimate(times) if np.median(times) < np.inf else f"after the cap ({cap})"
        rows.append([name, n, cap, f"{sum(not r['censored'] for r in at_n)} of {len(at_n)}",
                     sum(low >= context_scaling.plateau_loss(n) for low in lowest),
                     sum(subcircuit_order.diverged_at(r) is not None for r in at_n), median])
    return rows


def local_slope_line(name: str, fit: dict) -> str | None:
    """Not a claim: the slope between ``fit``'s two largest N per seed (:func:`largest_n_slopes`),
    as its median over seeds at its interval's precision and the interval; None when no seed crossed at both."""
    local = largest_n_slopes(fit)
    if not local:
        return None
    low, high, _ = median_interval(local)
    return (f"{name}: slope between N = {fit['n_values'][-2]} and {fit['n_values'][-1]} ≈ {seeds_estimate(local)} "
            f"[{low:.2f}, {high:.2f}] over {len(local)} seeds")


def largest_n_slopes(fit: dict) -> list[float]:
    """Per seed, the log-log slope of phase-change time between the two largest N of ``fit`` (a
    task's entry of :func:`ihcore.across.context_scaling.scaling_fit`), for the seeds that crossed at
    both: the local exponent where the time scales are furthest apart (the law is asymptotic)."""
    (n_low, n_high) = fit["n_values"][-2:]
    slopes = []
    for times in fit["times"].values():
        t_low, t_high = times[-2:]
        if t_low is not None and t_high is not None:
            slopes.append(float(np.log(t_high / t_low) / np.log(n_high / n_low)))
    return slopes
