"""Musat et al. 2025: the minimal model's 19-dimensional subspace, its reduced models and the order γ3 → β2 → α3.

Imports only the spine.
"""
