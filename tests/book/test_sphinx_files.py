"""The files a reader takes away from the HTML book: the claims table as CSV and JSON, every figure as a file."""

import base64
import csv
import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from ihcore.book import sphinx_files

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_claims_become_one_csv_row_each_and_the_json_keeps_the_ledgers(tmp_path):
    claims = tmp_path / "claims"
    claims.mkdir()
    claim = {"id": "c1", "kind": "check", "verdict": "reproduced", "measured": 1.0, "interval": [0.5, 1.0],
             "per_seed": [1, 1, 0.5, 1, 1], "rule": "≥ 0.5", "statement": "A, with a comma"}
    (claims / "toy.json").write_text(json.dumps({"chapter": "toy", "parameters": {}, "claims": [claim]}))
    sphinx_files.write_claims(claims, tmp_path)
    rows = list(csv.DictReader((tmp_path / "claims.csv").read_text(encoding="utf-8").splitlines()))
    assert [(r["chapter"], r["id"], r["interval_low"], r["interval_high"], r["n_seeds"], r["statement"]) for r in rows] \
        == [("toy", "c1", "0.5", "1.0", "5", "A, with a comma")]
    assert json.loads((tmp_path / "claims.json").read_text())["toy"]["claims"] == [claim]


def test_figures_come_from_the_kernels_files_or_else_from_the_notebooks(tmp_path):
    source, output = tmp_path / "source", tmp_path / "out"
    (source / "chapters").mkdir(parents=True)
    output.mkdir()
    image = {"image/png": base64.b64encode(PNG).decode()}
    cells = [new_code_cell("plot()", outputs=[new_output("display_data", data=image)]) for _ in range(2)]
    nbformat.write(new_notebook(cells=cells), source / "chapters" / "toy.ipynb")
    sphinx_files.write_figures(source, output)
    assert sorted(p.name for p in (output / "figures" / "toy").iterdir()) == ["figure-01.png", "figure-02.png"]
    assert (output / "figures" / "toy" / "figure-02.png").read_bytes() == PNG
    assert 'href="toy/figure-01.png"' in (output / "figures" / "index.html").read_text()
    (source / "figures" / "toy").mkdir(parents=True)  # what make book's kernels wrote: PNG and SVG
    for suffix in ("png", "svg"):
        (source / "figures" / "toy" / f"figure-01.{suffix}").write_text(suffix)
    sphinx_files.write_figures(source, output)
    assert sorted(p.name for p in (output / "figures" / "toy").iterdir()) == ["figure-01.png", "figure-01.svg"]
