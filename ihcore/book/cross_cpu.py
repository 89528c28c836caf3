"""Would a chapter's checked outputs and verdicts come out the same on another CPU?

The committed notebooks were executed with torch's math libraries pinned to their AVX2 paths
(:mod:`ihcore.spine.reproducibility`), but another CPU can still round differently (another
vendor's MKL paths, another libm), and training amplifies a difference in the 7th digit until
the seeds land differently. :func:`check_chapter` makes the same kind of change on this machine:
it re-executes a chapter at its defaults under :data:`ALTERNATE_CPU_ENVIRONMENT` (ATen's own
dispatch, the best instruction set the CPU has, and MKL's ``COMPATIBLE`` path) into
``_build/cross-cpu/`` and compares the result with the committed notebook and ledger:

* the text outputs of every ``# NBVAL_CHECK_OUTPUT`` cell (:func:`checked_outputs`: what nbval
  compares), which must be identical;
* every claim: same verdict, an interval that meets the committed one, a single measurement
  within 1% (:func:`ihcore.spine.claims.disagreements`).

``python -m ihcore cross-cpu [CHAPTER ...]`` (``make cross-cpu``: every chapter that trains)
prints one line per chapter and the differences, and exits 1 if there are any. It costs one
execution of each chapter. The test suite has nbval re-execute the from-scratch chapter under the
same setting (``conftest.py``), which makes the same comparisons.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ihcore.book.build import copy_sources, run_chapter
from ihcore.book.chapters import BOOK_ROOT, Chapter
from ihcore.spine.claims import CLAIMS_ENV, disagreements

ALTERNATE_CPU_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "ALL"}
CROSS_CPU = BOOK_ROOT / "_build" / "cross-cpu"
COMMITTED_CLAIMS = BOOK_ROOT / "data" / "claims"


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with ``variables`` set (processes started inside inherit them), then restored."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def checked_outputs(path: Path) -> list[str]:
    """The text outputs (streams and ``text/plain``) of every ``# NBVAL_CHECK_OUTPUT`` cell of
    the notebook at ``path``, in order."""
    outputs = []
    for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code" or "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
            continue
        texts = ["".join(output.get("text", "")) or "".join(output.get("data", {}).get("text/plain", ""))
                 for output in cell["outputs"]]
        outputs.append("".join(texts))
    return outputs


@dataclass(frozen=True)
class CrossCpuReport:
    """What re-executing one chapter under :data:`ALTERNATE_CPU_ENVIRONMENT` changed.

    differing_cells: ``(index among the checked cells, committed text, fresh text)`` per
    checked cell whose output changed; claim_disagreements: one line per claim
    (:func:`ihcore.spine.claims.disagreements`); claims_changed: whether any per-seed or
    measured value changed at all (False: the setting did not reach the chapter's runs)."""

    slug: str
    n_checked: int
    differing_cells: list[tuple[int, str, str]]
    claim_disagreements: list[str]
    claims_changed: bool

    @property
    def agrees(self) -> bool:
        return not self.differing_cells and not self.claim_disagreements

    def summary(self) -> str:
        return (f"{self.slug}: {len(self.differing_cells)} of {self.n_checked} checked cells differ, "
                f"{len(self.claim_disagreements)} claims disagree"
                + ("" if self.claims_changed else " (no measured value changed)"))


def check_chapter(chapter: Chapter, *, destination: Path = CROSS_CPU, cell_timeout: int = 900) -> CrossCpuReport:
    """Re-execute ``chapter`` at its defaults under :data:`ALTERNATE_CPU_ENVIRONMENT` into
    ``destination`` (beside a copy of the sources and the committed ledgers, which chapters that
    read other chapters' claims need; the kernel's claims directory is that copy, whatever
    ``$IHCORE_CLAIMS_DIR`` says) and compare it with the committed notebook and ledger."""
    copy_sources(destination, notebooks=False)
    claims = destination / "data" / "claims"
    shutil.copytree(COMMITTED_CLAIMS, claims, dirs_exist_ok=True)
    with environment({**ALTERNATE_CPU_ENVIRONMENT, CLAIMS_ENV: str(claims)}):  # the kernel inherits it
        fresh = run_chapter(chapter, chapter.parameters.parse({}), cell_timeout=cell_timeout,
                            output=destination / chapter.notebook)
    committed, rerun = checked_outputs(BOOK_ROOT / chapter.notebook), checked_outputs(fresh)
    differing = [(i, a, b) for i, (a, b) in enumerate(zip(committed, rerun)) if a != b]
    if len(committed) != len(rerun):
        differing.append((min(len(committed), len(rerun)), f"{len(committed)} checked cells", f"{len(rerun)}"))
    ledger = f"{chapter.slug}.json"
    values = [[(c["measured"], c["per_seed"]) for c in json.loads((folder / ledger).read_text())["claims"]]
              for folder in (COMMITTED_CLAIMS, claims) if (folder / ledger).exists()]
    return CrossCpuReport(chapter.slug, len(committed), differing,
                          [line for line in disagreements(claims, COMMITTED_CLAIMS) if line.startswith(chapter.slug + "/")],
                          len(values) == 2 and values[0] != values[1])
