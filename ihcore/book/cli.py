"""Command line: ``python -m ihcore list | run CHAPTER [-p NAME VALUE]... [--in-place] | build |
sweeps | sweep NAME [-p NAME VALUE]... [--shard i/n] [--results DIR] [--device D] [--compile] |
merge NAME | ship NAME [-p NAME VALUE]... [--results DIR] [--shards n] | cross-cpu [CHAPTER]...``."""

from __future__ import annotations

import argparse
import os
import sys

from ihcore.book.chapters import CHAPTERS, get_chapter
from ihcore.spine.reproducibility import pin_cpu_numerics
from ihcore.spine.validation import ParameterError


def list_chapters() -> None:
    for chapter in CHAPTERS.values():
        aliases = f" (alias: {', '.join(chapter.aliases)})" if chapter.aliases else ""
        print(f"{chapter.slug}{aliases}: {chapter.title} [{chapter.notebook}]")
        for p in chapter.parameters.parameters:
            print(f"    {p.name} = {p.default!r}  # {p.valid_range()}; {p.help}")


def pop_parameters(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Take every ``-p NAME VALUE`` out of ``argv`` before argparse sees it.

    argparse would read a VALUE such as ``-1e-3`` as an option; here it is just a value.
    """
    rest, overrides = [], {}
    words = iter(argv)
    for word in words:
        if word in ("-p", "--parameter"):
            name, value = next(words, None), next(words, None)
            if value is None:
                raise ParameterError(f"{word} needs NAME VALUE")
            overrides[name] = value
        else:
            rest.append(word)
    return rest, overrides


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` -> (i, n) with n >= 1 and 0 <= i < n; ParameterError otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index = count = None
    if count is None or count < 1 or not 0 <= index < count:
        valid = f"0/{count} ... {count - 1}/{count}" if count is not None and count >= 1 else "0/4 ... 3/4"
        raise ParameterError(f"--shard {text!r} is invalid: expected i/n with integers n >= 1 and 0 <= i <= n - 1 "
                             f"(e.g. {valid})")
    return index, count


def list_sweeps() -> None:
    from ihcore.book.sweep_registry import SWEEPS

    for sweep in SWEEPS.values():
        runs = sweep.count(sweep.parameters())
        print(f"{sweep.name} [{sweep.chapter}]: {runs} run{'s' if runs != 1 else ''} at defaults; {sweep.description}")


def sweep_command(args, overrides: dict[str, str]) -> int:
    """``sweep``, ``merge`` and ``ship``: check every input (exit 2) before any run."""
    from ihcore.book import sweep_registry, sweeps
    from ihcore.spine import devices
    from ihcore.spine.train import COMPILE_ENV

    try:
        if args.name not in sweep_registry.SWEEPS:
            raise ParameterError(f"unknown sweep {args.name!r}; sweeps: {', '.join(sweep_registry.SWEEPS)}")
        sweep = sweep_registry.SWEEPS[args.name]
        p = sweep.parameters(get_chapter(sweep.chapter).parameters.parse(overrides))
        if args.command == "sweep":
            shard = parse_shard(args.shard)
            devices.use(args.device)
            if args.compile:
                os.environ[COMPILE_ENV] = "1"  # every training loop of this process (ihcore.spine.train)
        elif args.shards is not None and args.shards < 1:
            raise ParameterError(f"--shards {args.shards} is invalid: expected an integer >= 1")
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command in ("merge", "ship"):
        write, done = (sweeps.merge, "merged") if args.command == "merge" else (sweeps.ship, "shipped")
        try:
            print(f"{done}: {write(sweep, p, args.results, args.shards)}")
        except sweeps.MissingResults as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    import torch

    torch.set_num_threads(1)  # as the notebooks: one thread per process, bit-identical results; shards for more cores
    results = sweeps.run_sweep(sweep, p, args.results, shard)
    print(f"{sweep.name} shard {shard[0]}/{shard[1]}: {len(results)} results in {sweeps.sweep_dir(sweep, args.results)}")
    return 0


def cross_cpu_command(names: list[str], cell_timeout: int) -> int:
    """``cross-cpu``: :func:`ihcore.book.cross_cpu.check_chapter` for each chapter named (default:
    every chapter with a seeds parameter: those that train), a line each and the differences;
    1 if any chapter differs."""
    try:
        chapters = [get_chapter(name) for name in names] or [
            c for c in CHAPTERS.values() if any(p.name == "n_seeds" for p in c.parameters.parameters)]
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ihcore.book.cross_cpu import check_chapter  # deferred: papermill is a slow import

    agree = True
    for chapter in chapters:
        report = check_chapter(chapter, cell_timeout=cell_timeout)
        print(report.summary(), flush=True)
        for index, committed, fresh in report.differing_cells:
            print(f"  checked cell {index}:\n    committed: {committed.strip()[:500]}\n    rerun:     {fresh.strip()[:500]}")
        for line in report.claim_disagreements:
            print(f"  {line}")
        agree &= report.agrees
    return 0 if agree else 1


def main(argv: list[str] | None = None) -> int:
    pin_cpu_numerics()  # before any torch computation: sweeps run in this process, chapters in kernels it starts
    try:
        argv, overrides = pop_parameters(sys.argv[1:] if argv is None else argv)
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m ihcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters and their parameters with defaults and ranges")
    run = commands.add_parser("run", help="execute one chapter with papermill")
    run.add_argument("chapter")
    # Declared for --help only: pop_parameters has already taken every -p out of argv.
    run.add_argument("-p", "--parameter", nargs=2, metavar=("NAME", "VALUE"),
                     help="set a parameter (repeatable); see `list` for names and ranges")
    run.add_argument("--in-place", action="store_true",
                     help="overwrite the committed notebook (default: write _build/executed/<notebook>)")
    run.add_argument("--cell-timeout", type=int, default=900, help="seconds a cell may run (default 900)")
    build = commands.add_parser("build", help="execute every chapter at its defaults (or reuse its cached execution: "
                                "see ihcore/book/build.py) and render _build/html")
    build.add_argument("--cell-timeout", type=int, default=900)
    build.add_argument("--force", action="store_true", help="re-execute every chapter, ignoring the execution cache")
    commands.add_parser("sweeps", help="the registered sweeps: chapter, runs at defaults, description")
    cross_cpu = commands.add_parser("cross-cpu", help="re-execute chapters under another instruction-set setting and "
                                    "compare their checked outputs and verdicts with the committed ones (exit 1 if any differ)")
    cross_cpu.add_argument("chapters", nargs="*", help="chapters (default: every chapter with seeds)")
    cross_cpu.add_argument("--cell-timeout", type=int, default=900)
    for name, text in (("sweep", "run a sweep's runs (or one shard of them) that have no result file yet"),
                       ("merge", "collect a sweep's result files into <results>/<sweep>.json"),
                       ("ship", "collect a sweep's result files, with their provenance, into data/shipped/<sweep>.json")):
        command = commands.add_parser(name, help=text)
        command.add_argument("name", help="a sweep (see `sweeps`)")
        command.add_argument("-p", "--parameter", nargs=2, metavar=("NAME", "VALUE"),
                             help="set a chapter parameter, as in `run` (repeatable)")
        command.add_argument("--results", default=None, help="results folder (default: results/ at the repository root)")
    sweep_parser = commands.choices["sweep"]
    sweep_parser.add_argument("--shard", default="0/1", metavar="i/n",
                              help="run configurations k with k mod n = i (default 0/1: all)")
    sweep_parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    sweep_parser.add_argument("--compile", action="store_true",
                              help="compile the training steps (torch.compile): faster, rounded differently from eager")
    for name in ("merge", "ship"):
        commands.choices[name].add_argument("--shards", type=int, default=None, metavar="n",
                                            help="name the missing shards' commands for this n")
    args = parser.parse_args(argv)

    if args.command == "list":
        list_chapters()
        return 0
    if args.command == "sweeps":
        list_sweeps()
        return 0
    if overrides and args.command not in ("run", "sweep", "merge", "ship"):
        parser.error("-p is an option of `run`, `sweep`, `merge` and `ship`")
    if args.command in ("sweep", "merge", "ship"):
        return sweep_command(args, overrides)
    if args.command == "build":
        from ihcore.book.build import build_book  # deferred: papermill and nbformat are slow imports

        print(f"book: {build_book(args.cell_timeout, force=args.force)}")
        return 0
    if args.command == "cross-cpu":
        return cross_cpu_command(args.chapters, args.cell_timeout)
    try:
        chapter = get_chapter(args.chapter)
        values = chapter.parameters.parse(overrides)
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ihcore.book.build import run_chapter

    print(f"executed: {run_chapter(chapter, values, in_place=args.in_place, cell_timeout=args.cell_timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
