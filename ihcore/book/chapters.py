"""The book's chapters and their parameters: one registry for the notebooks and the CLI.

A study adds its chapter by adding one :class:`Chapter` to :data:`CHAPTERS`. The order of
:data:`CHAPTERS` is the order of execution when the book is built: the introduction,
which tabulates every chapter's claims, comes last.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ihcore.across import context_scaling, recipes
from ihcore.across.subcircuit_order import OrderConfig
from ihcore.book.params import Parameter, ParameterSpec
from ihcore.musat import MinimalRunConfig, StandardRunConfig
from ihcore.singh import ClampedRunConfig, SinghSetting, ToyConfig
from ihcore.singh import experiments as singh_experiments
from ihcore.singh import subcircuits as singh_subcircuits
from ihcore.spine import devices
from ihcore.spine.transformer import POSITIONALS
from ihcore.spine.validation import ParameterError
from ihcore.wang import full_transformer
from ihcore.wang.mixed_target import NORMALISATIONS
from ihcore.wang.six_parameter import SixParameterConfig
from ihcore.wang.stress_tests import TransformerStressConfig

BOOK_ROOT = Path(__file__).resolve().parents[2]  # the repository: _config.yml, chapters/, data/
SHIPPED_DIR = BOOK_ROOT / "data" / "shipped"  # shipped sweep results (ihcore.book.sweeps.ship)

SEED = Parameter("seed", int, 0, "base seed: init, data and evaluation seeds derive from it", 0, 2**31 - 1)
N_SEEDS = Parameter(
    "n_seeds", int, 5, "seeds per trained claim: seeds seed .. seed + n_seeds - 1, trained as one ensemble; "
    "a claim's interval needs >= 5", 1, 64,
)
SHOW_PROGRESS = Parameter("show_progress", bool, True, "tqdm progress bars (always off under CI)")
DEVICE = Parameter(
    "device", str, "cpu", "where tensors live: 'cpu' (checked by CI), 'cuda', or 'auto' (cuda if available)",
    choices=devices.DEVICE_CHOICES, check=devices.problem,
)
RESULTS_DIR = Parameter(
    "results_dir", str, "", "folder of sweep result files to reuse and resume, from the repository root ('': in memory)",
)


@dataclass(frozen=True)
class Chapter:
    """A chapter notebook, relative to the book root, and its parameters."""

    slug: str
    notebook: str
    title: str
    parameters: ParameterSpec
    aliases: tuple[str, ...] = ()


FROM_SCRATCH = Chapter(
    slug="from-scratch",
    notebook="chapters/from_scratch.ipynb",
    title="An induction head, from scratch",
    aliases=("intro-chapter",),
    parameters=ParameterSpec(
        (
            SEED,
            N_SEEDS,
            Parameter("n_pairs", int, 4, "item-label pairs in the context (N)", 2, 32),
            Parameter("item_dim", int, 32, "dimension of the item vectors (D)", 2, 512),
            Parameter("n_labels", int, 8, "number of distinct labels", 2, 64),
            Parameter("n_classes", int, 64, "training classes (held-out classes: as many again)", 2, 10_000),
            Parameter("noise", float, 0.1, "within-class noise, relative to the prototype scale", 0.0, 2.0),
            Parameter("n_heads", int, 2, "attention heads per layer", 1, 16),
            Parameter("d_model", int, 64, "residual stream width", 4, 512),
            Parameter("steps", int, 1500, "training steps", 1, 200_000),
            Parameter("lr", float, 1e-3, "Adam learning rate", 1e-6, 1.0),
            Parameter("batch_size", int, 64, "training sequences per step", 1, 8192),
            Parameter("eval_every", int, 50, "steps between evaluations", 1, 100_000),
            DEVICE,
            SHOW_PROGRESS,
        ),
        checks=(
            (lambda p: p.d_model % p.n_heads == 0, "d_model must be divisible by n_heads"),
            (lambda p: p.eval_every <= p.steps, "eval_every must be <= steps"),
        ),
    ),
)

MUSAT = Chapter(
    slug="musat",
    notebook="chapters/musat.ipynb",
    title="Musat et al.: the 19-dimensional subspace and the order γ3 → β2 → α3",
    parameters=ParameterSpec(
        (
            SEED,
            N_SEEDS,
            Parameter("dim", int, MinimalRunConfig.dim, "content and position size D of the minimal model (even)", 4, 256),
            Parameter("n_pairs", int, MinimalRunConfig.n_pairs, "context length N of the minimal-model runs (figures 2, 3)",
                      2, 64),
            Parameter("eta", float, MinimalRunConfig.eta, "SGD step in tau units (full model: lr = eta * D)", 0.01, 2.0),
            Parameter("batch_size", int, MinimalRunConfig.batch_size, "fresh sequences per SGD step of the minimal model",
                      8, 8192),
            Parameter("tau_factor", float, MinimalRunConfig.tau_factor, "minimal-model runs last tau = tau_factor * N^2",
                      1.0, 100.0),
            Parameter("n_max_full", int, 8, "full-model scaling runs at N = 2, 4, ..., n_max_full (power of 2)", 2, 64),
            Parameter("n_max_reduced", int, 256, "closed-form sweep at N = 2, 4, ..., n_max_reduced (power of 2)", 16, 4096),
            Parameter("theorem2_n_max", int, 32, "trained 19-coefficient model at N = 2, 4, ..., theorem2_n_max (shipped "
                      "sweep musat-theorem2; power of 2)", 8, 256),
            Parameter("theorem2_tau_factor", float, 4.0, "its runs last tau = theorem2_tau_factor * N^2", 1.0, 100.0),
            Parameter("ref_dim", int, 64, "D of the gradient-flow reference (shipped sweep musat-reference)", 8, 512),
            Parameter("ref_batch_size", int, 512, "fresh sequences per step of the gradient-flow reference", 8, 8192),
            Parameter("ref_halvings", int, 3, "gradient-flow reference at eta = 1, 1/2, ..., 2^-ref_halvings", 1, 10),
            Parameter("ref_tau_factor", float, 3.0, "gradient-flow reference runs last tau = ref_tau_factor * N^2",
                      1.0, 100.0),
            Parameter("stress_n_max", int, 8, "stress tests at N = stress_n_max / 2 and stress_n_max", 4, 64),
            Parameter("run_stress", bool, False, "run the stress tests (beyond the paper; 80 runs at 5 seeds, over the chapter's time budget, so off by default)"),
            Parameter("std_n_pairs", int, StandardRunConfig.n_pairs, "context length N of the standard model's token task",
                      2, 32),
            Parameter("std_n_tokens", int, StandardRunConfig.n_tokens, "vocabulary of the standard model's token task",
                      4, 1024),
            Parameter("std_d_model", int, StandardRunConfig.d_model, "residual width of the standard model", 8, 512),
            Parameter("std_steps", int, StandardRunConfig.steps, "Adam steps of the standard model", 20, 200_000),
            Parameter("std_lr", float, StandardRunConfig.lr, "Adam learning rate of the standard model", 1e-6, 1.0),
            Parameter("std_batch_size", int, StandardRunConfig.batch_size, "sequences per step of the standard model",
                      1, 8192),
            RESULTS_DIR,
            DEVICE,
            SHOW_PROGRESS,
        ),
        checks=(
            (lambda p: p.dim % 2 == 0, "dim must be even (M rotates coordinate pairs)"),
            (lambda p: p.ref_dim % 2 == 0 and p.ref_dim >= 2 * p.n_pairs + 2,
             "ref_dim must be even and >= 2 * n_pairs + 2 (orthonormal data)"),
            (lambda p: p.dim >= 2 * max(p.n_pairs, p.n_max_full) + 2,
             "dim must be >= 2 * max(n_pairs, n_max_full) + 2 (orthonormal data)"),
            (lambda p: all(n & (n - 1) == 0 for n in (p.n_max_full, p.n_max_reduced, p.theorem2_n_max)),
             "n_max_full, n_max_reduced and theorem2_n_max must be powers of 2"),
            (lambda p: p.std_n_tokens >= 2 * p.std_n_pairs, "std_n_tokens must be >= 2 * std_n_pairs"),
        ),
    ),
)

SINGH = Chapter(
    slug="singh",
    notebook="chapters/singh.ipynb",
    title="Singh et al.: what needs to go right for an induction head",
    parameters=ParameterSpec(
        (
            Parameter("scale", str, "quick", "quick: the knobs below (what CI re-executes); paper: Singh et al.'s own "
                      "settings (experiments.PAPER_SCALE), whatever the knobs say", choices=singh_experiments.SCALES),
            SEED,
            replace(N_SEEDS, default=singh_experiments.QUICK_N_SEEDS),
            Parameter("n_classes", int, SinghSetting.n_classes, "training classes (paper: 50)", 2, 10_000),
            Parameter("n_labels", int, SinghSetting.n_labels, "labels (paper: 5)", 2, 64),
            Parameter("item_dim", int, SinghSetting.item_dim, "dimension of the generated item features (paper's ResNet features: 512)", 2, 1024),
            Parameter("prototypes", str, SinghSetting.prototypes, "class prototype generator", choices=singh_subcircuits.PROTOTYPES),
            Parameter("n_heads", int, SinghSetting.n_heads, "attention heads per layer (paper: 8)", 2, 16),
            Parameter("d_model", int, SinghSetting.d_model, "residual stream width (paper: 64)", 8, 512),
            Parameter("positional", str, SinghSetting.positional, "positions: learned absolute, none, or rotary "
                      "(paper: rotary)", choices=POSITIONALS),
            Parameter("layer_norm", bool, SinghSetting.layer_norm, "pre-LN blocks and a final LayerNorm (paper: on)"),
            Parameter("steps", int, SinghSetting.steps, "training steps of the baseline", 10, 200_000),
            Parameter("lr", float, SinghSetting.lr, "Adam learning rate (paper: 1e-5)", 1e-6, 1.0),
            Parameter("batch_size", int, SinghSetting.batch_size, "training sequences per step (paper: 32)", 1, 8192),
            Parameter("eval_every", int, SinghSetting.eval_every, "steps between evaluations", 1, 100_000),
            Parameter("slow_lr", float, 1e-3, "learning rate of the comparison run", 1e-6, 1.0),
            Parameter("slow_steps", int, 1500, "training steps of the comparison runs", 10, 200_000),
            Parameter("clamp_steps", int, ClampedRunConfig.steps, "training steps of the unclamped one-head run", 10, 200_000),
            Parameter("sweep_steps", int, 400, "training steps of each clamped run (clamp and data-dependence sweeps)", 10, 200_000),
            Parameter("sweep_classes", int, 200, "the larger class count of the data-dependence sweep (paper: 100, 200)", 2, 10_000),
            Parameter("sweep_labels", int, 15, "the larger label count of the data-dependence sweep (paper: 10, 15)", 3, 64),
            Parameter("toy_init_scale", float, ToyConfig.init_scale, "toy model: std of the initial factor entries", 1e-4, 10.0),
            RESULTS_DIR,
            DEVICE,
            SHOW_PROGRESS,
        ),
        checks=(
            (lambda p: p.d_model % p.n_heads == 0, "d_model must be divisible by n_heads"),
            (lambda p: p.eval_every <= min(p.steps, p.slow_steps, p.clamp_steps, p.sweep_steps), "eval_every must be <= every run's steps"),
            (lambda p: p.sweep_classes > p.n_classes, "sweep_classes must be > n_classes"),
            (lambda p: p.sweep_labels > p.n_labels, "sweep_labels must be > n_labels"),
        ),
    ),
)

WANG = Chapter(
    slug="wang",
    notebook="chapters/wang.ipynb",
    title="Wang, Yu, E, Wu: lazy to rich — the 4-gram plateau and the snap to an induction head",
    parameters=ParameterSpec(
        (
            SEED,
            N_SEEDS,
            Parameter("length", int, SixParameterConfig.length, "sequence length L of the default run", 8, 256),
            Parameter("alpha", float, SixParameterConfig.alpha, "weight α* of the 4-gram in the mixed target", 0.05, 0.95),
            Parameter("w_star", float, SixParameterConfig.w_star, "key-query weight w* of the induction-head target", 0.05, 2.0),
            Parameter("normalisation", str, SixParameterConfig.normalisation, "IH scale κ_L: 'sqrt' = √(L−2), 'none' = 1",
                      choices=NORMALISATIONS),
            Parameter("sigma_init", float, SixParameterConfig.sigma_init, "initial value of every trained parameter (default run)",
                      1e-8, 0.5),
            Parameter("lr", float, SixParameterConfig.lr, "gradient-descent learning rate (time t = lr · steps)", 1e-3, 2.0),
            Parameter("time", float, SixParameterConfig.time, "gradient-flow time of each six-parameter run", 10.0, 100_000.0),
            Parameter("n_train", int, SixParameterConfig.n_train, "Monte Carlo training sequences (full batch)", 64, 65_536),
            Parameter("n_eval", int, SixParameterConfig.n_eval, "independent evaluation sequences", 64, 65_536),
            Parameter("sweep_sigma_decades", int, 4, "σ_init sweep: 1e-1, ..., 1e-k", 2, 8),
            Parameter("sweep_max_length", int, 128, "length sweep: L = 16, 32, ... up to this", 32, 512),
            Parameter("unnormalised_time", float, 2500.0, "time of the κ_L = 1 runs (L = 8, 16, 32)", 10.0, 100_000.0),
            Parameter("transformer_steps", int, TransformerStressConfig.steps, "Adam steps of the spine-transformer stress tests",
                      10, 100_000),
            Parameter("transformer_lr", float, TransformerStressConfig.lr,
                      "Adam learning rate of the spine-transformer stress tests", 1e-5, 0.1),
            Parameter("transformer_length", int, TransformerStressConfig.length,
                      "sequence length of the spine-transformer stress tests", 8, 64),
            Parameter("vocabulary", int, TransformerStressConfig.vocabulary, "vocabulary of the discrete-token stress test", 4, 256),
            Parameter("max_heads", int, 8, "IH_n construction: first-layer heads H = 1..max_heads", 4, 16),
            Parameter("scale", str, "quick", "full-transformer runs (d_x = 4): 'quick' = short runs in the chapter, "
                      "'paper' = the shipped sweep wang-full (every setting, full length)", choices=full_transformer.SCALES),
            RESULTS_DIR,
            DEVICE,
            SHOW_PROGRESS,
        ),
        checks=(
            (lambda p: p.time / p.lr >= 10, "time / lr (the number of steps) must be >= 10"),
            (lambda p: p.unnormalised_time / p.lr >= 10, "unnormalised_time / lr must be >= 10"),
        ),
    ),
)

ACROSS = Chapter(
    slug="across",
    notebook="chapters/across.ipynb",
    title="Across the three papers: one mechanism, three lenses",
    parameters=ParameterSpec(
        (
            Parameter("seed", int, 0, "first seed: the order and scaling runs use seed, seed + 1, ...", 0, 2**31 - 1),
            N_SEEDS,
            Parameter("order_steps", int, OrderConfig.steps, "training steps of each order run", 100, 200_000),
            Parameter("order_eval_every", int, OrderConfig.eval_every,
                      "steps between the checkpoints the order is read from", 1, 10_000),
            Parameter("singh_n_max", int, max(context_scaling.DEFAULT_N["singh"]),
                      "Singh's task at N = 2, 3, ..., singh_n_max pairs (8 labels)", 3, 8),
            Parameter("musat_n_max", int, max(context_scaling.DEFAULT_N["musat"]),
                      "Musat's token task at N = 2, 3, 4, 6, 8, ... up to musat_n_max", 4, 16),
            Parameter("recipe_n_seeds", int, recipes.DEFAULT_N_SEEDS,
                      "seeds of each recipe's order and N-scaling runs (shipped sweeps at the default)", 5, 64),
            Parameter("recipe_musat_n_max", int, recipes.DEFAULT_MUSAT_N_MAX,
                      "recipes' N-scaling runs on Musat's token task at N = 2, 3, 4, 6, 8, ... up to this", 4, 32),
            Parameter("recipe_long_n_max", int, recipes.DEFAULT_LONG_N_MAX,
                      "recipes' longer-context runs at N = n/4, n/2, n (vocabulary 4n)", choices=(8, 12, 16, 24, 32, 48, 64)),
            RESULTS_DIR,
            DEVICE,
            SHOW_PROGRESS,
        ),
        checks=((lambda p: p.order_eval_every <= p.order_steps // 10, "order_eval_every must be <= order_steps / 10"),),
    ),
)

INTRODUCTION = Chapter(
    slug="introduction",
    notebook="chapters/introduction.ipynb",
    title="Introduction",
    parameters=ParameterSpec(()),
)

CHAPTERS: dict[str, Chapter] = {
    chapter.slug: chapter for chapter in (FROM_SCRATCH, MUSAT, WANG, SINGH, ACROSS, INTRODUCTION)
}


def get_chapter(name: str) -> Chapter:
    """The chapter with slug or alias ``name``."""
    for chapter in CHAPTERS.values():
        if name == chapter.slug or name in chapter.aliases:
            return chapter
    raise ParameterError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
