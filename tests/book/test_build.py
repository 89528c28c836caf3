"""Executing a chapter: parameters reach the kernel, output appears only on success.
Rendering a book folder: math is served offline, and a warning fails the build."""

import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ihcore.book import build
from ihcore.book.chapters import Chapter
from ihcore.book.params import Parameter, ParameterSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy_book(tmp_path, monkeypatch):
    """A book root in tmp_path; returns a function writing a one-cell toy chapter."""
    monkeypatch.setattr(build, "BOOK_ROOT", tmp_path)
    monkeypatch.setattr(build, "EXECUTED", tmp_path / "_build" / "executed")

    def write_chapter(source: str) -> Chapter:
        notebook = new_notebook(
            cells=[new_code_cell("x = 1", metadata={"tags": ["parameters"]}), new_code_cell(source)],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        (tmp_path / "chapters").mkdir(exist_ok=True)
        nbformat.write(notebook, tmp_path / "chapters" / "toy.ipynb")
        return Chapter("toy", "chapters/toy.ipynb", "Toy", ParameterSpec((Parameter("x", int, 1, "a knob", 0, 9),)))

    return write_chapter


def test_parameters_reach_the_kernel_and_timestamps_are_stripped(toy_book):
    output = build.run_chapter(toy_book("print(x * 2)"), {"x": 3})
    executed = nbformat.read(output, as_version=4)
    assert output == build.EXECUTED / "chapters" / "toy.ipynb"
    assert executed.cells[-1].outputs[0]["text"] == "6\n"
    assert "papermill" not in executed.metadata
    assert all("execution" not in cell.metadata for cell in executed.cells)


def test_failed_execution_leaves_no_output(toy_book):
    with pytest.raises(papermill.PapermillExecutionError):
        build.run_chapter(toy_book("raise RuntimeError('boom')"), {})
    assert list((build.EXECUTED / "chapters").iterdir()) == []


def test_failed_in_place_execution_keeps_the_committed_notebook(toy_book):
    chapter = toy_book("raise RuntimeError('boom')")
    committed = (build.BOOK_ROOT / chapter.notebook).read_bytes()
    with pytest.raises(papermill.PapermillExecutionError):
        build.run_chapter(chapter, {}, in_place=True)
    assert (build.BOOK_ROOT / chapter.notebook).read_bytes() == committed
    assert [p.name for p in (build.BOOK_ROOT / "chapters").iterdir()] == ["toy.ipynb"]


@pytest.fixture
def toy_sources(tmp_path):
    """A book folder with the book's own _config.yml and one page; returns a function writing its text."""
    source = tmp_path / "source"
    (source / "chapters").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", source / "_config.yml")
    (source / "_toc.yml").write_text("format: jb-book\nroot: chapters/toy\n")

    def write_page(markdown: str) -> Path:
        (source / "chapters" / "toy.md").write_text(markdown)
        return source

    return write_page


def test_render_book_renders_a_folder_offline_math_included(toy_sources, tmp_path):
    index = build.render_book(toy_sources("# Toy\n\nThe law $N^2$.\n"), tmp_path / "out", quiet=True)
    page = (index.parent / "chapters" / "toy.html").read_text()
    assert index == tmp_path / "out" / "_build" / "html" / "index.html"
    assert "\\(N^2\\)" in page and "_static/mathjax/" in page


def test_render_book_fails_on_a_warning(toy_sources, tmp_path, capsys):
    with pytest.raises(subprocess.CalledProcessError):
        build.render_book(toy_sources("# Toy\n\nSee {ref}`no-such-label`.\n"), tmp_path / "out", quiet=True)
    assert "no-such-label" in capsys.readouterr().err  # the build's output, shown because it failed


def test_copy_sources_with_or_without_the_notebooks(toy_book, tmp_path):
    toy_book("print(x)")
    for name in build.BOOK_SOURCES:
        (build.BOOK_ROOT / name).write_text(name)
    with_notebooks = build.copy_sources(tmp_path / "with", notebooks=True)
    without = build.copy_sources(tmp_path / "without", notebooks=False)
    assert [path.name for path in (with_notebooks / "chapters").iterdir()] == ["toy.ipynb"]
    assert list((without / "chapters").iterdir()) == []
    assert (tmp_path / "without" / "_toc.yml").read_text() == "_toc.yml"


def test_jupyter_book_build_of_the_checkout_works_after_the_tests_ran(tmp_path):
    """`jupyter-book build .` on the repository renders the committed notebooks, warnings as errors,
    whatever else the tests left there (.pytest_cache/README.md, results/), with the take-away files."""
    (ROOT / ".pytest_cache").mkdir(exist_ok=True)
    if not (ROOT / ".pytest_cache" / "README.md").exists():
        (ROOT / ".pytest_cache" / "README.md").write_text("# pytest cache directory #\n")
    index = build.render_book(ROOT, tmp_path, quiet=True)
    html = index.parent
    header = (html / "claims.csv").read_text().splitlines()[0]
    assert header.startswith("chapter,id,kind,verdict,measured,interval_low,interval_high")
    assert set(json.loads((html / "claims.json").read_text())) == {p.stem for p in (ROOT / "data" / "claims").glob("*.json")}
    assert (html / "figures" / "from_scratch" / "figure-01.png").read_bytes()[:4] == b"\x89PNG"
    assert 'href="../claims.csv"' in (html / "chapters" / "from_scratch.html").read_text()
    assert not (html / ".pytest_cache").exists() and not (html / "README.html").exists()
