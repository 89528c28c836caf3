"""Execute chapters with papermill and build the HTML book with Jupyter Book.

``run_chapter`` executes one notebook, in place or into ``_build/executed/``; the
output appears only when execution succeeds (it is written to a temporary file in the
same folder, then renamed). ``render_book`` renders a book folder as it is (Jupyter Book
never executes notebooks: ``execute_notebooks: off``) to ``<output>/_build/html/`` with
warnings as errors; ``copy_sources`` makes such a folder from the book's sources.
``build_book`` executes every chapter at its defaults into ``_build/executed/`` beside a
copy of the sources, then renders that copy to ``_build/html/``; the browser test renders a
copy of the committed notebooks to a temporary folder instead. Nothing here touches the
committed notebooks unless asked to run in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill

from ihcore.book.chapters import BOOK_ROOT, CHAPTERS, Chapter
from ihcore.spine.reproducibility import pin_cpu_numerics

EXECUTED = BOOK_ROOT / "_build" / "executed"
BOOK_SOURCES = ("_config.yml", "_toc.yml")
VOLATILE_METADATA = ("papermill", "execution")


def run_chapter(chapter: Chapter, values: dict, *, in_place: bool = False, cell_timeout: int = 900) -> Path:
    """Execute ``chapter``'s notebook with parameter ``values`` (validated by the caller).

    Writes ``<root>/<notebook>`` when ``in_place``, else ``_build/executed/<notebook>``.
    The kernel runs in the output's folder, so the chapter's claims go to the
    ``data/claims`` beside it. Progress bars are turned off in executed notebooks.
    """
    source = BOOK_ROOT / chapter.notebook
    output = source if in_place else EXECUTED / chapter.notebook
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial.ipynb")
    os.environ["IHCORE_PROGRESS"] = "0"  # the kernel inherits this process's environment
    pin_cpu_numerics()
    try:
        papermill.execute_notebook(
            source, partial, parameters=values, kernel_name="python3", cwd=output.parent,
            progress_bar=False, execution_timeout=cell_timeout,
        )
        strip_volatile_metadata(partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's timestamps and durations so reruns leave identical files."""
    notebook = nbformat.read(path, as_version=4)
    for metadata in [notebook.metadata] + [cell.metadata for cell in notebook.cells]:
        for key in VOLATILE_METADATA:
            metadata.pop(key, None)
    nbformat.write(notebook, path)


def copy_sources(destination: Path, *, notebooks: bool) -> Path:
    """Copy the book's configuration and ``chapters/`` into ``destination`` (created).

    With ``notebooks`` the committed, already-executed notebooks come along; without, only
    the rest of ``chapters/`` does, for ``run_chapter`` to write executed notebooks there.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for name in BOOK_SOURCES:
        shutil.copy2(BOOK_ROOT / name, destination / name)
    ignored = (".*",) if notebooks else ("*.ipynb", ".*")
    shutil.copytree(BOOK_ROOT / "chapters", destination / "chapters", ignore=shutil.ignore_patterns(*ignored))
    return destination


def render_book(source: Path, output: Path, *, quiet: bool = False) -> Path:
    """Render the book folder ``source`` to ``<output>/_build/html/``; returns index.html.

    ``jupyter-book build -W -n --keep-going``: any Sphinx warning fails the build
    (``CalledProcessError``) after every page was tried. With ``quiet`` its output is
    captured and written to stderr only when it fails.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(source), "--path-output", str(output), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, capture_output=quiet, text=True)
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout + result.stderr)
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
    return Path(output) / "_build" / "html" / "index.html"


def build_book(cell_timeout: int = 900) -> Path:
    """Execute every chapter at its defaults and render the HTML book; returns index.html."""
    if EXECUTED.exists():
        shutil.rmtree(EXECUTED)
    copy_sources(EXECUTED, notebooks=False)
    for chapter in CHAPTERS.values():
        print(f"executing {chapter.notebook}", flush=True)
        run_chapter(chapter, {}, cell_timeout=cell_timeout)
    return render_book(EXECUTED, BOOK_ROOT)
