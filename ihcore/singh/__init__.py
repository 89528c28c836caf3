"""Singh et al. 2024: the subcircuits A/B/C of an induction circuit, clamped runs and the three-factor toy model.

The study's defaults, defined once: :class:`SinghSetting` (the paper's setting as this book
runs it: task, model, training of the unclamped baseline), :class:`ClampedRunConfig` (a run
under a clamp condition, built on it) and :class:`ToyConfig` (the toy model). Imports only the spine.
"""

from ihcore.singh.subcircuits import ClampedRunConfig, SinghSetting
from ihcore.singh.toy_model import ToyConfig

__all__ = ["ClampedRunConfig", "SinghSetting", "ToyConfig"]
