"""Execute chapters with papermill and build the HTML book with Jupyter Book.

``run_chapter`` executes one notebook, in place or into ``_build/executed/``; the
output appears only when execution succeeds (it is written to a temporary file in the
same folder, then renamed). ``build_book`` executes every chapter at its defaults into
``_build/executed/`` beside a copy of the book's sources, then renders that copy to
``_build/html/`` with warnings as errors. Neither touches the committed notebooks unless
asked to run in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill

from ihcore.chapters import CHAPTERS, Chapter
from ihcore.reproducibility import pin_cpu_numerics

BOOK_ROOT = Path(__file__).resolve().parent.parent
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


def build_book(cell_timeout: int = 900) -> Path:
    """Execute every chapter at its defaults and render the HTML book; returns index.html."""
    if EXECUTED.exists():
        shutil.rmtree(EXECUTED)
    EXECUTED.mkdir(parents=True)
    for name in BOOK_SOURCES:
        shutil.copy2(BOOK_ROOT / name, EXECUTED / name)
    shutil.copytree(BOOK_ROOT / "chapters", EXECUTED / "chapters", ignore=shutil.ignore_patterns("*.ipynb", ".*"))
    for chapter in CHAPTERS.values():
        print(f"executing {chapter.notebook}", flush=True)
        run_chapter(chapter, {}, cell_timeout=cell_timeout)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(EXECUTED), "--path-output", str(BOOK_ROOT), "-W", "-n", "--keep-going"]
    subprocess.run(command, check=True)
    return BOOK_ROOT / "_build" / "html" / "index.html"
