"""The book's chapters and their parameters: one registry for the notebooks and the CLI.

A study adds its chapter by adding one :class:`Chapter` to :data:`CHAPTERS`. The order of
:data:`CHAPTERS` is the order of execution when the book is built: the introduction,
which tabulates every chapter's claims, comes last.
"""

from __future__ import annotations

from dataclasses import dataclass

from ihcore.params import Parameter, ParameterError, ParameterSpec

SEED = Parameter("seed", int, 0, "base seed: init, data and evaluation seeds derive from it", 0, 2**31 - 1)
SHOW_PROGRESS = Parameter("show_progress", bool, True, "tqdm progress bars (always off under CI)")


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
            SHOW_PROGRESS,
        ),
        checks=(
            (lambda p: p.d_model % p.n_heads == 0, "d_model must be divisible by n_heads"),
            (lambda p: p.eval_every <= p.steps, "eval_every must be <= steps"),
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
            Parameter("length", int, 32, "sequence length L of the default run", 8, 256),
            Parameter("alpha", float, 0.5, "weight α* of the 4-gram in the mixed target", 0.05, 0.95),
            Parameter("w_star", float, 0.5, "key-query weight w* of the induction-head target", 0.05, 2.0),
            Parameter("normalisation", str, "sqrt", "IH scale κ_L: 'sqrt' = √(L−2), 'none' = 1", choices=("sqrt", "none")),
            Parameter("sigma_init", float, 0.01, "initial value of every trained parameter (default run)", 1e-8, 0.5),
            Parameter("lr", float, 1.0, "gradient-descent learning rate (time t = lr · steps)", 1e-3, 2.0),
            Parameter("time", float, 700.0, "gradient-flow time of each six-parameter run", 10.0, 100_000.0),
            Parameter("n_train", int, 1024, "Monte Carlo training sequences (full batch)", 64, 65_536),
            Parameter("n_eval", int, 1024, "independent evaluation sequences", 64, 65_536),
            Parameter("sweep_sigma_decades", int, 4, "σ_init sweep: 1e-1, ..., 1e-k", 2, 8),
            Parameter("sweep_max_length", int, 128, "length sweep: L = 16, 32, ... up to this", 32, 512),
            Parameter("unnormalised_time", float, 2500.0, "time of the κ_L = 1 runs (L = 8, 16, 32)", 10.0, 100_000.0),
            Parameter("transformer_steps", int, 1000, "Adam steps of the spine-transformer stress tests", 10, 100_000),
            Parameter("transformer_lr", float, 0.01, "Adam learning rate of the spine-transformer stress tests", 1e-5, 0.1),
            Parameter("transformer_length", int, 16, "sequence length of the spine-transformer stress tests", 8, 64),
            Parameter("vocabulary", int, 16, "vocabulary of the discrete-token stress test", 4, 256),
            Parameter("max_heads", int, 8, "IH_n construction: first-layer heads H = 1..max_heads", 4, 16),
            SHOW_PROGRESS,
        ),
        checks=(
            (lambda p: p.time / p.lr >= 10, "time / lr (the number of steps) must be >= 10"),
            (lambda p: p.unnormalised_time / p.lr >= 10, "unnormalised_time / lr must be >= 10"),
        ),
    ),
)

INTRODUCTION = Chapter(
    slug="introduction",
    notebook="chapters/introduction.ipynb",
    title="Introduction",
    parameters=ParameterSpec(()),
)

CHAPTERS: dict[str, Chapter] = {chapter.slug: chapter for chapter in (FROM_SCRATCH, WANG, INTRODUCTION)}


def get_chapter(name: str) -> Chapter:
    """The chapter with slug or alias ``name``."""
    for chapter in CHAPTERS.values():
        if name == chapter.slug or name in chapter.aliases:
            return chapter
    raise ParameterError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
