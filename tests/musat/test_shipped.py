"""The Musat chapter's shipped sweeps load, and hold exactly their sweep's configurations at the chapter's defaults."""

import pytest

from ihcore.book.sweep_registry import SWEEPS
from ihcore.book.sweeps import load_shipped

SHIPPED = ("musat-reference", "musat-diagnosis", "musat-theorem2", "musat-stress")


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_sweep_holds_its_configurations_at_the_chapters_defaults(name):
    sweep = SWEEPS[name]
    p = sweep.parameters({})
    shipped = load_shipped(name, p)  # raises ValueError if the configurations or parameters differ
    assert len(shipped["runs"]) == len(sweep.configs(p))
    assert shipped["provenance"]["commands"][0].startswith(f"python -m ihcore sweep {name}")


def test_the_reference_runs_keep_no_weights():
    assert all("weights" not in run["result"] for run in load_shipped("musat-reference")["runs"])
