"""The book's sweeps: every chapter's lists of independent runs, by name (``python -m ihcore sweeps``).

Each :class:`~ihcore.book.sweeps.Sweep` pairs a study's configuration builder (chapter
parameters -> the study's run configurations) with that study's ``run``; the engine in
:mod:`ihcore.book.sweeps` runs them in memory or through result files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from types import SimpleNamespace

from ihcore.across import context_scaling, subcircuit_order
from ihcore.book.sweeps import Sweep
from ihcore.musat import minimal_runs
from ihcore.singh import subcircuits
from ihcore.wang import six_parameter

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


def _musat_build(builder: Callable[[SimpleNamespace], list[dict]]):
    def build(p):  # the sweep's own bar replaces each run's
        return [dict(config, progress=False) for config in builder(p)]

    return build


def _musat_run(config: dict, progress: bool | None = False) -> dict:
    return minimal_runs.run_minimal(config)


register(Sweep(
    "musat-stress", "musat", "minimal-model stress tests: each reviewer's variant at N = stress_n_max/2 and stress_n_max",
    _musat_build(minimal_runs.chapter_stress_configs), _musat_run, key_fields=("variant", "n_pairs"),
))
register(Sweep(
    "musat-scaling", "musat", "full minimal model on orthonormal data at N = 2, 4, ..., n_max_full (the slope of T_alpha3)",
    _musat_build(minimal_runs.scaling_configs), _musat_run, key_fields=("n_pairs",),
))


# --- Wang, Yu, E, Wu ---------------------------------------------------------------------------


register(Sweep("wang-default", "wang", "the default six-parameter run", six_parameter.default_runs, six_parameter.run,
               key_fields=("alpha", "sigma_init")))
register(Sweep("wang-half-lr", "wang", "the default run at half the learning rate", six_parameter.half_lr_runs,
               six_parameter.run, key_fields=("lr",)))
register(Sweep("wang-grid", "wang", "alpha* x sigma_init grid", six_parameter.grid_runs, six_parameter.run,
               key_fields=("alpha", "sigma_init")))
register(Sweep("wang-length", "wang", "sequence lengths L = 16, 32, ..., sweep_max_length", six_parameter.length_runs,
               six_parameter.run, key_fields=("length",)))
register(Sweep("wang-unnormalised", "wang", "kappa_L = 1 at L = 8, 16, 32", six_parameter.unnormalised_runs,
               six_parameter.run, key_fields=("length",)))
register(Sweep("wang-decoupling", "wang", "the default on each target component alone", six_parameter.decoupling_runs,
               six_parameter.run, key_fields=("target_part",)))
register(Sweep("wang-restarts", "wang", "the default from random initialisations", six_parameter.restart_runs,
               six_parameter.run, key_fields=("init_seed",)))
register(Sweep("wang-variants", "wang", "stress tests: joint training, w_KQ as one parameter, quadratic positional logits",
               six_parameter.variant_runs, six_parameter.run, key_fields=("joint", "factorised", "positional")))


# --- Singh et al. ------------------------------------------------------------------------------


def _singh_clamp_build(p, heads: dict) -> list[dict]:
    return [asdict(c) for c in subcircuits.clamp_configs(p, heads["previous_token_head"], heads["induction_head"])]


def _singh_data_build(p, heads: dict) -> list[dict]:
    return [asdict(c) for c in subcircuits.data_configs(p, heads["induction_head"])]


def _singh_run(config: dict, progress: bool | None = False) -> dict:
    return subcircuits.run_one(subcircuits.RunConfig(**config), progress=progress)


_HEADS_EXAMPLE = {"previous_token_head": 0, "induction_head": 0}
register(Sweep(
    "singh-clamps", "singh", "one run per clamp condition, one active layer-1 head (heads from the baseline, trained first)",
    _singh_clamp_build, _singh_run, key_fields=("condition",), prepare=subcircuits.baseline_heads, prepare_example=_HEADS_EXAMPLE,
))
register(Sweep(
    "singh-data", "singh", "classes x labels x what is left to learn (heads from the baseline, trained first)",
    _singh_data_build, _singh_run, key_fields=("n_classes", "n_labels", "condition"), prepare=subcircuits.baseline_heads,
    prepare_example=_HEADS_EXAMPLE,
))


# --- Across the three papers -------------------------------------------------------------------


def _across_order_build(p) -> list[dict]:
    return [asdict(c) for c in subcircuit_order.order_configs(p.order_seeds, p.seed, steps=p.order_steps,
                                                              eval_every=p.order_eval_every)]


def _across_order_run(config: dict, progress: bool | None = False) -> dict:
    return subcircuit_order.run_one(subcircuit_order.OrderConfig(**config), progress=progress)


def _across_scaling_build(p) -> list[dict]:
    lengths = {task: context_scaling.context_lengths(task, n_max)
               for task, n_max in (("singh", p.singh_n_max), ("musat", p.musat_n_max))}
    return [asdict(c) for c in context_scaling.default_configs(range(p.seed, p.seed + p.scaling_seeds), lengths)]


def _across_scaling_run(config: dict, progress: bool | None = False) -> dict:
    return context_scaling.run_one(context_scaling.ScalingConfig(**config), progress=progress)


register(Sweep(
    "across-order", "across", "Singh's baseline model once per seed, read through both lenses (Musat's order)",
    _across_order_build, _across_order_run, key_fields=("seed",),
))
register(Sweep(
    "across-scaling", "across", "phase-change time at each context length N, both tasks, every seed (the N^2 law)",
    _across_scaling_build, _across_scaling_run, key_fields=("task", "n_pairs", "seed"),
))
