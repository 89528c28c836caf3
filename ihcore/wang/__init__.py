"""Wang, Yu, E, Wu 2024: the mixed 4-gram + in-context 2-gram target, the six-parameter model, lazy → plateau → rich.

Imports only the spine.
"""
