"""The book's sweeps: every chapter's lists of independent runs, by name (``python -m ihcore sweeps``).

Each :class:`~ihcore.book.sweeps.Sweep` pairs a study's configuration builder (chapter
parameters -> the study's run configurations) with that study's ``run``; the engine in
:mod:`ihcore.book.sweeps` runs them in memory or through result files.
"""

from __future__ import annotations

from ihcore.across import context_scaling, recipes, subcircuit_order
from ihcore.book import sweeps as _sweeps
from ihcore.book.sweeps import Sweep
from ihcore.musat import flow_runs, minimal_runs, reduction_runs
from ihcore.singh import baseline as singh_baseline
from ihcore.singh import experiments as singh_experiments
from ihcore.singh import subcircuits, toy_model
from ihcore.wang import full_transformer, six_parameter

SWEEPS: dict[str, Sweep] = {}


def register(sweep: Sweep) -> Sweep:
    """Add ``sweep`` to :data:`SWEEPS` (a name can be registered once)."""
    if sweep.name in SWEEPS:
        raise ValueError(f"sweep {sweep.name!r} is already registered")
    SWEEPS[sweep.name] = sweep
    return sweep


def get_sweep(name: str) -> Sweep:
    if name not in SWEEPS:
        raise KeyError(f"unknown sweep {name!r}; sweeps: {', '.join(SWEEPS)}")
    return SWEEPS[name]


# --- Musat et al. ------------------------------------------------------------------------------

register(Sweep(
    "musat-batch", "musat", "full minimal model at N = n_pairs/4, batch sizes B, 4B, 16B, n_seeds seeds "
    "(what leaves the subspace)",
    minimal_runs.batch_configs, minimal_runs.run, key_fields=("batch_size", "seed"), run_many=minimal_runs.run_many,
))
register(Sweep(
    "musat-reduced", "musat", "19-coefficient and 3-parameter minimal models at N = n_pairs, orthonormal data "
    "(one seed: their training does not depend on it)",
    minimal_runs.coefficient_configs, minimal_runs.run, key_fields=("model",), run_many=minimal_runs.run_many,
))
register(Sweep(
    "musat-stress", "musat", "minimal-model stress tests: each reviewer's variant at N = stress_n_max/2 and "
    "stress_n_max, n_seeds seeds (shipped; without final weights)",
    minimal_runs.stress_configs, minimal_runs.run_trajectory, key_fields=("variant", "n_pairs", "seed"),
    run_many=minimal_runs.run_many_trajectories,
))
register(Sweep(
    "musat-scaling", "musat", "full minimal model on orthonormal data at N = 2, 4, ..., n_max_full and n_pairs, "
    "n_seeds seeds (the slope of T_alpha3)",
    minimal_runs.scaling_configs, minimal_runs.run, key_fields=("n_pairs", "seed"), run_many=minimal_runs.run_many,
))
register(Sweep(
    "musat-reference", "musat", "the gradient-flow reference: full model at N = n_pairs, D = ref_dim, eta halved "
    "ref_halvings times, orthonormal and isotropic data; a D sweep and the seed spread at the finest eta (shipped)",
    minimal_runs.reference_configs, minimal_runs.run_trajectory, key_fields=("data", "dim", "eta", "seed"),
    run_many=minimal_runs.run_many_trajectories, chunk=1,
))
register(Sweep(
    "musat-diagnosis", "musat", "the 3-parameter model with each other coefficient freed, then the top ones together, "
    "and the 19-coefficient model; M = J and the shift-type M (deterministic; shipped)",
    reduction_runs.diagnosis_configs, reduction_runs.run, key_fields=("label_map", "freed"),
    run_many=reduction_runs.run_many, chunk=1,
))
register(Sweep(
    "musat-theorem2", "musat", "the 19-coefficient model at N = 2, 4, ..., theorem2_n_max, eta 1 and 1/2 "
    "(Theorem 2 in a trained model; deterministic; shipped)",
    reduction_runs.theorem2_configs, reduction_runs.run, key_fields=("eta", "n_pairs"),
    run_many=reduction_runs.run_many, chunk=1,
))
register(Sweep(
    "musat-flow", "musat", "closed-form gradient flow of the 3-parameter model at N = 2, 4, ..., n_max_reduced",
    flow_runs.sweep_configs, flow_runs.run, key_fields=("n_pairs",),
))


# --- Wang, Yu, E, Wu ---------------------------------------------------------------------------


register(Sweep("wang-default", "wang", "the default six-parameter run", six_parameter.default_runs, six_parameter.run,
               key_fields=("alpha", "sigma_init")))
register(Sweep("wang-half-lr", "wang", "the default run at half the learning rate", six_parameter.half_lr_runs,
               six_parameter.run, key_fields=("lr",)))
register(Sweep("wang-grid", "wang", "alpha* x sigma_init grid (one ensemble)", six_parameter.grid_runs,
               six_parameter.run, key_fields=("alpha", "sigma_init"), run_many=six_parameter.run_groups, chunk=24))
register(Sweep("wang-single-grid", "wang", "sigma_init sweep at alpha* = 0.5 with w_KQ as one parameter (one ensemble)",
               six_parameter.single_grid_runs, six_parameter.run, key_fields=("sigma_init",),
               run_many=six_parameter.run_groups))
register(Sweep("wang-length", "wang", "sequence lengths L = 16, 32, ..., sweep_max_length", six_parameter.length_runs,
               six_parameter.run, key_fields=("length",)))
register(Sweep("wang-unnormalised", "wang", "kappa_L = 1 at L = 8, 16, 32", six_parameter.unnormalised_runs,
               six_parameter.run, key_fields=("length",)))
register(Sweep("wang-decoupling", "wang", "the default on each target component alone", six_parameter.decoupling_runs,
               six_parameter.run, key_fields=("target_part",)))
register(Sweep("wang-restarts", "wang", "the default from n_seeds random initialisations (one ensemble)",
               six_parameter.restart_runs, six_parameter.run, key_fields=("init_seed",),
               run_many=six_parameter.run_groups))
register(Sweep("wang-full", "wang", "the two-layer RPE transformer on d_x = 4 tokens: Adam and gradient descent, "
               "each joint and layer-wise, the 3-gram target and planted (inductive-bias) data, n_seeds seeds each; "
               "the seeds of a setting train as one ensemble",
               full_transformer.chapter_configs, full_transformer.run,
               key_fields=("optimiser", "layerwise", "gram", "planted", "seed"), run_many=full_transformer.run_many,
               chunk=5))
register(Sweep("wang-joint-restarts", "wang", "the restarts trained jointly (p1 too, from N(0, sigma_init^2); one "
               "ensemble)", six_parameter.joint_restart_runs, six_parameter.run, key_fields=("init_seed",),
               run_many=six_parameter.run_groups))
register(Sweep("wang-variants", "wang", "stress tests: joint training, w_KQ as one parameter, quadratic positional logits",
               six_parameter.variant_runs, six_parameter.run, key_fields=("joint", "factorised", "positional")))


# --- Singh et al. ------------------------------------------------------------------------------

_HEADS_EXAMPLE = {"previous_token_head": 0, "induction_head": 0}  # one head for every seed (counts only)
SINGH_BASELINE = register(Sweep(
    "singh-baseline", "singh", "the unclamped baseline at each seed, one ensemble, with its curves, head scores, "
    "end-of-training ablations, wiring and group ablations, and the clamps applied at evaluation over its checkpoints "
    "(App. Fig 10) (at scale paper: Singh et al.'s settings, 1e6 sequences)",
    singh_experiments.baseline_configs, singh_baseline.run, key_fields=("lr", "seed"),
    run_many=singh_baseline.run_many, chunk=64,
))


def singh_heads(p) -> dict[str, list[int]]:
    """Each seed's strongest heads: quick scale, from baselines trained here
    (:func:`ihcore.singh.experiments.baseline_heads`); paper scale, from the ``singh-baseline``
    sweep's shipped results, else its result files in ``results/`` (run first where missing), so no
    baseline trains twice."""
    if singh_experiments.at_scale(p).scale == "quick":
        return singh_experiments.baseline_heads(p)
    return singh_experiments.heads_by_seed(_sweeps.shipped_or_run(SINGH_BASELINE, p, "results", progress=False)[0])


register(Sweep(
    "singh-clamps", "singh", "each clamp condition at each seed, one active layer-1 head (each seed's heads from its "
    "baseline, trained first); the seeds of a condition train as one ensemble",
    singh_experiments.clamp_configs, subcircuits.run, key_fields=("condition", "seed"),
    prepare=singh_heads, prepare_example=_HEADS_EXAMPLE, run_many=subcircuits.run_many, chunk=40,
))
register(Sweep(
    "singh-data", "singh", "more classes (only B left to learn) and more labels (only C) at each seed (heads as "
    "singh-clamps); the seeds of a cell train as one ensemble",
    singh_experiments.data_configs, subcircuits.run, key_fields=("n_classes", "n_labels", "condition", "seed"),
    prepare=singh_heads, prepare_example=_HEADS_EXAMPLE, run_many=subcircuits.run_many, chunk=40,
))
register(Sweep(
    "singh-heads", "singh", "Fig 4b: the unclamped model with one layer-1 head active, for every head at each seed "
    "(previous-token heads as singh-clamps); ten runs a batch, one ensemble",
    singh_experiments.single_head_configs, subcircuits.run, key_fields=("active_head", "seed"),
    prepare=singh_heads, prepare_example=_HEADS_EXAMPLE, run_many=subcircuits.run_many, chunk=10,
))
# The variants' seeds train as one ensemble: five runs a batch (one variant's seeds at paper scale).
register(Sweep(
    "singh-settings", "singh", "quick: the baseline at the slower slow_lr, and with isotropic prototypes (first seed); "
    "paper: with learned positions and no LayerNorm, with isotropic prototypes, and at 3x the paper's learning "
    "rate (every seed)",
    singh_experiments.setting_configs, subcircuits.run, key_fields=("lr", "prototypes", "seed"),
    run_many=subcircuits.run_many, chunk=5,
))
register(Sweep(
    "singh-models", "singh", "the baseline with 3 layers, and at half and double d_model (quick: first seed; paper: "
    "every seed)",
    singh_experiments.model_variant_configs, subcircuits.run, key_fields=("n_layers", "d_model", "seed"),
    run_many=subcircuits.run_many, chunk=5,
))
register(Sweep(
    "singh-toy", "singh", "the three-factor toy model with no factor, c, or b and c clamped, at each seed",
    singh_experiments.toy_configs, toy_model.run, key_fields=("clamped", "seed"),
))


# --- Across the three papers -------------------------------------------------------------------


# The seeds of one setting train as one ensemble (run_many). A chunk of 64 configurations (the
# largest n_seeds) holds every run of the defaults; a setting whose seeds fall in two chunks
# trains as two ensembles (the same results, less batched).
_ACROSS_CHUNK = 64

register(Sweep(
    "across-order", "across", "Singh's baseline model at every seed, one ensemble, read through both lenses (Musat's order)",
    subcircuit_order.chapter_configs, subcircuit_order.run, key_fields=("seed",),
    run_many=subcircuit_order.run_many, chunk=_ACROSS_CHUNK,
))
register(Sweep(
    "across-scaling", "across", "phase-change time at each context length N, both tasks, every seed (the N^2 law); "
    "the seeds of each N as one ensemble",
    context_scaling.chapter_configs, context_scaling.run, key_fields=("task", "n_pairs", "seed"),
    run_many=context_scaling.run_many, chunk=_ACROSS_CHUNK,
))

# The recipe controls (shipped: too heavy for the chapter's budget). One recipe's seeds (or one
# recipe's seeds at one N) are one ensemble; configurations are recipe-major, so a chunk of
# recipe_n_seeds (default 10) is one ensemble, written when it finishes (resumable).
_RECIPE_CHUNK = recipes.DEFAULT_N_SEEDS

register(Sweep(
    "across-recipe-order", "across", "Singh's baseline model trained by each recipe (Adam; Adam at a small rate; SGD; SGD from a small init) "
    "at recipe_n_seeds seeds, each read through both lenses, long runs (the order read at half and full length)",
    recipes.order_configs, subcircuit_order.run, key_fields=("optimizer", "init_scale", "lr", "seed"),
    run_many=subcircuit_order.run_many, chunk=_RECIPE_CHUNK,
))
register(Sweep(
    "across-recipe-scaling", "across", "phase-change time against N on Musat's token task for each recipe, "
    "recipe_n_seeds seeds, N up to recipe_musat_n_max; the seeds of each (recipe, N) as one ensemble",
    recipes.scaling_configs, context_scaling.run, key_fields=("optimizer", "init_scale", "lr", "n_pairs", "seed"),
    run_many=context_scaling.run_many, chunk=_RECIPE_CHUNK,
))
register(Sweep(
    "across-recipe-long-context", "across", "phase-change time at longer contexts on Musat's token task "
    "(N = n/4, n/2, n for n = recipe_long_n_max, vocabulary 4n) for each recipe that reaches the phase change, "
    "recipe_n_seeds seeds; the seeds of each (recipe, N) as one ensemble",
    recipes.long_context_configs, context_scaling.run,
    key_fields=("optimizer", "init_scale", "lr", "n_pairs", "n_tokens", "seed"),
    run_many=context_scaling.run_many, chunk=_RECIPE_CHUNK,
))
