"""``make bench``: wall and CPU times on this machine, printed as a Markdown table.

Measures the training loop alone (the from-scratch chapter's default model and task, one
thread), each study's own runs (Musat: full vs reduced models and the closed-form N sweep;
Wang: its six-parameter sweeps and transformer stress tests; Singh: the baseline's time to its phase change and
the clamp runs; the cross-paper chapter's order and N-scaling sweeps), and each chapter
executed end to end at its defaults (kernel start included). Each row says whether it is wall time, CPU time or a ratio. Speed targets are
checked here, not in timed tests.
"""

from __future__ import annotations

import platform
import time

import torch

from ihcore.book import sweep_registry, sweeps
from ihcore.book.build import run_chapter
from ihcore.book.chapters import ACROSS, CHAPTERS, FROM_SCRATCH, MUSAT, WANG
from ihcore.musat import flow_runs, minimal_runs
from ihcore.musat.reduced import three_parameter_flow
from ihcore.singh import ClampedRunConfig, SinghSetting
from ihcore.singh.subcircuits import CONDITIONS
from ihcore.singh.subcircuits import run as singh_run
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.markdown import markdown_table
from ihcore.spine.reproducibility import pin_cpu_numerics
from ihcore.spine.train import train
from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.wang import stress_tests

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


def bench_musat() -> list[tuple[str, str]]:
    """Musat chapter: full vs reduced minimal model on the same trajectory, and the closed-form N sweep."""
    torch.set_num_threads(1)
    p = MUSAT.parameters.validate({})
    configs = minimal_runs.reduced_configs(p)  # full, 19 coefficients, 3 parameters
    seconds = {}
    for config in configs:
        start = time.perf_counter()
        minimal_runs.run(config, progress=False)
        seconds[config.model] = time.perf_counter() - start
    start = time.perf_counter()
    three_parameter_flow(p.n_pairs, configs[0].tau_max)
    seconds["flow"] = time.perf_counter() - start
    start = time.perf_counter()
    for flow_config in flow_runs.sweep_configs(p):
        flow_runs.run(flow_config)
    sweep = time.perf_counter() - start
    return [
        (f"musat: full minimal model, N = {p.n_pairs}, D = {p.dim}, tau = {configs[0].tau_max:g}", f"{seconds['full']:.1f} s"),
        ("musat: 19-coefficient / full, same trajectory (SGD on batches)", f"{seconds['coefficients'] / seconds['full']:.2f}x"),
        ("musat: 3-parameter / full, same batches", f"{seconds['three'] / seconds['full']:.2f}x"),
        ("musat: closed-form flow / full, same N and tau", f"{seconds['flow'] / seconds['full']:.4f}x"),
        (f"musat: closed-form flow, N = 2 ... {p.n_max_reduced} (musat-flow sweep)", f"{sweep:.2f} s"),
    ]


def bench_singh() -> list[tuple[str, str]]:
    """The Singh study at its defaults: the baseline's time to its phase change, and the clamp runs' time."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    baseline = singh_run(ClampedRunConfig(condition="none", active_head=None, steps=SinghSetting.steps), progress=False)
    per_step = (time.perf_counter() - start) / baseline["steps"]
    rows = [(f"singh baseline: phase change at step {baseline['phase_change']}, time to it (1 thread)",
             f"{per_step * (baseline['phase_change'] or baseline['steps']):.1f} s")]
    start = time.perf_counter()
    for condition in CONDITIONS:
        singh_run(ClampedRunConfig(condition=condition), progress=False)
    rows.append((f"singh clamp conditions ({len(CONDITIONS)} runs of {ClampedRunConfig.steps} steps)",
                 f"{time.perf_counter() - start:.1f} s"))
    return rows


def bench_wang() -> list[tuple[str, str]]:
    """CPU seconds (one thread) of the Wang chapter's runs at its defaults."""
    p = WANG.parameters.validate({})
    torch.set_num_threads(1)
    rows = []
    for sweep in (s for s in sweep_registry.SWEEPS.values() if s.chapter == "wang"):
        start = time.process_time()
        runs = sweeps.run_or_load(sweep, p, progress=False)
        rows.append((f"{sweep.name}: {len(runs)} six-parameter runs (CPU)", f"{time.process_time() - start:.1f} s"))
    for setting, config in stress_tests.transformer_configs(p).items():
        start = time.process_time()
        stress_tests.train_transformer(config, progress=False)
        rows.append((f"wang: {setting}, {config.steps} steps (CPU)", f"{time.process_time() - start:.1f} s"))
    return rows


def bench_across() -> list[tuple[str, str]]:
    """The cross-paper chapter's two sweeps at its defaults (wall time, 1 thread)."""
    p = ACROSS.parameters.validate({})
    torch.set_num_threads(1)
    rows = []
    for name in ("across-order", "across-scaling"):
        sweep = sweep_registry.get_sweep(name)
        start = time.perf_counter()
        runs = sweeps.run_or_load(sweep, p, progress=False)
        rows.append((f"{name}: {len(runs)} runs ({sweep.description})", f"{time.perf_counter() - start:.1f} s"))
    return rows


def main() -> None:
    pin_cpu_numerics()  # the chapters' own numerics (ihcore.spine.reproducibility)
    rows = [("training step, from-scratch defaults (1 thread)", f"{1000 * time_training():.2f} ms")]
    rows += bench_musat()
    rows += bench_wang()
    rows += bench_singh()
    rows += bench_across()
    for chapter in CHAPTERS.values():
        start = time.perf_counter()
        run_chapter(chapter, {})
        rows.append((f"chapter `{chapter.slug}` at defaults (papermill)", f"{time.perf_counter() - start:.1f} s"))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print(markdown_table(["what", "time"], rows))


if __name__ == "__main__":
    main()
