"""Checks of a rendered book page as a browser left it: pure functions over DOM text and files.

The browser test (tests/book/test_browser.py) opens each page of the built book in headless
Chromium, which prints the DOM after the page's scripts ran and takes a screenshot. These
functions judge what came back; each ``*_problems`` function returns a list of problems,
empty when all is well.

- ``page_problems``: the math was typeset (every ``class="math"`` element holds MathJax's
  ``mjx-container``, and there is no ``mjx-merror``), the visible text has no raw TeX
  (``\\(``, ``\\[``, ``$$``, ``\\begin{``), every ``<img>`` is a file inside the built HTML
  that is a valid, non-empty PNG or SVG, no script, stylesheet or image comes from the
  network, and the page shows as many figures in its cell outputs as its notebook has
  image outputs (``notebook_figures``).
- ``screenshot_problems``: the screenshot is a PNG of the requested size, not one colour.

Text inside ``<pre>`` and ``<code>`` is code, not prose, and is not searched for TeX; nor is
what is never shown (``<head>``, ``<script>``, ``<style>``, ...).
"""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import matplotlib.image
import nbformat
import numpy as np

RAW_TEX = ("\\(", "\\[", "$$", "\\begin{")
NOT_PROSE = {"head", "script", "style", "noscript", "template", "pre", "code"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REMOVED_OUTPUT_TAGS = {"remove-cell", "remove-output"}


@dataclass
class Page:
    """What the checks need from a page's DOM."""

    images: list[tuple[str, bool]] = field(default_factory=list)  # (src, inside a cell output)
    math: int = 0  # elements of class "math"
    typeset: int = 0  # of those, how many hold an mjx-container
    math_errors: int = 0  # mjx-merror elements: TeX that MathJax could not read
    remote: list[str] = field(default_factory=list)  # scripts, stylesheets, images from a network
    text: str = ""  # the text a reader sees, code excepted


class _PageParser(HTMLParser):
    """Walks the DOM keeping the open elements: [tag, classes, holds an mjx-container]."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page, self.open, self.text = Page(), [], []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if tag == "img":
            in_output = any("cell_output" in entry[1] for entry in self.open)
            self.page.images.append((attributes.get("src", ""), in_output))
        is_resource = tag in ("img", "script") or (tag == "link" and "stylesheet" in attributes.get("rel", ""))
        url = attributes.get("src") or attributes.get("href") or ""
        if is_resource and (urlsplit(url).scheme in ("http", "https") or url.startswith("//")):
            self.page.remote.append(url)
        self.page.math_errors += tag == "mjx-merror"
        if tag == "mjx-container":
            for entry in self.open:
                entry[2] = True
        if tag not in VOID:
            self.page.math += "math" in classes
            self.open.append([tag, classes, False])

    def handle_startendtag(self, tag, attrs):  # <x/>: opens and closes at once
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        depth = next((d for d in range(len(self.open) - 1, -1, -1) if self.open[d][0] == tag), None)
        if depth is not None:  # an end tag with no open element is ignored, as browsers do
            self.close_from(depth)

    def close_from(self, depth: int) -> None:
        self.page.typeset += sum(held for _, classes, held in self.open[depth:] if "math" in classes)
        del self.open[depth:]

    def handle_data(self, data):
        if not any(entry[0] in NOT_PROSE for entry in self.open):
            self.text.append(data)


def parse_page(dom: str) -> Page:
    """Read a page's DOM (as Chromium's ``--dump-dom`` prints it)."""
    parser = _PageParser()
    parser.feed(dom)
    parser.close()
    parser.close_from(0)
    parser.page.text = "".join(parser.text)
    return parser.page


def raw_tex(text: str) -> list[str]:
    """Each raw TeX delimiter in ``text`` with a little context, as it reads."""
    found = []
    for delimiter in RAW_TEX:
        start = text.find(delimiter)
        while start >= 0:
            found.append(" ".join(text[max(start - 30, 0):start + 40].split()))
            start = text.find(delimiter, start + len(delimiter))
    return found


def image_problem(data: bytes) -> str | None:
    """Why ``data`` is not a valid, non-empty PNG or SVG image, or None when it is one."""
    if not data:
        return "empty file"
    if data.startswith(PNG_SIGNATURE):
        try:
            pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
        except Exception as error:  # any decoder error means a broken image
            return f"PNG does not decode ({error})"
        return None if pixels.shape[0] and pixels.shape[1] else "PNG of no pixels"
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return "neither a PNG nor an SVG"
    return None if root.tag.rsplit("}", 1)[-1] == "svg" else f"XML whose root is <{root.tag}>, not an SVG"


def image_source_problem(src: str, page: Path, html_root: Path) -> str | None:
    """Why the ``<img src>`` of the file ``page`` shows no image from inside ``html_root``."""
    url = urlsplit(src)
    if url.scheme == "data":
        header, _, payload = src.partition(",")
        data = base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
        return image_problem(data)
    if url.scheme not in ("", "file") or url.netloc or not url.path:
        return "not a file of the book"
    path = Path(unquote(url.path)) if url.scheme == "file" else page.parent / unquote(url.path)
    path = path.resolve()
    if not path.is_relative_to(html_root.resolve()):
        return "outside the built HTML"
    if not path.is_file():
        return "missing file"
    return image_problem(path.read_bytes())


def notebook_figures(notebook: Path) -> int:
    """How many image outputs ``notebook`` shows (cells tagged remove-output/-cell show none)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return sum(
        any(kind.startswith("image/") for kind in output.get("data", {}))
        for cell in cells
        if cell.cell_type == "code" and not REMOVED_OUTPUT_TAGS & set(cell.metadata.get("tags", []))
        for output in cell.outputs
    )


def page_problems(dom: str, page: Path, html_root: Path, figures: int) -> list[str]:
    """Everything wrong with the DOM of ``page`` (a file under ``html_root``) that shows ``figures``."""
    parsed = parse_page(dom)
    problems = [f"raw TeX in the text: {snippet!r}" for snippet in raw_tex(parsed.text)]
    if parsed.typeset < parsed.math:
        problems.append(f"{parsed.math - parsed.typeset} of {parsed.math} math elements not typeset by MathJax")
    if parsed.math_errors:
        problems.append(f"{parsed.math_errors} MathJax errors (mjx-merror)")
    problems += [f"loaded from the network: {url}" for url in parsed.remote]
    for src, _ in parsed.images:
        problem = image_source_problem(src, page, html_root)
        if problem:
            problems.append(f"broken image {src[:80]!r}: {problem}")
    shown = sum(in_output for _, in_output in parsed.images)
    if shown != figures:
        problems.append(f"{shown} figures in cell outputs, but the notebook has {figures} image outputs")
    return problems


def screenshot_problems(png: Path, width: int, height: int) -> list[str]:
    """Whether ``png`` is a real render: a valid PNG of ``width`` x ``height``, not one colour."""
    data = png.read_bytes() if png.is_file() else b""
    if not data.startswith(PNG_SIGNATURE):
        return [f"{png.name}: not a PNG"]
    problem = image_problem(data)
    if problem:
        return [f"{png.name}: {problem}"]
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    problems = []
    if pixels.shape[:2] != (height, width):
        problems.append(f"{png.name}: {pixels.shape[1]}x{pixels.shape[0]}, not {width}x{height}")
    if not np.any(pixels != pixels[0, 0]):
        problems.append(f"{png.name}: a single colour (blank render)")
    return problems
