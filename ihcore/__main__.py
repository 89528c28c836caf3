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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ihcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters and their parameters with defaults and ranges")
    run = commands.add_parser("run", help="execute one chapter with papermill")
    run.add_argument("chapter")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument("--in-place", action="store_true",
                     help="overwrite the committed notebook (default: write _build/executed/<notebook>)")
    run.add_argument("--cell-timeout", type=int, default=900, help="seconds a cell may run (default 900)")
    build = commands.add_parser("build", help="execute every chapter at its defaults and render _build/html")
    build.add_argument("--cell-timeout", type=int, default=900)
    args = parser.parse_args(argv)

    if args.command == "list":
        list_chapters()
        return 0
    from ihcore.book import build_book, run_chapter  # deferred: papermill and nbformat are slow imports

    if args.command == "build":
        print(f"book: {build_book(args.cell_timeout)}")
        return 0
    try:
        chapter = get_chapter(args.chapter)
        values = chapter.parameters.parse(dict(args.parameter))
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"executed: {run_chapter(chapter, values, in_place=args.in_place, cell_timeout=args.cell_timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
