"""Chapter parameters: each has a type and a valid range, checked before any work.

A chapter's notebook keeps raw knobs in its ``parameters`` cell (papermill injects new
values after it); its next cell calls :func:`ihcore.book.notebook.start_chapter`, which runs
:meth:`ParameterSpec.validate` on ``globals()``.
The command line parses ``-p NAME VALUE`` strings with :meth:`ParameterSpec.parse`, so a
bad value fails before a kernel starts.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from ihcore.spine.validation import ParameterError, problem


@dataclass(frozen=True)
class Parameter:
    """A named parameter: ``kind`` is int, float, bool or str; a range or a set of choices.

    ``check``, if given, is a further condition on a value of the right type and range
    that depends on the machine (e.g. whether a CUDA device exists): it returns None, or
    the problem as a message naming the parameter and the value.
    """

    name: str
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool, str):
            raise TypeError(f"parameter {self.name}: kind must be int, float, bool or str")
        if self.problem(self.default) is not None:
            raise ValueError(f"parameter {self.name}: default {self.default!r} is invalid")

    def valid_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is bool:
            return "True or False"
        noun = {int: "an integer", float: "a number", str: "a string"}[self.kind]
        low, high = (f"{bound:g}" if isinstance(bound, float) else str(bound) for bound in (self.low, self.high))
        if self.low is not None and self.high is not None:
            return f"{noun} in [{low}, {high}]"
        if self.low is not None:
            return f"{noun} >= {low}"
        if self.high is not None:
            return f"{noun} <= {high}"
        return noun

    def problem(self, value: Any) -> str | None:
        """None if ``value`` is valid, else a message naming the parameter, value and range."""
        ok_type = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
        }[self.kind]
        in_range = ok_type and (
            (self.choices is None or value in self.choices)
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )
        if in_range:
            return self.check(value) if self.check is not None else None
        return problem(self.name, value, self.valid_range())

    def parse(self, text: str) -> Any:
        """Parse a command-line string into this parameter's kind (not yet range-checked)."""
        if self.kind is str:
            return text
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return value


@dataclass(frozen=True)
class ParameterSpec:
    """The parameters of one chapter, in the order of its ``parameters`` cell."""

    parameters: tuple[Parameter, ...]
    checks: tuple[tuple[Callable[[SimpleNamespace], bool], str], ...] = ()  # (predicate, message) across parameters

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise ParameterError(f"unknown parameter {name!r}; valid: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters}

    def validate(self, values: Mapping[str, Any]) -> SimpleNamespace:
        """Check every parameter's value in ``values`` (missing ones take their default).

        Extra names in ``values`` (e.g. a notebook's other globals) are ignored. Raises
        one :class:`ParameterError` that lists every invalid value, then the first failed
        cross-parameter check.
        """
        chosen = {p.name: values.get(p.name, p.default) for p in self.parameters}
        problems = [p.problem(chosen[p.name]) for p in self.parameters]
        problems = [message for message in problems if message is not None]
        if problems:
            raise ParameterError("; ".join(problems))
        for check, message in self.checks:
            if not check(SimpleNamespace(**chosen)):
                raise ParameterError(message)
        return SimpleNamespace(**{p.name: p.kind(chosen[p.name]) for p in self.parameters})

    def parse(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        """Parse and validate ``NAME -> text`` overrides; returns only the overridden values."""
        unknown = [name for name in overrides if name not in self.names()]
        if unknown:
            raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(self.names())}")
        values = {name: self[name].parse(text) for name, text in overrides.items()}
        self.validate(values)
        return values
