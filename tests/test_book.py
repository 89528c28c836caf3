"""Executing a chapter: parameters reach the kernel, output appears only on success."""

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ihcore import book
from ihcore.chapters import Chapter
from ihcore.params import Parameter, ParameterSpec


@pytest.fixture
def toy_book(tmp_path, monkeypatch):
    """A book root in tmp_path; returns a function writing a one-cell toy chapter."""
    monkeypatch.setattr(book, "BOOK_ROOT", tmp_path)
    monkeypatch.setattr(book, "EXECUTED", tmp_path / "_build" / "executed")

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
    output = book.run_chapter(toy_book("print(x * 2)"), {"x": 3})
    executed = nbformat.read(output, as_version=4)
    assert output == book.EXECUTED / "chapters" / "toy.ipynb"
    assert executed.cells[-1].outputs[0]["text"] == "6\n"
    assert "papermill" not in executed.metadata
    assert all("execution" not in cell.metadata for cell in executed.cells)


def test_failed_execution_leaves_no_output(toy_book):
    with pytest.raises(papermill.PapermillExecutionError):
        book.run_chapter(toy_book("raise RuntimeError('boom')"), {})
    assert list((book.EXECUTED / "chapters").iterdir()) == []


def test_failed_in_place_execution_keeps_the_committed_notebook(toy_book):
    chapter = toy_book("raise RuntimeError('boom')")
    committed = (book.BOOK_ROOT / chapter.notebook).read_bytes()
    with pytest.raises(papermill.PapermillExecutionError):
        book.run_chapter(chapter, {}, in_place=True)
    assert (book.BOOK_ROOT / chapter.notebook).read_bytes() == committed
    assert [p.name for p in (book.BOOK_ROOT / "chapters").iterdir()] == ["toy.ipynb"]
