"""Chapter parameters: types, ranges, cross-parameter checks and command-line parsing."""

import math

import pytest

from ihcore.book.params import Parameter, ParameterSpec
from ihcore.spine.validation import ParameterError

STEPS = Parameter("steps", int, 100, "training steps", 1, 1000)
EVAL_EVERY = Parameter("eval_every", int, 10, "steps between evaluations", 1, 1000)
LR = Parameter("lr", float, 1e-3, "learning rate", 1e-6, 1.0)
VERBOSE = Parameter("verbose", bool, True, "print progress")
LABELS = Parameter("labels", str, "fixed", "label scheme", choices=("fixed", "per_sequence"))
SPEC = ParameterSpec(
    (STEPS, EVAL_EVERY, LR, VERBOSE, LABELS),
    checks=((lambda p: p.eval_every <= p.steps, "eval_every must be <= steps"),),
)


@pytest.mark.parametrize(
    "name, value",
    [
        ("steps", True),  # a bool is not an int
        ("steps", 5.0),
        ("steps", "5"),
        ("lr", False),  # nor a number
        ("lr", "0.1"),
        ("verbose", 1),
        ("verbose", "True"),
        ("labels", 1),
    ],
)
def test_value_of_the_wrong_type_is_rejected(name, value):
    with pytest.raises(ParameterError, match=name):
        SPEC.validate({name: value})


@pytest.mark.parametrize("name, value", [("steps", 50), ("lr", 0.5), ("verbose", False), ("labels", "per_sequence")])
def test_value_of_the_right_type_is_accepted(name, value):
    assert getattr(SPEC.validate({name: value}), name) == value


def test_int_is_accepted_for_a_float_and_becomes_float():
    lr = SPEC.validate({"lr": 1}).lr
    assert type(lr) is float and lr == 1.0


@pytest.mark.parametrize(
    "name, value, valid_range",
    [
        ("steps", -5, "an integer in [1, 1000]"),
        ("steps", 1001, "an integer in [1, 1000]"),
        ("lr", 2.0, "a number in [1e-06, 1]"),
        ("lr", math.nan, "a number in [1e-06, 1]"),
        ("labels", "random", "one of 'fixed', 'per_sequence'"),
    ],
)
def test_error_names_the_parameter_the_bad_value_and_the_valid_range(name, value, valid_range):
    with pytest.raises(ParameterError) as error:
        SPEC.validate({name: value})
    assert name in str(error.value) and repr(value) in str(error.value) and valid_range in str(error.value)


@pytest.mark.parametrize("steps", [1, 1000])
def test_range_bounds_are_inclusive(steps):
    assert SPEC.validate({"steps": steps, "eval_every": 1}).steps == steps


def test_every_bad_value_is_listed_in_one_error():
    with pytest.raises(ParameterError) as error:
        SPEC.validate({"steps": 0, "lr": 5.0, "labels": "random"})
    for fragment in ("steps = 0", "lr = 5.0", "labels = 'random'"):
        assert fragment in str(error.value)


def test_failed_cross_parameter_check_raises_its_message():
    with pytest.raises(ParameterError, match="eval_every must be <= steps"):
        SPEC.validate({"steps": 10, "eval_every": 20})


def test_validate_ignores_unrelated_names_and_fills_in_defaults():
    notebook_globals = {"steps": 50, "np": object(), "In": [""], "_": 3}
    assert vars(SPEC.validate(notebook_globals)) == {**SPEC.defaults(), "steps": 50}


@pytest.mark.parametrize(
    "parameter, text, expected",
    [
        (STEPS, "-5", -5),
        (LR, "1e-3", 0.001),
        (LR, "1", 1.0),
        (VERBOSE, "True", True),
        (VERBOSE, "False", False),
        (LABELS, "True", "True"),  # a str parameter keeps the text as it is
    ],
)
def test_parse_turns_command_line_text_into_a_typed_value(parameter, text, expected):
    value = parameter.parse(text)
    assert value == expected and type(value) is type(expected)


def test_spec_parse_returns_only_the_overrides_typed():
    assert SPEC.parse({"lr": "1", "verbose": "False"}) == {"lr": 1.0, "verbose": False}


@pytest.mark.parametrize("overrides, fragment", [({"steps": "-5"}, "steps = -5"), ({"steps": "two"}, "steps = 'two'")])
def test_spec_parse_validates_what_it_parses(overrides, fragment):
    with pytest.raises(ParameterError, match=fragment):
        SPEC.parse(overrides)


def test_spec_parse_rejects_unknown_names_listing_the_valid_ones():
    with pytest.raises(ParameterError) as error:
        SPEC.parse({"stepz": "5"})
    assert "stepz" in str(error.value)
    assert all(name in str(error.value) for name in SPEC.names())


@pytest.mark.parametrize(
    "arguments",
    [
        ("steps", int, 0, "training steps", 1, 1000),
        ("steps", int, True, "training steps"),
        ("labels", str, "random", "label scheme", None, None, ("fixed", "per_sequence")),
    ],
)
def test_invalid_default_is_refused_at_definition(arguments):
    with pytest.raises(ValueError, match="default"):
        Parameter(*arguments)


def test_unsupported_kind_is_refused_at_definition():
    with pytest.raises(TypeError):
        Parameter("sizes", list, [], "layer sizes")


def test_valid_range_shows_large_bounds_exactly():
    assert "2147483647" in Parameter("seed", int, 0, "base seed", 0, 2**31 - 1).valid_range()
