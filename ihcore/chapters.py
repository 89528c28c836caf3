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

SINGH = Chapter(
    slug="singh",
    notebook="chapters/singh.ipynb",
    title="Singh et al.: what needs to go right for an induction head",
    parameters=ParameterSpec(
        (
            SEED,
            Parameter("n_classes", int, 50, "training classes (paper: 50)", 2, 10_000),
            Parameter("n_labels", int, 5, "labels (paper: 5)", 2, 64),
            Parameter("item_dim", int, 64, "dimension of the generated item features (paper's ResNet features: 512)", 2, 1024),
            Parameter("prototypes", str, "lowrank", "class prototype generator", choices=("lowrank", "isotropic")),
            Parameter("n_heads", int, 8, "attention heads per layer (paper: 8)", 2, 16),
            Parameter("d_model", int, 64, "residual stream width (paper: 64)", 8, 512),
            Parameter("steps", int, 1000, "training steps of the baseline", 10, 200_000),
            Parameter("lr", float, 3e-3, "Adam learning rate (paper: 1e-5)", 1e-6, 1.0),
            Parameter("batch_size", int, 32, "training sequences per step (paper: 32)", 1, 8192),
            Parameter("eval_every", int, 25, "steps between evaluations", 1, 100_000),
            Parameter("slow_lr", float, 1e-3, "learning rate of the comparison run", 1e-6, 1.0),
            Parameter("slow_steps", int, 1500, "training steps of the comparison runs", 10, 200_000),
            Parameter("clamp_steps", int, 1200, "training steps of each clamped run", 10, 200_000),
            Parameter("sweep_steps", int, 400, "training steps of each data-dependence run", 10, 200_000),
            Parameter("sweep_classes", int, 200, "the larger class count of the data-dependence sweep (paper: 100, 200)", 2, 10_000),
            Parameter("sweep_labels", int, 15, "the larger label count of the data-dependence sweep (paper: 10, 15)", 3, 64),
            Parameter("n_extra_seeds", int, 2, "further seeds of the baseline, for the spread of the phase-change time", 0, 20),
            Parameter("toy_init_scale", float, 0.1, "toy model: std of the initial factor entries", 1e-4, 10.0),
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

INTRODUCTION = Chapter(
    slug="introduction",
    notebook="chapters/introduction.ipynb",
    title="Introduction",
    parameters=ParameterSpec(()),
)

CHAPTERS: dict[str, Chapter] = {chapter.slug: chapter for chapter in (FROM_SCRATCH, SINGH, INTRODUCTION)}


def get_chapter(name: str) -> Chapter:
    """The chapter with slug or alias ``name``."""
    for chapter in CHAPTERS.values():
        if name == chapter.slug or name in chapter.aliases:
            return chapter
    raise ParameterError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
