"""Bad input, refused before any work with one message naming the parameter, its value and the valid range.

The one message format of the book: ``"n_pairs = 0 is invalid: expected an integer >= 1"``.
Chapter parameters (:mod:`ihcore.book.params`) and every study's configuration dataclass
(in ``__post_init__``) use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn


class ParameterError(ValueError):
    """One or more parameter values are invalid; the message names each one."""


def problem(name: str, value, expected: str) -> str:
    """The message for one invalid value: ``"<name> = <value!r> is invalid: expected <expected>"``."""
    return f"{name} = {value!r} is invalid: expected {expected}"


def refuse(name: str, value, expected: str) -> NoReturn:
    """Raise the :class:`ParameterError` of one invalid value."""
    raise ParameterError(problem(name, value, expected))


def refuse_invalid(config: object, rules: Mapping[str, tuple[bool, str]]) -> None:
    """Raise one :class:`ParameterError` naming every field ``name`` of ``config`` whose
    ``rules[name]`` is ``(False, expected)``, prefixed by the config's class name; nothing if all hold."""
    problems = [problem(name, getattr(config, name), expected) for name, (ok, expected) in rules.items() if not ok]
    if problems:
        raise ParameterError(f"{type(config).__name__}: " + "; ".join(problems))
