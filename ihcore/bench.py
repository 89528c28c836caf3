"""``make bench``: wall times on this machine, printed as a Markdown table.

Measures the training loop alone (the from-scratch chapter's default model and task, one
thread) and each chapter executed end to end at its defaults (kernel start included).
Speed targets are checked here, not in timed tests.
"""

from __future__ import annotations

import platform
import time

import torch

from ihcore.book import run_chapter
from ihcore import six_parameter, stress_tests
from ihcore.chapters import CHAPTERS, FROM_SCRATCH, WANG
from ihcore.mixed_target import DiscreteMixedTarget, MixedTarget, discrete_progress_measure, progress_measure
from ihcore.models import AttentionOnlyTransformer, TransformerConfig
from ihcore.tasks import ItemLabelTask
from ihcore.train import train

TRAINING_STEPS = 300


def time_training() -> float:
    """Seconds per training step of the from-scratch chapter's default model."""
    p = FROM_SCRATCH.parameters.validate({})
    task = ItemLabelTask(n_pairs=p.n_pairs, item_dim=p.item_dim, n_labels=p.n_labels, n_classes=p.n_classes)
    config = TransformerConfig(task.d_input, task.n_labels, task.n_positions, n_heads=p.n_heads, d_model=p.d_model)
    model = AttentionOnlyTransformer(config)
    start = time.perf_counter()
    train(model, task, steps=TRAINING_STEPS, lr=p.lr, batch_size=p.batch_size, eval_every=TRAINING_STEPS, progress=False)
    return (time.perf_counter() - start) / TRAINING_STEPS


def bench_wang() -> list[tuple[str, str]]:
    """CPU seconds (one thread) of the Wang chapter's runs at its defaults."""
    p = WANG.parameters.validate({})
    torch.set_num_threads(1)
    rows = []
    for name, configs in six_parameter.chapter_runs(p).items():
        start = time.process_time()
        six_parameter.run_sweep(configs, progress_bar=False)
        rows.append((f"wang: six-parameter runs `{name}` ({len(configs)}, batched; CPU)", f"{time.process_time() - start:.1f} s"))
    continuous = MixedTarget(p.transformer_length, p.alpha, p.w_star, p.normalisation)
    discrete = DiscreteMixedTarget(p.transformer_length, p.vocabulary, p.alpha)
    for name, task, measure, width in [("Gaussian tokens", continuous, progress_measure(continuous), 1),
                                       ("discrete tokens", discrete, discrete_progress_measure(discrete), p.vocabulary)]:
        start = time.process_time()
        stress_tests.train_transformer(task, measure, d_input=width, d_output=width, length=p.transformer_length,
                                       steps=p.transformer_steps, lr=p.transformer_lr, seed=p.seed, progress=False)
        rows.append((f"wang: spine transformer, Adam, {name}, {p.transformer_steps} steps (CPU)",
                     f"{time.process_time() - start:.1f} s"))
    return rows


def main() -> None:
    rows = [("training step, from-scratch defaults (1 thread)", f"{1000 * time_training():.2f} ms")]
    rows += bench_wang()
    for chapter in CHAPTERS.values():
        start = time.perf_counter()
        run_chapter(chapter, {})
        rows.append((f"chapter `{chapter.slug}` at defaults (papermill)", f"{time.perf_counter() - start:.1f} s"))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print("| what | wall time |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
