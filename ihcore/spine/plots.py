"""Plots shared by every chapter, in one style: training curves, attention patterns, head scores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ihcore.spine.train import History

STYLE = {
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "legend.frameon": False,
}


FIGURE_FORMATS = ("png", "svg")


def use_style() -> None:
    """The book's plot style; under a build that asks for figure files (``$IHCORE_FIGURES_DIR``), also
    :func:`save_figures_to` that folder."""
    plt.rcParams.update(STYLE)
    if os.environ.get("IHCORE_FIGURES_DIR"):
        save_figures_to(Path(os.environ["IHCORE_FIGURES_DIR"]))


def save_figures_to(directory: Path) -> None:
    """In an IPython kernel: after every cell, write each open figure to ``directory/figure-NN.{png,svg}``.

    NN counts the figures in the order the notebook shows them (from 01). The callback runs
    before the inline backend's, which shows the figures and closes them. Outside IPython: nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "events"):
        return
    directory.mkdir(parents=True, exist_ok=True)
    written = [0]

    def write_open_figures() -> None:
        for number in plt.get_fignums():
            written[0] += 1
            for suffix in FIGURE_FORMATS:
                plt.figure(number).savefig(directory / f"figure-{written[0]:02d}.{suffix}", bbox_inches="tight")

    callbacks = shell.events.callbacks["post_execute"]
    callbacks[:] = [fn for fn in callbacks if getattr(fn, "__name__", "") != write_open_figures.__name__]
    callbacks.insert(0, write_open_figures)


def plot_curves(
    ax: plt.Axes,
    history: History,
    names: Sequence[str],
    *,
    ylabel: str,
    marker_step: int | None = None,
    reference: float | None = None,
    reference_label: str = "",
) -> None:
    """Lines of the scalar measures ``names`` against training step.

    ``marker_step`` draws a vertical line (e.g. the phase change); ``reference`` a
    horizontal one (e.g. chance or ln 2).
    """
    for name in names:
        ax.plot(history.eval_steps, history[name], label=name.replace("/", ": "))
    if marker_step is not None:
        ax.axvline(marker_step, color="grey", linestyle="--", linewidth=1, label=f"phase change (step {marker_step})")
    if reference is not None:
        ax.axhline(reference, color="black", linestyle=":", linewidth=1, label=reference_label)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def plot_seed_curves(
    ax: plt.Axes,
    histories: Sequence[History],
    names: Sequence[str],
    *,
    ylabel: str,
    reference: float | None = None,
    reference_label: str = "",
) -> None:
    """Each measure of ``names`` over training for every seed (thin lines) and their median (bold).

    ``histories``: one per seed, with the same evaluation steps. ``reference`` draws a
    horizontal line (e.g. chance or ln 2).
    """
    steps = histories[0].eval_steps
    for index, name in enumerate(names):
        color = f"C{index}"
        for history in histories:
            ax.plot(steps, history[name], color=color, linewidth=0.6, alpha=0.4)
        median = np.median(np.stack([history[name] for history in histories]), axis=0)
        ax.plot(steps, median, color=color, linewidth=2, label=f"{name.replace('/', ': ')} (median of {len(histories)})")
    if reference is not None:
        ax.axhline(reference, color="black", linestyle=":", linewidth=1, label=reference_label)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def plot_head_scores(ax: plt.Axes, history: History, score: str, layer: int, *, marker_step: int | None = None) -> None:
    """One line per head of ``layer`` for ``score`` (a (E, layers, heads) history entry)."""
    values = history[score][:, layer, :]
    for head in range(values.shape[1]):
        ax.plot(history.eval_steps, values[:, head], label=f"layer {layer} head {head}")
    if marker_step is not None:
        ax.axvline(marker_step, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel(score.replace("_", " "))
    ax.legend(fontsize=8)


def plot_pattern(ax: plt.Axes, pattern: np.ndarray, token_names: Sequence[str], title: str) -> None:
    """Heatmap of one head's attention pattern (T, T): query rows, key columns, in [0, 1]."""
    image = ax.imshow(pattern, vmin=0.0, vmax=1.0, cmap="viridis")
    ticks = np.arange(len(token_names))
    ax.set_xticks(ticks, token_names, fontsize=7, rotation=90)
    ax.set_yticks(ticks, token_names, fontsize=7)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(title, fontsize=9)
    ax.grid(False)
    plt.colorbar(image, ax=ax, fraction=0.046)
