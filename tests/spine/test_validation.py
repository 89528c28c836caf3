"""The one message format for a refused value, alone or for every bad field of a configuration."""

from dataclasses import dataclass

import pytest

from ihcore.spine.validation import ParameterError, problem, refuse, refuse_invalid


@dataclass
class Toy:
    n: int
    lr: float


def test_refuse_names_the_parameter_the_value_and_the_valid_range():
    assert problem("n_pairs", 0, "an integer >= 1") == "n_pairs = 0 is invalid: expected an integer >= 1"
    with pytest.raises(ParameterError, match=r"^prototypes = 'x' is invalid: expected one of"):
        refuse("prototypes", "x", "one of ('lowrank', 'isotropic')")


def test_refuse_invalid_lists_every_bad_field_and_passes_good_ones():
    with pytest.raises(ParameterError) as error:
        refuse_invalid(Toy(0, -1.0), {"n": (False, "an integer >= 1"), "lr": (False, "a number > 0")})
    assert str(error.value) == "Toy: n = 0 is invalid: expected an integer >= 1; lr = -1.0 is invalid: expected a number > 0"
    refuse_invalid(Toy(1, 0.1), {"n": (True, "an integer >= 1")})  # no error
