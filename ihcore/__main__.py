"""Command line: ``python -m ihcore list | run CHAPTER [-p NAME VALUE]... [--in-place] | build``."""

from __future__ import annotations

import argparse
import sys

from ihcore.chapters import CHAPTERS, get_chapter
from ihcore.params import ParameterError


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


def main(argv: list[str] | None = None) -> int:
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
    build = commands.add_parser("build", help="execute every chapter at its defaults and render _build/html")
    build.add_argument("--cell-timeout", type=int, default=900)
    args = parser.parse_args(argv)

    if args.command == "list":
        list_chapters()
        return 0
    if overrides and args.command != "run":
        parser.error("-p is an option of `run`")
    if args.command == "build":
        from ihcore.book import build_book  # deferred: papermill and nbformat are slow imports

        print(f"book: {build_book(args.cell_timeout)}")
        return 0
    try:
        chapter = get_chapter(args.chapter)
        values = chapter.parameters.parse(overrides)
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ihcore.book import run_chapter

    print(f"executed: {run_chapter(chapter, values, in_place=args.in_place, cell_timeout=args.cell_timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
