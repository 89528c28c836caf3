"""Shared test set-up at the repository root, loaded by every pytest run here (tests and notebooks).

Notebooks re-executed by nbval write their claims ledgers to a temporary directory, not to
the committed data/claims/, and show no progress bars (tqdm's stderr would break nbval's
comparisons). Kernels inherit these variables from the pytest process, as they do the
pinned instruction sets of :mod:`ihcore.spine.reproducibility`, set before torch is imported.

At the end of the session, every ledger the re-executed notebooks wrote is compared with
the committed one (:func:`ihcore.spine.claims.disagreements`: the same verdict, an interval
that meets the committed one); a disagreement fails the run.

nbval re-executes the from-scratch notebook (five trained seeds) under another instruction-set
setting (:data:`ihcore.book.cross_cpu.ALTERNATE_CPU_ENVIRONMENT`: ATen's own dispatch and MKL's
``COMPATIBLE`` path, where the committed run was pinned to AVX2): its trained weights then differ
from the committed run's in the 6th to 7th digit, as on another CPU, so nbval's comparison of its
checked cells and the ledger comparison at the end are the cross-CPU check (``make cross-cpu`` runs it
on every chapter), at the cost of one execution.

``make test`` spreads the files over two workers, a file at a time, in collection order
(``--dist loadfile --no-loadscope-reorder``): the files that take longest are collected first
(:data:`LONGEST_FIRST`), so the two workers finish close together.
"""

import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

from ihcore.spine.reproducibility import pin_cpu_numerics

pin_cpu_numerics()

import pytest
import torch  # noqa: E402  (after the pin: the math libraries read it when first used)

from ihcore.book.chapters import FROM_SCRATCH
from ihcore.book.cross_cpu import ALTERNATE_CPU_ENVIRONMENT, environment

ROOT = Path(__file__).parent
ANOTHER_CPU_NOTEBOOK = ROOT / FROM_SCRATCH.notebook

# The slowest files, slowest first (measured on 2 cores: about 400, 210, 170, 115 and 95 s;
# every other file takes under 30 s): a worker that finishes one takes the next.
LONGEST_FIRST = (
    "chapters/singh.ipynb", "chapters/across.ipynb", "chapters/wang.ipynb", "chapters/musat.ipynb",
    "chapters/from_scratch.ipynb",
)


def pytest_configure(config):
    os.environ.setdefault("IHCORE_CLAIMS_DIR", tempfile.mkdtemp(prefix="ihcore-claims-"))
    os.environ["IHCORE_PROGRESS"] = "0"
    torch.set_num_threads(1)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    # A stable sort: the other files, and each file's items, keep their order.
    items.sort(key=lambda item: rank.get(item.path.relative_to(ROOT).as_posix(), len(rank)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """A notebook's kernel starts in its first cell's set-up and inherits this process's environment:
    the from-scratch notebook's starts under :data:`ALTERNATE_CPU_ENVIRONMENT`."""
    with environment(ALTERNATE_CPU_ENVIRONMENT) if item.path == ANOTHER_CPU_NOTEBOOK else nullcontext():
        return (yield)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller compares once
        return
    from ihcore.spine.claims import disagreements

    problems = disagreements(os.environ["IHCORE_CLAIMS_DIR"], Path(__file__).parent / "data" / "claims")
    if problems:
        print("\nre-executed claims that disagree with data/claims/ (verdict, or median outside the committed "
              "interval):\n  " + "\n  ".join(problems))
        session.exitstatus = 1
