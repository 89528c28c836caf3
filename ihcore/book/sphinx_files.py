"""A Sphinx extension (listed in ``_config.yml``): results a reader can take away, beside the HTML.

When an HTML build finishes, it writes into the output folder

* ``claims.csv`` and ``claims.json``: every claim of every ledger in ``<source>/data/claims/``
  (one CSV row per claim: chapter, id, kind, verdict, median, interval, seeds, rule, ...;
  the JSON holds the ledgers as they are, by chapter);
* ``figures/<notebook>/figure-NN.png`` (and ``.svg``): every figure, in the order its notebook
  shows it. ``make book`` has the kernels write PNG and SVG files (``<source>/figures/``); a
  build of committed notebooks (``jupyter-book build .``) takes the PNG outputs out of the
  notebooks. ``figures/index.html`` lists them.

The footer of every page links to these files (``_config.yml``'s ``extra_footer``).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import shutil
from pathlib import Path

import nbformat

CSV_COLUMNS = ("chapter", "id", "kind", "verdict", "measured", "interval_low", "interval_high", "n_seeds", "rule",
               "partly", "quantity", "statement", "source", "provenance", "figure")


def claims_rows(ledgers: dict[str, dict]) -> list[dict]:
    rows = []
    for chapter, ledger in ledgers.items():
        for claim in ledger.get("claims", []):
            interval = claim.get("interval") or [None, None]
            row = {column: claim.get(column, "") for column in CSV_COLUMNS}
            row.update(chapter=chapter, interval_low=interval[0], interval_high=interval[1],
                       n_seeds=len(claim.get("per_seed") or []) or "")
            rows.append(row)
    return rows


def write_claims(claims: Path, output: Path) -> None:
    ledgers = {path.stem: json.loads(path.read_text()) for path in sorted(claims.glob("*.json"))}
    (output / "claims.json").write_text(json.dumps(ledgers, indent=1, ensure_ascii=False) + "\n")
    with open(output / "claims.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(claims_rows(ledgers))


def write_figures(source: Path, output: Path) -> None:
    target = output / "figures"
    shutil.rmtree(target, ignore_errors=True)
    if (source / "figures").is_dir():
        shutil.copytree(source / "figures", target)
    else:  # committed notebooks: their PNG outputs
        for notebook in sorted((source / "chapters").glob("*.ipynb")):
            images = [output_["data"]["image/png"] for cell in nbformat.read(notebook, as_version=4).cells
                      if cell.cell_type == "code" for output_ in cell.get("outputs", [])
                      if "image/png" in output_.get("data", {})]
            for number, image in enumerate(images, start=1):
                path = target / notebook.stem / f"figure-{number:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(base64.b64decode(image))
    target.mkdir(exist_ok=True)
    files = sorted(path.relative_to(target).as_posix() for path in target.rglob("*") if path.is_file())
    items = "\n".join(f'<li><a href="{html.escape(name)}">{html.escape(name)}</a></li>' for name in files)
    (target / "index.html").write_text(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Figures</title>"
                                       f"</head><body><h1>The book's figures as files</h1><ul>\n{items}\n</ul>"
                                       "</body></html>\n")


def build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, output = Path(app.srcdir), Path(app.outdir)
    write_claims(source / "data" / "claims", output)
    write_figures(source, output)


def setup(app):
    app.connect("build-finished", build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
