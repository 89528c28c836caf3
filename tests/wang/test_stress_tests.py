"""ihcore.wang.stress_tests: the stress-test rows, the transformer stress runs and their configuration."""

import pytest

from ihcore.book.chapters import WANG
from ihcore.spine.validation import ParameterError
from ihcore.wang import six_parameter, stress_tests
from ihcore.wang.mixed_target import DiscreteMixedTarget, MixedTarget
from ihcore.wang.six_parameter import SixParameterConfig
from ihcore.wang.stress_tests import TransformerStressConfig
from tests.wang.helpers import LAZY, SMALL, SWITCH, T


def test_phase_row_reads_the_phase_structure():
    row = stress_tests.phase_row("synthetic", T, {"r_G": LAZY, "r_I": SWITCH, "loss": 1 - 0.9 * SWITCH}, 0.5)
    assert row["4-gram first"] and row["plateau"] and row["sharper switch"]
    assert row["final / initial loss"] == pytest.approx(0.1, rel=1e-3)
    swapped = stress_tests.phase_row("swapped", T, {"r_G": SWITCH, "r_I": LAZY, "loss": LAZY}, 0.5)
    assert not swapped["4-gram first"] and not swapped["plateau"] and not swapped["sharper switch"]
    table = stress_tests.rows_markdown([row, swapped])
    assert table.count("\n") == 3 and "✓" in table and "✗" in table and "| synthetic |" in table


def test_a_six_parameter_row_and_its_phase_one_drift():
    result = six_parameter.run(SixParameterConfig(**SMALL), progress=False)
    drift = stress_tests.phase_one_drift(result)
    assert drift["parameter_drift"] > 0 and drift["kernel_drift"] > 0
    row = stress_tests.six_parameter_row("small", result)
    assert row["setting"] == "small" and row["phase-1 kernel drift"] == drift["kernel_drift"]
    assert stress_tests.six_parameter_probe(SixParameterConfig(**SMALL)).shape == (stress_tests.PROBES, 10)


def test_the_chapter_takes_the_transformer_defaults_from_the_config():
    defaults, config = WANG.parameters.defaults(), TransformerStressConfig()
    assert (defaults["transformer_steps"], defaults["transformer_lr"], defaults["transformer_length"],
            defaults["vocabulary"]) == (config.steps, config.lr, config.length, config.vocabulary)
    configs = stress_tests.transformer_configs(WANG.parameters.validate({}))
    assert [c.tokens for c in configs.values()] == ["gaussian", "discrete"]
    gaussian, discrete = configs.values()
    assert gaussian == config and (gaussian.width, discrete.width) == (1, 16)
    assert isinstance(gaussian.task(), MixedTarget) and discrete.task() == DiscreteMixedTarget(16, 16, 0.5, 4.0)


@pytest.mark.parametrize("field, value", [("tokens", "words"), ("alpha", 0.0), ("steps", 0), ("d_model", 7)])
def test_a_bad_transformer_config_value_is_refused_naming_it(field, value):
    with pytest.raises(ParameterError, match=f"{field} = {value!r} is invalid"):
        TransformerStressConfig(**{field: value})


@pytest.mark.parametrize("tokens", ["gaussian", "discrete"])
def test_a_short_transformer_run_gives_a_row(tokens):
    config = TransformerStressConfig(tokens=tokens, length=8, vocabulary=4, steps=20, d_model=8, batch_size=16)
    model, history = stress_tests.train_transformer(config, progress=False)
    assert set(history.checkpoints) >= {0, 20} and {"r_G", "r_I", "r_M", "loss"} <= set(history.values)
    row = stress_tests.transformer_row(tokens, config, model, history)
    assert row["setting"] == tokens and row["phase-1 kernel drift"] >= 0
