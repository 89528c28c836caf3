"""Execute chapters with papermill and build the HTML book with Jupyter Book, re-executing only what changed.

``run_chapter`` executes one notebook, in place or into ``_build/executed/``; the
output appears only when execution succeeds (it is written to a temporary file in the
same folder, then renamed). The kernel talks to papermill over IPC sockets in a private
temporary folder (no TCP port, so no "running over TCP without encryption" warning).
``render_book`` renders a book folder as it is (Jupyter Book never executes notebooks:
``execute_notebooks: off``) to ``<output>/_build/html/`` with warnings as errors;
``copy_sources`` makes such a folder from the book's sources.

``build_book`` executes every chapter at its defaults into ``_build/executed/`` beside a
copy of the sources, then renders that copy to ``_build/html/``, printing one line per
chapter (executed or cached, its time, the estimated time left). **The execution cache**
(``_build/cache/<chapter>/<key>/``) keeps each executed notebook with the claims ledger and
the figure files it wrote. The key (:func:`chapter_key`) hashes what the execution depends on:

* the notebook as committed, and the chapter's parameter values;
* every ``ihcore`` source file the notebook imports, transitively (:func:`source_dependencies`,
  read from the import statements, deferred imports inside functions included; a package's
  ``__init__.py`` counts for every module imported from it). The two registries
  (``ihcore.book.chapters``, ``ihcore.book.sweep_registry``) list every study: their own file
  counts, but their imports are not followed, or every chapter would depend on every study; a
  chapter depends on the studies it imports itself, which hold its configurations and runs;
* the pinned requirements (``requirements.txt``) and the Python version;
* for a chapter that reads other chapters' ledgers (its code calls ``load_claims``: the
  introduction, the cross-paper chapter), the ledgers written before it in this build;
* for a chapter that reads shipped sweep results (its code calls ``load_shipped``), the files in
  ``data/shipped/``.

A chapter whose key has an entry is not executed: its notebook, ledger and figures are copied
from the entry (files whose bytes are unchanged are left alone, so Sphinx's incremental build
re-reads nothing). An entry is written into a ``.partial-*`` folder and renamed into place when
complete, so an interrupted build leaves no half-written entry (partial folders are ignored and
removed by the next build).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import papermill

from ihcore.book.chapters import BOOK_ROOT, CHAPTERS, SHIPPED_DIR, Chapter
from ihcore.spine.reproducibility import pin_cpu_numerics

EXECUTED = BOOK_ROOT / "_build" / "executed"
CACHE = BOOK_ROOT / "_build" / "cache"
BOOK_SOURCES = ("_config.yml", "_toc.yml")
PINNED_REQUIREMENTS = ("requirements.txt",)
SHIPPED = SHIPPED_DIR.relative_to(BOOK_ROOT)  # shipped sweep results (ihcore.book.sweeps.load_shipped)
VOLATILE_METADATA = ("papermill", "execution")
# Modules whose imports the dependency scan does not follow (see the module docstring).
REGISTRIES = ("ihcore.book.chapters", "ihcore.book.sweep_registry")
FIGURES_ENV = "IHCORE_FIGURES_DIR"  # where the kernel writes each figure as PNG and SVG (ihcore.spine.plots)
KEPT_ENTRIES = 3  # cache entries kept per chapter (the newest)
UNTIMED_ESTIMATE_S = 120.0  # the estimate for a chapter never executed here


def run_chapter(chapter: Chapter, values: dict, *, in_place: bool = False, cell_timeout: int = 900,
                figures: Path | None = None, output: Path | None = None) -> Path:
    """Execute ``chapter``'s notebook with parameter ``values`` (validated by the caller).

    Writes ``<root>/<notebook>`` when ``in_place``, else ``output`` (default
    ``_build/executed/<notebook>``). The kernel runs in the output's folder, so the chapter's
    claims go to the ``data/claims`` beside it. Progress bars are turned off in executed
    notebooks. With ``figures``, every figure the chapter shows is also written there as PNG
    and SVG.
    """
    from jupyter_client.manager import KernelManager

    source = BOOK_ROOT / chapter.notebook
    output = source if in_place else output or EXECUTED / chapter.notebook
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial.ipynb")
    os.environ["IHCORE_PROGRESS"] = "0"  # the kernel inherits this process's environment
    if figures is not None:
        os.environ[FIGURES_ENV] = str(figures)
    pin_cpu_numerics()
    sockets = tempfile.mkdtemp(prefix="ihcore-kernel-")
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
    try:
        papermill.execute_notebook(
            source, partial, parameters=values, kernel_name="python3", cwd=output.parent,
            progress_bar=False, execution_timeout=cell_timeout, km=kernel,
        )
        strip_volatile_metadata(partial)
        os.replace(partial, output)
    finally:
        os.environ.pop(FIGURES_ENV, None)
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
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
    """Copy the book's configuration and ``chapters/`` into ``destination`` (created, or updated).

    With ``notebooks`` the committed, already-executed notebooks come along; without, only
    the rest of ``chapters/`` does, for ``run_chapter`` to write executed notebooks there.
    Files keep their modification times, so an unchanged source stays unchanged for Sphinx.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for name in BOOK_SOURCES:
        shutil.copy2(BOOK_ROOT / name, destination / name)
    ignored = (".*",) if notebooks else ("*.ipynb", ".*")
    shutil.copytree(BOOK_ROOT / "chapters", destination / "chapters", ignore=shutil.ignore_patterns(*ignored),
                    dirs_exist_ok=True)
    return destination


def render_book(source: Path, output: Path, *, quiet: bool = False) -> Path:
    """Render the book folder ``source`` to ``<output>/_build/html/``; returns index.html.

    ``jupyter-book build -W -n --keep-going``: any Sphinx warning fails the build
    (``CalledProcessError``) after every page was tried. With ``quiet`` its output is
    captured and written to stderr only when it fails.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(source), "--path-output", str(output), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, check=False, capture_output=quiet, text=True)
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout + result.stderr)
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
    return Path(output) / "_build" / "html" / "index.html"


# --- what a chapter's execution depends on ---------------------------------------------------------


def notebook_code(path: Path) -> str:
    """The code cells of a notebook, IPython magics and shell lines dropped, as one Python source."""
    notebook = nbformat.read(path, as_version=4)
    lines = [line for cell in notebook.cells if cell.cell_type == "code" for line in cell.source.splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def imported_names(source: str, package: str = "") -> set[str]:
    """Every module name ``source`` imports, and ``module.name`` for each ``from module import name``.

    Relative imports are resolved against ``package``. Imports inside functions count too.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell that is not plain Python: fall back on the import lines
        return set(re.findall(r"^\s*(?:from|import)\s+(ihcore[\w.]*)", source, flags=re.MULTILINE))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str, root: Path) -> Path | None:
    """The source file of module ``name`` under ``root`` (the folder holding ``ihcore/``), or None."""
    path = root.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def source_dependencies(notebook: Path, root: Path | None = None) -> list[Path]:
    """The ``ihcore`` source files a notebook imports, transitively (see the module docstring).

    ``root``: the folder holding ``ihcore/`` (default: the book's root)."""
    root = BOOK_ROOT if root is None else root
    pending = [name for name in imported_names(notebook_code(notebook)) if name.split(".")[0] == "ihcore"]
    seen: set[str] = set()
    files: set[Path] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # importing a.b.c runs a and a.b
        path = module_file(name, root)
        if path is None:  # ``from module import attribute``: not a module
            continue
        files.add(path)
        if name in REGISTRIES:
            continue
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        pending.extend(n for n in imported_names(path.read_text(), package) if n.split(".")[0] == "ihcore")
    return sorted(files)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reads_ledgers(notebook: Path) -> bool:
    """Whether the chapter's output depends on other chapters' claims ledgers."""
    return "load_claims" in notebook_code(notebook)


def ledger_digests(folder: Path) -> dict[str, str]:
    """File name -> digest of every ledger in ``folder``."""
    return {path.name: _digest(path.read_bytes()) for path in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def chapter_key(chapter: Chapter, values: dict, *, root: Path | None = None,
                ledgers: Path | dict[str, str] | None = None) -> tuple[str, dict]:
    """(key, what it hashes) of executing ``chapter`` with ``values`` (the parameters not given take
    their defaults). ``ledgers``: the folder of the ledgers written so far in this build (or their
    :func:`ledger_digests`)."""
    root = BOOK_ROOT if root is None else root
    notebook = root / chapter.notebook
    parameters = {p.name: p.default for p in chapter.parameters.parameters} | dict(values)
    parts = {
        "notebook": _digest(notebook.read_bytes()),
        "parameters": json.dumps(parameters, sort_keys=True, default=repr),
        "sources": {str(path.relative_to(root)): _digest(path.read_bytes())
                    for path in source_dependencies(notebook, root)},
        "requirements": {name: _digest((root / name).read_bytes()) for name in PINNED_REQUIREMENTS
                         if (root / name).is_file()},
        "python": platform.python_version(),
    }
    if "load_shipped" in notebook_code(notebook):  # shipped sweep results are data the chapter reads
        parts["shipped"] = {path.name: _digest(path.read_bytes()) for path in sorted((root / SHIPPED).glob("*.json"))}
    if ledgers is not None and reads_ledgers(notebook):
        digests = ledger_digests(ledgers) if isinstance(ledgers, Path) else ledgers
        parts["ledgers"] = {name: digest for name, digest in sorted(digests.items()) if name != f"{chapter.slug}.json"}
    return _digest(json.dumps(parts, sort_keys=True).encode())[:20], parts


# --- the cache ---------------------------------------------------------------------------------------


def _replace_if_changed(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless it already holds the same bytes (its time then stays)."""
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copy2(source, temporary)
    os.replace(temporary, target)


def _sync_folder(source: Path, target: Path) -> None:
    """Make ``target`` hold exactly ``source``'s files (unchanged ones untouched)."""
    names = {path.relative_to(source) for path in source.rglob("*") if path.is_file()} if source.is_dir() else set()
    if target.is_dir():
        for path in [p for p in target.rglob("*") if p.is_file()]:
            if path.relative_to(target) not in names:
                path.unlink()
    for name in names:
        _replace_if_changed(source / name, target / name)


def store_entry(entry: Path, notebook: Path, ledger: Path | None, figures: Path, seconds: float, parts: dict) -> None:
    """Write a cache entry atomically: into a partial folder beside it, renamed into place when complete."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.parent / f".partial-{entry.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        shutil.copy2(notebook, partial / "notebook.ipynb")
        if ledger is not None and ledger.is_file():
            shutil.copy2(ledger, partial / "ledger.json")
        if figures.is_dir():
            shutil.copytree(figures, partial / "figures")
        (partial / "meta.json").write_text(json.dumps({"seconds": seconds, "time": time.time(), "key": parts},
                                                      indent=1))
        if entry.exists():  # another build stored the same key meanwhile
            shutil.rmtree(partial)
        else:
            os.rename(partial, entry)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    older = sorted((p for p in entry.parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in older[KEPT_ENTRIES:]:
        shutil.rmtree(stale, ignore_errors=True)


def newest_entry(slug: str) -> Path | None:
    """The chapter's most recently used cache entry, if any."""
    folder = CACHE / slug
    entries = sorted((p.parent for p in folder.glob("[!.]*/meta.json")), key=lambda p: p.stat().st_mtime) \
        if folder.is_dir() else []
    return entries[-1] if entries else None


def seconds_left(chapters: list[Chapter], ledgers: dict[str, str]) -> float:
    """Estimated execution time of ``chapters`` (in build order) given the ledgers written so far.

    A chapter with an entry for its key costs nothing; another costs its last execution time (or
    :data:`UNTIMED_ESTIMATE_S`). Each is expected to write the ledger of its entry (or of its newest
    entry: a re-execution usually reproduces it), which later ledger readers see.
    """
    predicted, left = dict(ledgers), 0.0
    for chapter in chapters:
        entry = CACHE / chapter.slug / chapter_key(chapter, {}, ledgers=predicted)[0]
        if not entry.is_dir():
            newest = newest_entry(chapter.slug)
            left += json.loads((newest / "meta.json").read_text())["seconds"] if newest else UNTIMED_ESTIMATE_S
            entry = newest
        if entry is not None and (entry / "ledger.json").is_file():
            predicted[f"{chapter.slug}.json"] = _digest((entry / "ledger.json").read_bytes())
    return left


def remove_partial_entries() -> None:
    for partial in CACHE.glob("*/.partial-*") if CACHE.is_dir() else []:
        shutil.rmtree(partial, ignore_errors=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def build_book(cell_timeout: int = 900, *, log: Callable[[str], None] = print, render: bool = True,
               force: bool = False) -> Path:
    """Execute (or take from the cache) every chapter at its defaults, then render the HTML book.

    Logs one line per chapter. ``force`` re-executes every chapter (and refreshes its entry).
    Returns index.html (with ``render=False``, the executed folder).
    """
    remove_partial_entries()
    copy_sources(EXECUTED, notebooks=False)
    ledgers = EXECUTED / "data" / "claims"
    for stale in ledgers.glob("*.json") if ledgers.is_dir() else []:
        stale.unlink()  # each chapter sees only the ledgers written before it in this build, as in a first build
    chapters = list(CHAPTERS.values())
    for index, chapter in enumerate(chapters):
        key, parts = chapter_key(chapter, {}, ledgers=ledgers)
        entry = CACHE / chapter.slug / key
        figures = EXECUTED / "figures" / Path(chapter.notebook).stem
        ledger = ledgers / f"{chapter.slug}.json"
        start = time.perf_counter()
        if force and entry.is_dir():
            shutil.rmtree(entry)
        if entry.is_dir():
            status = "cached"
            _replace_if_changed(entry / "notebook.ipynb", EXECUTED / chapter.notebook)
            if (entry / "ledger.json").is_file():
                _replace_if_changed(entry / "ledger.json", ledger)
            _sync_folder(entry / "figures", figures)
            os.utime(entry)  # the newest entries are the ones kept
        else:
            status = "executed"
            with tempfile.TemporaryDirectory(prefix="ihcore-figures-") as written:
                output = run_chapter(chapter, {}, cell_timeout=cell_timeout, figures=Path(written))
                seconds = time.perf_counter() - start
                store_entry(entry, output, ledger if ledger.is_file() else None, Path(written), seconds, parts)
                _sync_folder(Path(written), figures)
        elapsed = time.perf_counter() - start
        left = seconds_left(chapters[index + 1:], ledger_digests(ledgers))
        log(f"[{index + 1}/{len(chapters)}] {chapter.slug:<14} {status:<8} {_duration(elapsed):>8}   "
            f"about {_duration(left)} left")
    if not render:
        return EXECUTED
    start = time.perf_counter()
    index_html = render_book(EXECUTED, BOOK_ROOT, quiet=True)
    log(f"rendered the book in {_duration(time.perf_counter() - start)}")
    return index_html
