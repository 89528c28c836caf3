"""Across the three papers: the map of their vocabularies, Musat's order in Singh's setting, the N² law in the standard model.

Imports the spine and the three studies.
"""
