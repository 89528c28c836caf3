"""Singh et al. 2024: the subcircuits A/B/C of an induction circuit, clamped runs and the three-factor toy model.

Imports only the spine.
"""
