"""``make bench``: wall and CPU times on this machine, printed as a Markdown table.

Measures the training loop alone (the from-scratch chapter's default model and task, one
thread), each study's own runs (Musat: full vs reduced models and the closed-form N sweep;
Wang: its six-parameter sweeps and transformer stress tests; Singh: the baseline's time to its phase change,
the clamp runs, five seeds of the baseline trained as one ensemble against one seed, and the paper scale's two speed targets as ratios, eager and compiled; the cross-paper chapter's order and N-scaling sweeps), and each chapter
executed end to end at its defaults (kernel start included). Each row says whether it is wall time, CPU time or a ratio. Speed targets are
checked here, not in timed tests.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import torch

from ihcore.book import sweep_registry, sweeps
from ihcore.book.build import run_chapter
from ihcore.book.chapters import ACROSS, CHAPTERS, FROM_SCRATCH, MUSAT, SINGH, WANG
from ihcore.musat import flow_runs, minimal_runs
from ihcore.musat.reduced import three_parameter_flow
from ihcore.singh import ClampedRunConfig, SinghSetting
from ihcore.singh.subcircuits import CONDITIONS, train_settings
from ihcore.singh.subcircuits import run as singh_run
from ihcore.spine.item_label_task import ItemLabelTask
from ihcore.spine.markdown import markdown_table
from ihcore.spine.reproducibility import PINNED_CPU_ENVIRONMENT, pin_cpu_numerics
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


def time_singh_baselines(n_seeds: int, threads: int) -> float:
    """Wall seconds to train ``n_seeds`` Singh baselines (default setting, with the baseline's
    evaluations) as one ensemble on ``threads`` threads."""
    s = SinghSetting()
    start = time.perf_counter()
    train_settings([dataclasses.replace(s, seed=s.seed + i) for i in range(n_seeds)], checkpoints=False,
                   progress=False, threads=threads)
    wall = time.perf_counter() - start
    torch.set_num_threads(1)
    return wall


def bench_ensemble() -> list[tuple[str, str]]:
    """Seeds as a batch dimension: 5 Singh baselines as one ensemble against one baseline (target: <= 2x on 2 cores)."""
    one = time_singh_baselines(1, threads=1)
    rows = [(f"singh baseline, 1 seed, {SinghSetting.steps} steps (1 thread)", f"{one:.1f} s")]
    for threads in (1, 2):
        five = time_singh_baselines(5, threads=threads)
        label = f"singh baseline, 5 seeds as one ensemble ({threads} thread{'s' * (threads > 1)}) / 1 seed (1 thread)"
        rows.append((label, f"{five / one:.2f}x"))
    return rows


PAPER_RUN_TARGET_S, PAPER_ENSEMBLE_TARGET_S = 120.0, 240.0  # the Singh issue's targets: 1 run, 5 seeds batched


def time_singh_paper(seeds: Sequence[int], steps: int, compiled: bool) -> float:
    """Wall seconds of ``steps`` steps of the paper-scale Singh baselines of the sweep's ``seeds``
    (indices of its configurations) trained as one ensemble on one thread, with the sweep's
    evaluations every 250 steps (end-of-run measures left out)."""
    configs = sweep_registry.get_sweep("singh-baseline").configs(SINGH.parameters.validate({"scale": "paper"}))
    start = time.perf_counter()
    train_settings([dataclasses.replace(configs[k], steps=steps) for k in seeds], checkpoints=False, progress=False,
                   compiled=compiled)
    return time.perf_counter() - start


def paper_run_seconds(seeds: Sequence[int], compiled: bool, short: int = 500, long: int = 2500) -> float:
    """Wall seconds of whole paper-scale runs (1e6 sequences: 31,250 steps) of ``seeds`` as one
    ensemble, extrapolated from shorter ones: a first run of ``short`` steps (which pays what a run
    pays once, compiling included, from the compiler's cache as it is) plus the remaining steps at
    the cost per step (its share of the evaluations included) of two more runs, of ``short`` and
    ``long`` steps. The two are timed after the first, as the compiler's cache makes a second
    compilation faster than a first."""
    full = sweep_registry.get_sweep("singh-baseline").configs(SINGH.parameters.validate({"scale": "paper"}))[0].steps
    first, t_short, t_long = (time_singh_paper(seeds, steps, compiled) for steps in (short, short, long))
    return first + (t_long - t_short) * (full - short) / (long - short)


def paper_shards_seconds(n_seeds: int, shards: int, compiled: bool) -> float:
    """Wall seconds of ``n_seeds`` paper-scale baselines as ``shards`` sweep shards running at the
    same time, one process and one thread each (``sweep --shard i/n``: shard i trains seeds k with
    k mod n = i as one ensemble): the slowest shard's :func:`paper_run_seconds`."""
    script = ("import sys; from ihcore.book.bench import paper_run_seconds; "
              "print(paper_run_seconds([int(k) for k in sys.argv[2:]], sys.argv[1] == '1'))")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(int(compiled)), *map(str, range(i, n_seeds, shards))],
                                  stdout=subprocess.PIPE, text=True) for i in range(shards)]
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a bench shard failed: {outputs}")
    return max(float(output.split()[-1]) for output in outputs)


def bench_singh_paper() -> list[tuple[str, str]]:
    """The Singh paper scale's speed targets as ratios: one run of 1e6 sequences on one core against
    2 minutes; five seeds on this machine against 4 minutes, as one ensemble on one core and as two
    shards on two cores; eager (the reference arithmetic of the chapters and the shipped results)
    and compiled (``sweep --compile``)."""
    rows = []
    for compiled in (False, True):
        mode = "compiled" if compiled else "eager"
        cases = ((f"1 seed, 1e6 sequences, {mode} (1 thread)", paper_run_seconds([0], compiled), PAPER_RUN_TARGET_S),
                 (f"5 seeds as one ensemble, {mode} (1 thread)", paper_run_seconds(range(5), compiled), PAPER_ENSEMBLE_TARGET_S),
                 (f"5 seeds as 2 shards at once, {mode} (2 processes)", paper_shards_seconds(5, 2, compiled),
                  PAPER_ENSEMBLE_TARGET_S))
        rows += [(f"singh paper scale, {what} / {target:.0f} s target", f"{seconds / target:.2f}x")
                 for what, seconds, target in cases]
    return rows


def bench_pin() -> list[tuple[str, str]]:
    """The cost of the AVX2 pin: one Singh baseline in a fresh process with and without it."""
    script = "from ihcore.book.bench import time_singh_baselines; print(time_singh_baselines(1, threads=1))"
    seconds = {}
    for label, pinned in (("pinned", True), ("unpinned", False)):
        environment = {k: v for k, v in os.environ.items() if pinned or k not in PINNED_CPU_ENVIRONMENT}
        if pinned:
            environment.update(PINNED_CPU_ENVIRONMENT)
        output = subprocess.run([sys.executable, "-c", script], env=environment, check=True, capture_output=True, text=True)
        seconds[label] = float(output.stdout.split()[-1])
    return [("singh baseline with the AVX2 pin / without it (the libraries' own dispatch)",
             f"{seconds['pinned'] / seconds['unpinned']:.2f}x")]


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
    # Compile as on a fresh machine: into an empty cache (the bench's shards share it).
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="ihcore-bench-compile-")
    rows = [("training step, from-scratch defaults (1 thread)", f"{1000 * time_training():.2f} ms")]
    rows += bench_ensemble()
    rows += bench_pin()
    rows += bench_musat()
    rows += bench_wang()
    rows += bench_singh()
    rows += bench_singh_paper()
    rows += bench_across()
    for chapter in CHAPTERS.values():
        start = time.perf_counter()
        run_chapter(chapter, {})
        rows.append((f"chapter `{chapter.slug}` at defaults (papermill)", f"{time.perf_counter() - start:.1f} s"))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print(markdown_table(["what", "time"], rows))


if __name__ == "__main__":
    main()
