"""The rendered book in a browser: every chapter's math is typeset and its figures show.

The book is rendered once (module fixture) from a copy of the committed, already-executed
notebooks into a temporary folder with ``ihcore.book.build.render_book`` (warnings fail it). Each
page of the book (the chapter registry, which tests/book/test_chapters.py holds equal to
_toc.yml) is opened once in headless Chromium, offline, which prints the DOM after
MathJax ran and takes a screenshot; ``ihcore.book.page_checks`` judges both. Screenshots are
also copied to _build/screenshots/ for a person to look at. Without Chromium these tests
skip; the checks themselves are tested in tests/book/test_page_checks.py.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from ihcore.book.build import copy_sources, render_book
from ihcore.book.chapters import CHAPTERS
from ihcore.book.page_checks import notebook_figures, page_problems, screenshot_problems

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1280, 2000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed: `apt-get install -y chromium` (.ci/run does it)")


def browse(page: Path, screenshot: Path, profile: Path) -> str:
    """Open ``page`` in headless Chromium; write its screenshot and return its DOM after scripts ran."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no host resolves: the page cannot use the network
        f"--user-data-dir={profile}", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=20000",  # virtual ms for MathJax to run
        f"--screenshot={screenshot}", "--dump-dom", page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)  # a hang guard
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """The book rendered from the committed notebooks; returns its HTML folder."""
    folder = tmp_path_factory.mktemp("book")
    index = render_book(copy_sources(folder / "source", notebooks=True), folder, quiet=True)
    return index.parent


@pytest.fixture(scope="module", params=list(CHAPTERS.values()), ids=lambda chapter: chapter.slug)
def visited(request, html, tmp_path_factory):
    """One chapter's page as Chromium left it: (chapter, page, DOM, screenshot)."""
    chapter = request.param
    page = html / Path(chapter.notebook).with_suffix(".html")
    folder = tmp_path_factory.mktemp(chapter.slug)
    screenshot = folder / f"{chapter.slug}.png"
    dom = browse(page, screenshot, folder / "profile")
    if screenshot.is_file():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(screenshot, SCREENSHOTS / screenshot.name)
    return chapter, page, dom, screenshot


def test_math_is_typeset_and_every_figure_shows(visited, html):
    chapter, page, dom, _ = visited
    assert page_problems(dom, page, html, figures=notebook_figures(ROOT / chapter.notebook)) == []


def test_screenshot_is_a_real_render(visited):
    *_, screenshot = visited
    assert screenshot_problems(screenshot, WIDTH, HEIGHT) == []


def test_the_browser_checks_flag_a_broken_page(tmp_path):
    """A hand-made page with raw TeX (no MathJax) and a missing figure fails in the real browser too."""
    (tmp_path / "chapters").mkdir()
    page = tmp_path / "chapters" / "broken.html"
    page.write_text('<html><body><p>The law \\(N^2\\).</p><div class="math">\\[L = 1\\]</div>'
                    '<div class="cell_output"><img src="../_images/missing.png"></div></body></html>')
    dom = browse(page, tmp_path / "broken.png", tmp_path / "profile")
    problems = page_problems(dom, page, tmp_path, figures=1)
    assert sum("raw TeX" in problem for problem in problems) == 2
    assert "1 of 1 math elements not typeset by MathJax" in problems
    assert any("missing.png" in problem for problem in problems)
    assert screenshot_problems(tmp_path / "broken.png", WIDTH, HEIGHT) == []
