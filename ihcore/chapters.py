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

INTRODUCTION = Chapter(
    slug="introduction",
    notebook="chapters/introduction.ipynb",
    title="Introduction",
    parameters=ParameterSpec(()),
)

CHAPTERS: dict[str, Chapter] = {chapter.slug: chapter for chapter in (FROM_SCRATCH, INTRODUCTION)}


def get_chapter(name: str) -> Chapter:
    """The chapter with slug or alias ``name``."""
    for chapter in CHAPTERS.values():
        if name == chapter.slug or name in chapter.aliases:
            return chapter
    raise ParameterError(f"unknown chapter {name!r}; chapters: {', '.join(CHAPTERS)}")
