"""One training run of the minimal model (full, 19-coefficient or 3-parameter): :class:`MinimalRunConfig` and :func:`run`.

:class:`MinimalRunConfig` holds the Musat chapter's defaults (this book's choices: the
paper's hyperparameters are not known). A run lasts ``tau = tau_factor * N^2``, since the
emergence time grows as N^2 (Theorem 2). Training is plain SGD on fresh batches from the
spine's loop; the learning rate is ``eta * D`` for the full model and ``eta`` for
coefficient models, so that one step is ``eta`` units of ``tau`` for both (see
:mod:`ihcore.musat.reduced`; this time unit is this book's reconstruction).

The chapter's lists of runs (``*_configs(p)``, from its validated parameters ``p``) are the
sweeps ``musat-batch``, ``musat-reduced``, ``musat-scaling`` and ``musat-stress`` of the
book's sweep registry; runs are independent. Every trained setting runs at the chapter's
seeds ``seed .. seed + n_seeds - 1`` (except the coefficient models on orthonormal data,
whose training does not depend on the seed), and :func:`run_many` trains the configs that
differ only in their seed as one batched ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ihcore.musat.disentangled import RESIDUALS, DisentangledConfig, DisentangledTransformer
from ihcore.musat.emergence import crossing_times, emergence_times, in_order
from ihcore.musat.reduced import CoefficientModel
from ihcore.musat.seeds import by_seed, estimate, with_seeds
from ihcore.musat.subspace import KEY_COEFFICIENTS, BlockBasis, block_basis
from ihcore.musat.tasks import DATA_MODES, LABEL_CUES, QUERY_MODES, ContinuousTask
from ihcore.spine import devices
from ihcore.spine.fits import loglog_slope
from ihcore.spine.markdown import markdown_table
from ihcore.spine.train import Member, Seeds, run_in_groups, train_members
from ihcore.spine.validation import refuse_invalid

# model: the chapter's label of its run in the reduced-model comparison
MODEL_LABELS = {"full": "full model, projected", "coefficients": "19 coefficients", "three": "3 parameters"}


@dataclass(frozen=True)
class MinimalRunConfig:
    """One run of the minimal model; the defaults are the Musat chapter's.

    model: "full" (the 28 D^2 weights), "coefficients" (the 19 coefficients) or "three"
    (alpha3, beta2, gamma3 alone); data, query, label_cue: see :class:`ContinuousTask`;
    residual, attend_to_self, init_scale: see :class:`DisentangledConfig` (zero init is the
    paper's); eta: the SGD step in tau units; the run lasts ``tau_factor * n_pairs^2`` in
    tau, evaluated about ``n_evals`` times; variant: a label for the stress tests (not used
    by the run).
    """

    model: str = "full"
    n_pairs: int = 8
    dim: int = 20
    data: str = "isotropic"
    query: str = "last"
    label_cue: str = "rotated"
    residual: str = "concat"
    attend_to_self: bool = False
    init_scale: float = 0.0
    batch_size: int = 128
    eta: float = 1.0
    tau_factor: float = 6.0
    n_evals: int = 80
    seed: int = 0
    variant: str = ""

    def __post_init__(self) -> None:
        smallest_dim = 2 * self.n_pairs + 2 if self.data == "orthonormal" else 2
        refuse_invalid(self, {
            "model": (self.model in MODEL_LABELS, f"one of {tuple(MODEL_LABELS)}"),
            "n_pairs": (isinstance(self.n_pairs, int) and self.n_pairs >= 1, "an integer >= 1"),
            "dim": (isinstance(self.dim, int) and self.dim >= smallest_dim and self.dim % 2 == 0,
                    f"an even integer >= {smallest_dim}" + (" (2N + 2, orthonormal data)" if self.data == "orthonormal" else "")),
            "data": (self.data in DATA_MODES, f"one of {DATA_MODES}"),
            "query": (self.query in QUERY_MODES, f"one of {QUERY_MODES}"),
            "label_cue": (self.label_cue in LABEL_CUES, f"one of {LABEL_CUES}"),
            "residual": (self.residual in RESIDUALS, f"one of {RESIDUALS}"),
            "init_scale": (self.init_scale >= 0, "a number >= 0"),
            "batch_size": (isinstance(self.batch_size, int) and self.batch_size >= 1, "an integer >= 1"),
            "eta": (self.eta > 0, "a number > 0"),
            "tau_factor": (self.tau_factor > 0, "a number > 0"),
            "n_evals": (isinstance(self.n_evals, int) and self.n_evals >= 1, "an integer >= 1"),
            "seed": (isinstance(self.seed, int) and self.seed >= 0, "an integer >= 0"),
        })

    @property
    def tau_max(self) -> float:
        """The run's length in tau: ``tau_factor * n_pairs^2``."""
        return self.tau_factor * self.n_pairs**2


def subspace_measure(basis: BlockBasis, initial, task: ContinuousTask):
    """Measure for :func:`ihcore.spine.train.train`: coefficients (K,), in-subspace share of W - W_0, loss."""

    def measure(model, batches) -> dict[str, np.ndarray]:
        weights = model.weights()
        with torch.no_grad():
            loss = task.loss(model(batches["train"].tokens), batches["train"]).item()
        share = basis.share_inside([w - w0 for w, w0 in zip(weights, initial)])["all"]
        return {"coefficients": basis.coefficients(weights), "share_inside": np.array(share), "loss": np.array(loss)}

    return measure


def run(config: MinimalRunConfig, *, device: str | torch.device | None = None, progress: bool | None = None) -> dict:
    """Train ``config`` on ``device`` (None: the current device); ``progress``: the training
    loop's bar (None: on unless disabled, False: off).

    Returns the configuration's fields and its trajectory against tau (CPU arrays):
    ``names`` (K,), ``tau`` (E,), ``coefficients`` (E, K), ``share_inside`` (E,) (NaN at
    tau = 0), ``loss`` (E,), ``weights`` (the final W1, W2, W3) and ``T_<name>@<c>`` for the
    three key coefficients at thresholds 0.5 and 0.1. The one-config case of :func:`run_many`.
    """
    return run_many([config], device=device, progress=progress)[0]


def run_many(configs: Sequence[MinimalRunConfig], *, device: str | torch.device | None = None,
             progress: bool | None = None) -> list[dict]:
    """:func:`run` of every config, in order; configs that differ only in ``seed`` train as one
    ensemble (:func:`ihcore.spine.train.train_members`), each member with its own init, data
    and evaluation seeds, so each result equals ``run(config)`` to float rounding."""
    def run_group(group: list[MinimalRunConfig]) -> list[dict]:
        members = [_member(config, device) for config in group]
        first = group[0]
        steps = math.ceil(first.tau_max / first.eta)
        histories = train_members(
            [member for member, _ in members], steps=steps, lr=members[0][1], batch_size=first.batch_size,
            eval_every=max(1, steps // first.n_evals), eval_batch_size=first.batch_size, optimizer="sgd",
            progress=progress, device=device,
        )
        return [_result(config, member.model, history) for config, (member, _), history in zip(group, members, histories)]

    return run_in_groups(configs, run_group)


def run_many_trajectories(configs: Sequence[MinimalRunConfig], *, device: str | torch.device | None = None,
                          progress: bool | None = None) -> list[dict]:
    """:func:`run_many` without the final ``weights``: what the shipped sweeps keep (a D = 64 run's weights
    alone are 3 MB of JSON)."""
    return [{k: v for k, v in result.items() if k != "weights"}
            for result in run_many(configs, device=device, progress=progress)]


def run_trajectory(config: MinimalRunConfig, *, device: str | torch.device | None = None,
                   progress: bool | None = None) -> dict:
    """:func:`run` without the final ``weights`` (the one-config case of :func:`run_many_trajectories`)."""
    return run_many_trajectories([config], device=device, progress=progress)[0]


def _member(c: MinimalRunConfig, device) -> tuple[Member, float]:
    """The ensemble member of config ``c`` (model built on the CPU from its seed, then moved) and its learning rate."""
    task = ContinuousTask(c.n_pairs, c.dim, c.data, c.query, c.label_cue)
    model_config = DisentangledConfig(c.dim, c.residual, c.attend_to_self, c.init_scale)
    if c.model == "full":
        model, lr = DisentangledTransformer(model_config, seed=c.seed), c.eta * c.dim
    else:
        trained = None if c.model == "coefficients" else KEY_COEFFICIENTS
        model, lr = CoefficientModel(model_config, trained), c.eta
    model.to(devices.pick(device))
    basis = block_basis(c.dim, c.residual)
    initial = [w.detach().clone() for w in model.weights()]
    return Member(model, task, Seeds.from_base(c.seed), [subspace_measure(basis, initial, task)]), lr


def _result(c: MinimalRunConfig, model, history) -> dict:
    basis = block_basis(c.dim, c.residual)
    tau = history.eval_steps * c.eta
    final_weights = tuple(w.detach().cpu().numpy().copy() for w in model.weights())
    coefficients = history["coefficients"]
    key = coefficients[:, [basis.index(name) for name in KEY_COEFFICIENTS]]
    return {
        **asdict(c), "names": basis.names, "tau": tau, "coefficients": coefficients,
        "share_inside": history["share_inside"], "loss": history["loss"], "weights": final_weights,
        **emergence_times(tau, key),
    }


# ------------------------------------------------------------------------------------------
# Reading one run


def key_indices(result: dict) -> list[int]:
    """Columns of ``result["coefficients"]`` holding alpha3, beta2, gamma3."""
    names = list(result["names"])
    return [names.index(name) for name in KEY_COEFFICIENTS]


def other_indices(result: dict) -> list[int]:
    """Columns of ``result["coefficients"]`` holding the other coefficients (16 for the concatenated model)."""
    keys = key_indices(result)
    return [k for k in range(len(result["names"])) if k not in keys]


def final_coefficients(result: dict) -> dict[str, float]:
    """Name -> value of every coefficient at the end of the run."""
    return dict(zip(result["names"], result["coefficients"][-1]))


def three_large_ratio(result: dict) -> float:
    """max |other coefficient| / min(|alpha3|, |beta2|, |gamma3|) at the end (Fig. 3: only the three grow large)."""
    final = final_coefficients(result)
    return (max(abs(value) for name, value in final.items() if name not in KEY_COEFFICIENTS)
            / min(abs(final[name]) for name in KEY_COEFFICIENTS))


def others_above(result: dict, level: float) -> dict[str, float]:
    """The other coefficients whose final |value| exceeds ``level``: name -> final value."""
    return {name: value for name, value in final_coefficients(result).items()
            if name not in KEY_COEFFICIENTS and abs(value) > level}


def others_first_passage(result: dict, level: float) -> dict[str, float]:
    """The other coefficients whose |value| reaches ``level`` during the run: name -> first tau."""
    others = other_indices(result)
    first = crossing_times(result["tau"], np.abs(result["coefficients"][:, others]), [level])[0]
    return {result["names"][k]: float(t) for k, t in zip(others, first) if np.isfinite(t)}


def off_subspace_share(result: dict) -> float:
    """1 - the in-subspace share of the weights at the end of the run."""
    return 1 - float(result["share_inside"][-1])


# ------------------------------------------------------------------------------------------
# The chapter's lists of runs


def power_of_two_ns(n_max: int) -> list[int]:
    """N = 2, 4, ..., n_max (n_max a power of 2)."""
    return [2**k for k in range(1, int(math.log2(n_max)) + 1)]


def chapter_config(p, **changes) -> MinimalRunConfig:
    """The chapter's base run (its ``dim``, ``eta``, ``batch_size``, ``tau_factor``, ``seed`` and ``n_pairs``
    from its validated parameters ``p``) with ``changes``."""
    base = MinimalRunConfig(n_pairs=p.n_pairs, dim=p.dim, eta=p.eta, batch_size=p.batch_size,
                            tau_factor=p.tau_factor, seed=p.seed)
    return replace(base, **changes)


def isotropic_configs(p) -> list[MinimalRunConfig]:
    """The chapter's base run (full model, zero init, isotropic data, N = n_pairs) at every seed."""
    return with_seeds([chapter_config(p)], p)


def small_init_configs(p) -> list[MinimalRunConfig]:
    """:func:`isotropic_configs` from a small random init (the stress variant "small random init", at N = n_pairs)."""
    return with_seeds([chapter_config(p, **STRESS_VARIANTS["small random init (scale 0.1)"])], p)


def batch_size_n(p) -> int:
    """N of the batch-size test: max(2, n_pairs / 4) (its 16B runs at n_pairs / 2 cost a minute over 5 seeds)."""
    return max(2, p.n_pairs // 4)


def batch_configs(p) -> list[MinimalRunConfig]:
    """Full model, isotropic data, N = :func:`batch_size_n`, at batch sizes B, 4B and 16B, every seed:
    whether what leaves the subspace is sampling noise (this book's test of Theorem 1 with sampled batches)."""
    return with_seeds([chapter_config(p, n_pairs=batch_size_n(p), batch_size=b)
                       for b in (p.batch_size, 4 * p.batch_size, 16 * p.batch_size)], p)


def reduced_configs(p) -> list[MinimalRunConfig]:
    """The full, 19-coefficient and 3-parameter models at N = n_pairs on orthonormal data (Fig. 5's
    comparison), at the chapter's seed."""
    return [chapter_config(p, model=model, data="orthonormal") for model in MODEL_LABELS]


def coefficient_configs(p) -> list[MinimalRunConfig]:
    """The 19-coefficient and 3-parameter runs of :func:`reduced_configs` (the sweep ``musat-reduced``), at
    the chapter's seed only: on orthonormal data with q = N their loss is the same on every batch (the
    data enter only through orthonormal inner products, and they start from zero), so their training does
    not depend on the seed. The full model they are compared with is the scaling runs' at N = n_pairs,
    every seed (:func:`scaling_configs`)."""
    return [config for config in reduced_configs(p) if config.model != "full"]


def scaling_ns(p) -> list[int]:
    """N of the full model's scaling runs: 2, 4, ..., n_max_full, and n_pairs (the reduced models' comparison)."""
    return sorted(set(power_of_two_ns(p.n_max_full)) | {p.n_pairs})


def scaling_configs(p) -> list[MinimalRunConfig]:
    """The full model on orthonormal data at N of :func:`scaling_ns`, every seed (the slope of T_alpha3, Theorem 2)."""
    return with_seeds([chapter_config(p, n_pairs=n, data="orthonormal") for n in scaling_ns(p)], p)


def reference_etas(p) -> list[float]:
    """Step sizes of the gradient-flow reference: eta = 1, 1/2, ..., 2^-ref_halvings (each half the last)."""
    return [2.0**-k for k in range(p.ref_halvings + 1)]


def reference_dims(p) -> list[int]:
    """D of the reference's D sweep: ``dim``, ``ref_dim / 2`` and ``ref_dim`` (the reconstruction's D = 64), those
    that are even and at least 2N + 2 (orthonormal data)."""
    return sorted({d for d in (p.dim, p.ref_dim // 2, p.ref_dim) if d % 2 == 0 and d >= 2 * p.n_pairs + 2})


def reference_configs(p) -> list[MinimalRunConfig]:
    """The gradient-flow reference (the sweep ``musat-reference``, shipped): the full model at N = n_pairs from
    zero, batch ``ref_batch_size``, runs of ``tau = ref_tau_factor * N^2``, on orthonormal and on isotropic data.

    * the step-size table: D = ``ref_dim``, eta of :func:`reference_etas` (halved until the emergence times
      stop changing), at the chapter's seed;
    * the D sweep: the finest eta at every D of :func:`reference_dims` (the table's run at ``ref_dim``);
    * the seed spread at the finest eta: D = ``dim`` at every seed.

    As eta -> 0 at fixed tau the SGD noise (variance ~ eta / B per unit tau) and the step's discretisation
    error both vanish, so the finest runs approximate gradient flow on the population loss.
    """
    etas, finest = reference_etas(p), reference_etas(p)[-1]
    base = chapter_config(p, batch_size=p.ref_batch_size, tau_factor=p.ref_tau_factor)
    configs = []
    for data in ("orthonormal", "isotropic"):
        configs += [replace(base, data=data, dim=p.ref_dim, eta=eta) for eta in etas]
        configs += [replace(base, data=data, dim=d, eta=finest) for d in reference_dims(p) if d != p.ref_dim]
        configs += with_seeds([replace(base, data=data, dim=p.dim, eta=finest)], p)[1:]
    return configs


# The ICLR 2026 reviewers' doubts (beyond the paper), as changes of the baseline run.
STRESS_VARIANTS = {
    "baseline (zero init, concatenated)": {},
    "small random init (scale 0.1)": {"init_scale": 0.1},
    "default-scale random init (scale 1)": {"init_scale": 1.0},
    "large random init (scale 3)": {"init_scale": 3.0},
    "additive residual (eta 0.5)": {"residual": "additive", "eta": 0.5},
    "attention to the current position": {"attend_to_self": True},
    "random query position": {"query": "random"},
    "label cue p_i (label position = item position)": {"label_cue": "same"},
    "no positional cue on labels": {"label_cue": "none"},
    "SGD noise (batch 16, eta 0.25)": {"batch_size": 16, "eta": 0.25},
}
# Variants in which alpha3 cannot emerge whatever the training, and why (the rules that need alpha3 do not apply).
BY_CONSTRUCTION = {
    "no positional cue on labels": "a label's position is 0, so alpha3 (the M block between positions) never enters "
    "a label's scores: no label can find its item by position, and alpha3 cannot become a previous-token coefficient",
}
# Variants whose previous-token coefficient is another one: with label position p_i, a label finds its item through
# p_i^T I p_i = 1 (alpha2's identity block), while alpha3's gives p_i^T J p_i = 0. Their rules read that coefficient.
PREVIOUS_TOKEN = {"label cue p_i (label position = item position)": "alpha2"}
SURVIVAL_RULES = {
    "confinement": "in-subspace share of W - W_0 at the end >= 0.9 at the largest N",
    "order": "T_gamma3 < T_beta2 < T_alpha3 (threshold 0.5) at every N",
    "N-scaling": "alpha3 emerges at every N and the log-log slope of T_alpha3 (threshold 0.5) "
    "is within 0.4 of the baseline's on the same N",
}


def stress_ns(p) -> list[int]:
    """The stress tests' context lengths: stress_n_max / 2 and stress_n_max."""
    return [p.stress_n_max // 2, p.stress_n_max]


def stress_configs(p) -> list[MinimalRunConfig]:
    """One run per (variant of :data:`STRESS_VARIANTS`, N of :func:`stress_ns`, seed), isotropic data."""
    return with_seeds([chapter_config(p, **changes, n_pairs=n, variant=variant)
                       for variant, changes in STRESS_VARIANTS.items() for n in stress_ns(p)], p)


def previous_token_times(result: dict, variant: str) -> dict[str, float]:
    """``T_<name>@<c>`` of ``result`` with alpha3's times taken from the variant's previous-token coefficient
    (:data:`PREVIOUS_TOKEN`; alpha3 itself for every other variant)."""
    name = PREVIOUS_TOKEN.get(variant)
    times = {k: v for k, v in result.items() if k.startswith("T_")}
    if name is not None:
        column = result["coefficients"][:, list(result["names"]).index(name)]
        times.update(emergence_times(result["tau"], column[:, None], names=("alpha3",)))
    return times


def stress_summary(results: list[dict]) -> list[dict]:
    """One row per (variant, seed): initial and final loss, final share, emergence order, slope of T_alpha3 (of the
    previous-token coefficient, :func:`previous_token_times`) and the verdicts of :data:`SURVIVAL_RULES` (bools);
    the first variant is the baseline, and a variant's N-scaling is judged against the baseline's slope at the same
    seed. ``by_construction`` holds the reason alpha3 cannot emerge (:data:`BY_CONSTRUCTION`), or ""."""
    rows, baseline_slope = [], {}
    for variant in dict.fromkeys(r["variant"] for r in results):
        for seed, own in by_seed([r for r in results if r["variant"] == variant]).items():
            runs = sorted(own, key=lambda r: r["n_pairs"])
            timed = [previous_token_times(r, variant) for r in runs]
            share = float(runs[-1]["share_inside"][-1])
            ordered = all(in_order(t, 0.5) and np.isfinite(t["T_alpha3@0.5"]) for t in timed)  # and alpha3 emerged
            times = [t["T_alpha3@0.5"] for t in timed]
            slope = loglog_slope([r["n_pairs"] for r in runs], times) if np.all(np.isfinite(times)) else float("nan")
            baseline_slope.setdefault(seed, slope)
            rows.append({
                "variant": variant, "seed": seed, "share_inside": share, "T_alpha3": times, "slope": slope,
                "initial_loss": float(runs[-1]["loss"][0]), "final_loss": float(runs[-1]["loss"][-1]),
                "previous_token": PREVIOUS_TOKEN.get(variant, "alpha3"), "by_construction": BY_CONSTRUCTION.get(variant, ""),
                "confinement": share >= 0.9, "order": ordered,
                "N-scaling": bool(abs(slope - baseline_slope[seed]) <= 0.4),
            })
    return rows


def stress_variants(rows: list[dict]) -> dict[str, list[dict]]:
    """variant -> its rows of :func:`stress_summary` (one per seed), variants in order."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["variant"], []).append(row)
    return grouped


def stress_table(rows: list[dict], ns: list[int]) -> str:
    """The rows of :func:`stress_summary` as a Markdown table, one line per variant: medians over seeds
    [range], and for each rule the seeds that pass it (fewer than all in bold; "by construction" where alpha3
    cannot emerge in the variant, for the rules that need it)."""
    def median_text(values) -> str:
        finite = [v for v in values if np.isfinite(v)]
        if len(finite) < len(values):
            median = np.median([v if np.isfinite(v) else np.inf for v in values])  # a "never" counts as the latest
            return "never" if not finite else f"{median:.2f} ({len(values) - len(finite)} never)"
        return f"{np.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"

    def times_text(values) -> str:
        finite = [v for v in values if np.isfinite(v)]
        return "never" if not finite else f"{np.median(finite):.0f}" + (
            f" ({len(values) - len(finite)} never)" if len(finite) < len(values) else "")

    header = ["variant", f"loss at init, at the end (N = {ns[-1]})", "in-subspace share",
              "T_prev at N = " + ", ".join(map(str, ns)), "slope", *SURVIVAL_RULES]
    lines = []
    for variant, own in stress_variants(rows).items():
        impossible = own[0]["by_construction"]
        passes = []
        for rule in SURVIVAL_RULES:
            k = sum(row[rule] for row in own)
            if impossible and rule != "confinement":
                passes.append("by construction")
            else:
                passes.append(f"{k}/{len(own)}" if k == len(own) else f"**{k}/{len(own)}**")
        previous = own[0]["previous_token"]
        lines.append([
            variant + ("" if previous == "alpha3" else f" (T_prev: {previous})"),
            f"{np.median([row['initial_loss'] for row in own]):.2f}, {np.median([row['final_loss'] for row in own]):.2f}",
            median_text([row["share_inside"] for row in own]),
            ", ".join(times_text([row["T_alpha3"][k] for row in own]) for k in range(len(ns))),
            "impossible" if impossible else median_text([row["slope"] for row in own]),
            *passes,
        ])
    return markdown_table(header, lines)


def stress_lines(rows: list[dict]) -> list[str]:
    """One line per variant of :func:`stress_summary`'s rows that is stable across CPUs: the median share and
    slope over seeds at the precision their interval supports, and how many seeds pass each rule."""
    lines = []
    for variant, own in stress_variants(rows).items():
        slopes = [row["slope"] for row in own]
        never = sum(np.isnan(s) for s in slopes)
        slope = estimate(slopes) if not never else f"none ({never} of {len(own)} seeds never reach 0.5)"
        passes = ", ".join(f"{rule} {sum(row[rule] for row in own)}/{len(own)}"
                           if not own[0]["by_construction"] or rule == "confinement" else f"{rule} by construction"
                           for rule in SURVIVAL_RULES)
        if own[0]["by_construction"]:
            slope = "none: alpha3 cannot emerge by construction"
        lines.append(f"{variant} | share ≈ {estimate([row['share_inside'] for row in own])} | slope ≈ {slope} | {passes}")
    return lines
