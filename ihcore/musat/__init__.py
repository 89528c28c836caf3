"""Musat et al. 2025: the minimal model's 19-dimensional subspace, its reduced models and the order γ3 → β2 → α3.

One kind of run per module, each ``run(config, *, device=None, progress=None) -> dict``:
:mod:`~ihcore.musat.minimal_runs` (:class:`MinimalRunConfig`: the minimal model, full or
reduced), :mod:`~ihcore.musat.flow_runs` (:class:`FlowRunConfig`: the 3-parameter closed
form's gradient flow) and :mod:`~ihcore.musat.standard_runs` (:class:`StandardRunConfig`: the
standard model on the token task). Each config's defaults are the Musat chapter's.

Imports only the spine.
"""

from ihcore.musat.flow_runs import FlowRunConfig
from ihcore.musat.minimal_runs import MinimalRunConfig
from ihcore.musat.standard_runs import StandardRunConfig

__all__ = ["FlowRunConfig", "MinimalRunConfig", "StandardRunConfig"]
