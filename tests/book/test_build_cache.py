"""The execution cache of `make book`: a chapter re-executes only when what it depends on changed.

Stand-in chapters and a stand-in ``ihcore`` package in a temporary book root; ``run_chapter``
is replaced by a recorder that writes what a real execution writes (the executed notebook,
its ledger, a figure), so these tests run no kernel. One test at the end runs a real kernel
on a one-cell chapter: its figure files are written and the kernel says nothing about TCP.
"""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ihcore.book import build
from ihcore.book.chapters import CHAPTERS, Chapter
from ihcore.book.params import Parameter, ParameterSpec

ROOT = Path(__file__).resolve().parents[2]

PACKAGE = {  # the stand-in ihcore: a spine, two studies, a cross-study module, a registry importing everything
    "ihcore/__init__.py": "",
    "ihcore/spine/__init__.py": "",
    "ihcore/spine/train.py": "def train(): return 1\n",
    "ihcore/alpha/__init__.py": "",
    "ihcore/alpha/runs.py": "from ihcore.spine.train import train\n",
    "ihcore/beta/__init__.py": "from .runs import run\n",
    "ihcore/beta/runs.py": "def run():\n    from ihcore.spine import train\n",
    "ihcore/across/__init__.py": "",
    "ihcore/across/order.py": "from ihcore.alpha import runs\n",
    "ihcore/book/__init__.py": "",
    "ihcore/book/chapters.py": "from ihcore.alpha import runs\nfrom ihcore.beta import run\n",
    "ihcore/book/sweeps.py": "",
}
NOTEBOOKS = {  # slug -> the chapter's code
    "alpha": "from ihcore.book.chapters import ALPHA\nfrom ihcore.alpha.runs import train",
    "beta": "from ihcore.book.chapters import BETA\nimport ihcore.beta",
    "across": "from ihcore.across import order\nfrom ihcore.spine.claims import load_claims",
    "shipped": "from ihcore.book.sweeps import load_shipped\nshipped = load_shipped('beta-sweep')",
}


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A stand-in book; returns (executions so far, a build function)."""
    for name, text in PACKAGE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\n")
    (tmp_path / "data" / "shipped").mkdir(parents=True)
    (tmp_path / "data" / "shipped" / "beta-sweep.json").write_text("{}")
    for name in build.BOOK_SOURCES:
        (tmp_path / name).write_text("")
    chapters = {}
    for slug, code in NOTEBOOKS.items():
        notebook = new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": ["parameters"]}), new_code_cell(code)])
        (tmp_path / "chapters").mkdir(exist_ok=True)
        nbformat.write(notebook, tmp_path / "chapters" / f"{slug}.ipynb")
        chapters[slug] = Chapter(slug, f"chapters/{slug}.ipynb", slug, ParameterSpec((Parameter("x", int, 1, "k", 0, 9),)))
    for name, value in (("BOOK_ROOT", tmp_path), ("EXECUTED", tmp_path / "_build" / "executed"),
                        ("CACHE", tmp_path / "_build" / "cache"), ("CHAPTERS", chapters)):
        monkeypatch.setattr(build, name, value)
    executions = []

    def fake_run(chapter, values, *, cell_timeout, figures):
        """What a real execution leaves: the executed notebook, its ledger, a figure."""
        executions.append(chapter.slug)
        output = build.EXECUTED / chapter.notebook
        output.write_bytes((tmp_path / chapter.notebook).read_bytes())
        study = tmp_path / "ihcore" / chapter.slug / "runs.py"  # the "result": what the study's code says
        ledger = {"chapter": chapter.slug, "claims": [], "result": study.read_text() if study.is_file() else ""}
        (build.EXECUTED / "data" / "claims").mkdir(parents=True, exist_ok=True)
        (build.EXECUTED / "data" / "claims" / f"{chapter.slug}.json").write_text(json.dumps(ledger))
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "figure-01.png").write_bytes(b"png of " + chapter.slug.encode())
        return output

    monkeypatch.setattr(build, "run_chapter", fake_run)
    lines = []

    def run_build():
        executions.clear()
        lines.clear()
        build.build_book(render=False, log=lines.append)
        return list(executions), list(lines)

    return tmp_path, run_build


def test_second_build_executes_nothing_and_says_so_per_chapter(book):
    root, run_build = book
    first, lines = run_build()
    assert first == ["alpha", "beta", "across", "shipped"]
    assert [line.split()[1:3] for line in lines] == [[slug, "executed"] for slug in first]
    assert all("left" in line for line in lines)
    executed = {path: path.read_bytes() for path in (root / "_build" / "executed").rglob("*") if path.is_file()}
    second, lines = run_build()
    assert second == []
    assert [line.split()[2] for line in lines] == ["cached"] * 4
    assert {path: path.read_bytes() for path in (root / "_build" / "executed").rglob("*") if path.is_file()} == executed
    assert (root / "_build" / "executed" / "figures" / "alpha" / "figure-01.png").read_bytes() == b"png of alpha"


def test_touching_a_study_reexecutes_its_chapter_and_what_imports_it_not_the_others(book):
    root, run_build = book
    run_build()
    with open(root / "ihcore" / "alpha" / "runs.py", "a") as file:
        file.write("# changed\n")
    assert run_build()[0] == ["alpha", "across"]  # across imports alpha; beta does not (the registry is not followed)
    with open(root / "ihcore" / "spine" / "train.py", "a") as file:
        file.write("# changed\n")
    assert run_build()[0] == ["alpha", "beta", "across"]  # beta's deferred import counts


@pytest.mark.parametrize("change", ["notebook", "requirements", "registry"])
def test_notebook_requirements_and_registry_changes_reexecute(book, change):
    root, run_build = book
    run_build()
    path = {"notebook": root / "chapters" / "beta.ipynb", "requirements": root / "requirements.txt",
            "registry": root / "ihcore" / "book" / "chapters.py"}[change]
    if change == "notebook":
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.append(new_code_cell("print(2)"))
        nbformat.write(notebook, path)
    else:
        path.write_text(path.read_text() + "# changed\n")
    expected = {"notebook": ["beta"], "requirements": ["alpha", "beta", "across", "shipped"],
                "registry": ["alpha", "beta"]}
    assert run_build()[0] == expected[change]


def test_a_chapter_reading_ledgers_reexecutes_when_one_changes(book):
    root, run_build = book
    run_build()
    (root / "ihcore" / "beta" / "runs.py").write_text("def run():\n    return 2\n")  # beta's ledger changes
    assert run_build()[0] == ["beta", "across"]


def test_a_chapter_reading_shipped_results_reexecutes_when_they_change(book):
    root, run_build = book
    run_build()
    (root / "data" / "shipped" / "beta-sweep.json").write_text('{"runs": []}')
    assert run_build()[0] == ["shipped"]


def test_other_parameters_get_another_key(book):
    chapter = build.CHAPTERS["alpha"]
    assert build.chapter_key(chapter, {})[0] == build.chapter_key(chapter, {"x": 1})[0]
    assert build.chapter_key(chapter, {})[0] != build.chapter_key(chapter, {"x": 2})[0]


def test_an_interrupted_entry_is_not_left_half_written(book, monkeypatch):
    root, run_build = book
    real_rename = os.rename

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(build.os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_build()
    monkeypatch.setattr(build.os, "rename", real_rename)
    assert [p for p in (root / "_build" / "cache").rglob("*") if p.is_dir() and p.parent.name == "alpha"] == []
    # A build killed outright (no clean-up) leaves a partial folder: ignored, then removed.
    partial = root / "_build" / "cache" / "alpha" / ".partial-abc-1"
    partial.mkdir(parents=True)
    assert run_build()[0] == ["alpha", "beta", "across", "shipped"]
    assert not partial.exists()


def test_dependencies_of_the_real_chapters_follow_their_imports():
    def files(slug):
        return {str(path.relative_to(ROOT)) for path in build.source_dependencies(ROOT / CHAPTERS[slug].notebook)}

    from_scratch, musat, across = files("from-scratch"), files("musat"), files("across")
    assert {"ihcore/spine/transformer.py", "ihcore/spine/train.py", "ihcore/book/chapters.py"} <= from_scratch
    assert not any(name.startswith(("ihcore/musat", "ihcore/wang", "ihcore/singh")) for name in from_scratch)
    assert "ihcore/musat/emergence.py" in musat and "ihcore/wang/six_parameter.py" not in musat
    assert {"ihcore/musat/__init__.py", "ihcore/singh/subcircuits.py"} <= across  # across imports the studies


def test_a_real_kernel_writes_figure_files_and_no_tcp_warning(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(build, "BOOK_ROOT", tmp_path)
    monkeypatch.setattr(build, "EXECUTED", tmp_path / "_build" / "executed")
    code = "import matplotlib.pyplot as plt\nfrom ihcore.spine import plots\nplots.use_style()\nplt.plot([1, x])"
    notebook = new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": ["parameters"]}), new_code_cell(code)],
                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                     "language": "python"}})
    (tmp_path / "chapters").mkdir()
    nbformat.write(notebook, tmp_path / "chapters" / "toy.ipynb")
    chapter = Chapter("toy", "chapters/toy.ipynb", "Toy", ParameterSpec((Parameter("x", int, 1, "k", 0, 9),)))
    output = build.run_chapter(chapter, {"x": 3}, figures=tmp_path / "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["figure-01.png", "figure-01.svg"]
    assert (tmp_path / "figures" / "figure-01.svg").read_text().lstrip().startswith("<?xml")
    assert any("image/png" in o.get("data", {}) for o in nbformat.read(output, as_version=4).cells[-1].outputs)
    assert "without encryption" not in capfd.readouterr().err


def test_the_time_left_counts_only_what_will_execute(book):
    root, run_build = book
    run_build()
    for meta in (root / "_build" / "cache").glob("*/*/meta.json"):  # as if each execution had taken 30 s
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "seconds": 30.0}))
    assert [line.split("about")[1] for line in run_build()[1]] == [" 0.0 s left"] * 4  # everything cached
    with open(root / "ihcore" / "alpha" / "runs.py", "a") as file:
        file.write("# changed\n")
    lines = run_build()[1]
    assert lines[0].split()[1:3] == ["alpha", "executed"] and lines[0].endswith("about 30 s left")  # across is left
    assert lines[1].split()[1:3] == ["beta", "cached"] and lines[1].endswith("about 30 s left")
