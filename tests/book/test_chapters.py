"""The chapter registry agrees with the book: _toc.yml, the notebooks and their parameters cells."""

import ast
import json
from pathlib import Path

import pytest
import yaml

from ihcore.book.chapters import CHAPTERS, FROM_SCRATCH, INTRODUCTION, get_chapter
from ihcore.spine.validation import ParameterError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_PATHS = sorted((ROOT / "chapters").glob("*.ipynb"))
WITH_PARAMETERS = [chapter for chapter in CHAPTERS.values() if chapter.parameters.parameters]


def notebook(relative_path):
    return json.loads((ROOT / relative_path).read_text(encoding="utf-8"))


def code_cells(relative_path):
    return [cell for cell in notebook(relative_path)["cells"] if cell["cell_type"] == "code"]


def toc_files(entry):
    """Every ``root`` and ``file`` in a _toc.yml tree, at any depth (parts, chapters, sections)."""
    if isinstance(entry, list):
        return [name for item in entry for name in toc_files(item)]
    if isinstance(entry, dict):
        own = [entry[key] for key in ("root", "file") if key in entry]
        return own + [name for value in entry.values() for name in toc_files(value)]
    return []


def test_every_registered_notebook_exists():
    assert all((ROOT / chapter.notebook).is_file() for chapter in CHAPTERS.values())


def test_every_notebook_in_chapters_is_registered():
    on_disk = {path.relative_to(ROOT).as_posix() for path in NOTEBOOK_PATHS}
    assert on_disk == {chapter.notebook for chapter in CHAPTERS.values()}


def test_toc_lists_exactly_the_registered_chapters():
    toc = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
    assert sorted(toc) == sorted(chapter.notebook.removesuffix(".ipynb") for chapter in CHAPTERS.values())


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.name)
def test_notebook_kernel_is_python3(path):
    assert notebook(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("chapter", WITH_PARAMETERS, ids=lambda chapter: chapter.slug)
def test_parameters_cell_assigns_the_spec_defaults_in_order(chapter):
    tagged = [cell for cell in code_cells(chapter.notebook) if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assignments = []
    for statement in ast.parse("".join(tagged[0]["source"])).body:
        assert isinstance(statement, ast.Assign) and [type(target) for target in statement.targets] == [ast.Name]
        assignments.append((statement.targets[0].id, ast.literal_eval(statement.value)))
    defaults = list(chapter.parameters.defaults().items())
    # types too: `show_progress = 1` must not pass for a default of True
    assert [(name, type(value), value) for name, value in assignments] == [
        (name, type(value), value) for name, value in defaults
    ]


@pytest.mark.parametrize("chapter", WITH_PARAMETERS, ids=lambda chapter: chapter.slug)
def test_chapter_with_parameters_has_a_checked_output_cell(chapter):
    assert any("# NBVAL_CHECK_OUTPUT" in "".join(cell["source"]) for cell in code_cells(chapter.notebook))


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.name)
def test_notebook_is_committed_executed(path):
    assert all(cell["execution_count"] is not None for cell in code_cells(path))


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.name)
def test_notebook_is_committed_without_error_outputs(path):
    outputs = [output for cell in code_cells(path) for output in cell.get("outputs", [])]
    assert [output for output in outputs if output["output_type"] == "error"] == []


@pytest.mark.parametrize(
    "name, chapter",
    [("from-scratch", FROM_SCRATCH), ("intro-chapter", FROM_SCRATCH), ("introduction", INTRODUCTION)],
)
def test_get_chapter_resolves_slugs_and_aliases(name, chapter):
    assert get_chapter(name) is chapter


def test_get_chapter_rejects_an_unknown_name_listing_the_chapters():
    with pytest.raises(ParameterError) as error:
        get_chapter("from_scratch")
    assert "'from_scratch'" in str(error.value) and all(slug in str(error.value) for slug in CHAPTERS)


def test_no_alias_shadows_another_name():
    names = [name for chapter in CHAPTERS.values() for name in (chapter.slug, *chapter.aliases)]
    assert len(names) == len(set(names))
