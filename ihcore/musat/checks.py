"""Refusing a bad configuration field, with the one message format of the book.

Each configuration dataclass of the study checks its fields in ``__post_init__`` with
:func:`refuse_invalid`, which raises :class:`ihcore.spine.validation.ParameterError` naming
every invalid field, its value and what was expected, e.g.
``"MinimalRunConfig: n_pairs = 0 is invalid: expected an integer >= 1"``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ihcore.spine.validation import ParameterError


def refuse_invalid(config: object, rules: Mapping[str, tuple[bool, str]]) -> None:
    """Raise :class:`ParameterError` for every field ``name`` of ``config`` whose ``rules[name]``
    is ``(False, expected)``; ``expected`` says what a valid value is."""
    problems = [f"{name} = {getattr(config, name)!r} is invalid: expected {expected}"
                for name, (ok, expected) in rules.items() if not ok]
    if problems:
        raise ParameterError(f"{type(config).__name__}: " + "; ".join(problems))
