"""The page checks of the browser test flag what they should, on tiny hand-made pages and files."""

import matplotlib.image
import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ihcore.book.page_checks import image_problem, notebook_figures, page_problems, parse_page, screenshot_problems

TYPESET = ('<span class="math notranslate nohighlight">'
           '<mjx-container class="MathJax"><mjx-math></mjx-math></mjx-container></span>')
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'


def page(body: str) -> str:
    return f"<html><head><title>\\(x\\)</title><script>var s = '$$';</script></head><body>{body}</body></html>"


def figure(src: str) -> str:
    return f'<div class="cell_output docutils container"><img alt="" src="{src}"></div>'


@pytest.fixture
def html(tmp_path):
    """A built-HTML folder with a chapter page and figures: good.png, good.svg, empty.png, bad.png."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_images").mkdir()
    rows = np.linspace(0, 1, 12).reshape(3, 4)
    matplotlib.image.imsave(tmp_path / "_images" / "good.png", rows)
    (tmp_path / "_images" / "good.svg").write_bytes(SVG)
    (tmp_path / "_images" / "empty.png").write_bytes(b"")
    (tmp_path / "_images" / "bad.png").write_bytes((tmp_path / "_images" / "good.png").read_bytes()[:30])
    return tmp_path


def test_a_page_with_raw_tex_and_a_broken_image_is_flagged(html):
    dom = page('<p>Inline \\(N^2\\) and display $$x$$ math.</p>'
               '<div class="math notranslate nohighlight">\\[L = 1\\]</div>' + figure("../_images/missing.png"))
    problems = page_problems(dom, html / "chapters" / "bad.html", html, figures=1)
    assert sum("raw TeX" in problem for problem in problems) == 4  # \(, \[ and both $$
    assert "1 of 1 math elements not typeset by MathJax" in problems
    assert any("missing.png" in problem and "missing file" in problem for problem in problems)
    assert len(problems) == 6


def test_a_typeset_page_with_valid_figures_passes(html):
    dom = page(f"<p>Inline {TYPESET}.</p><pre>print('\\\\(not math\\\\) $$')</pre>"
               + figure("../_images/good.png") + figure("../_images/good.svg") + '<img src="../_images/good.png">')
    assert page_problems(dom, html / "chapters" / "good.html", html, figures=2) == []
    parsed = parse_page(dom)
    assert (parsed.math, parsed.typeset, len(parsed.images)) == (1, 1, 3)


@pytest.mark.parametrize("src, reason", [
    ("../_images/empty.png", "empty file"),
    ("../_images/bad.png", "PNG does not decode"),
    ("../../outside.png", "outside the built HTML"),
    ("https://example.org/figure.png", "not a file of the book"),
    ("", "not a file of the book"),
])
def test_each_kind_of_broken_image_is_flagged(html, src, reason):
    problems = page_problems(page(figure(src)), html / "chapters" / "page.html", html, figures=1)
    assert any(reason in problem for problem in problems), problems


def test_math_errors_missing_figures_and_network_resources_are_flagged(html):
    dom = page('<span class="math"><mjx-container><mjx-merror>\\frac</mjx-merror></mjx-container></span>'
               '<script src="https://cdn.example.org/mathjax.js"></script>'
               '<link rel="stylesheet" href="//cdn.example.org/theme.css"><a href="https://example.org">a link</a>')
    assert page_problems(dom, html / "chapters" / "page.html", html, figures=1) == [
        "1 MathJax errors (mjx-merror)",
        "loaded from the network: https://cdn.example.org/mathjax.js",
        "loaded from the network: //cdn.example.org/theme.css",
        "0 figures in cell outputs, but the notebook has 1 image outputs",
    ]


def test_image_problem_accepts_png_and_svg_only(html):
    assert image_problem((html / "_images" / "good.png").read_bytes()) is None
    assert image_problem(SVG) is None
    assert image_problem(b"GIF89a") == "neither a PNG nor an SVG"
    assert "not an SVG" in image_problem(b"<html></html>")


def test_screenshot_of_one_colour_or_the_wrong_size_is_flagged(tmp_path):
    varied, blank = tmp_path / "varied.png", tmp_path / "blank.png"
    matplotlib.image.imsave(varied, np.arange(20.0).reshape(4, 5))
    matplotlib.image.imsave(blank, np.ones((4, 5)))
    assert screenshot_problems(varied, width=5, height=4) == []
    assert screenshot_problems(blank, width=5, height=4) == ["blank.png: a single colour (blank render)"]
    assert screenshot_problems(varied, width=8, height=4) == ["varied.png: 5x4, not 8x4"]
    assert screenshot_problems(tmp_path / "none.png", width=5, height=4) == ["none.png: not a PNG"]


def test_notebook_figures_counts_shown_image_outputs(tmp_path):
    image = new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    text = new_output("stream", text="hello\n")
    notebook = new_notebook(cells=[
        new_markdown_cell("![a picture](x.png)"),
        new_code_cell("plot()", outputs=[image, text, image]),
        new_code_cell("hidden()", outputs=[image], metadata={"tags": ["remove-output"]}),
    ])
    nbformat.write(notebook, tmp_path / "toy.ipynb")
    assert notebook_figures(tmp_path / "toy.ipynb") == 2
