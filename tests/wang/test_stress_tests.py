"""ihcore.wang.stress_tests: the stress-test rows, the transformer stress runs and their configuration."""

import numpy as np
import pytest
import torch

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


def test_transformer_seeds_train_as_one_ensemble_and_each_member_is_its_own_run():
    config = TransformerStressConfig(length=8, vocabulary=4, steps=30, d_model=8, batch_size=16, seed=4)
    configs = stress_tests.seed_configs(config, 3)
    assert [c.seed for c in configs] == [4, 5, 6]
    together = stress_tests.train_transformers(configs, progress=False)
    model, history = stress_tests.train_transformer(configs[1], progress=False)
    ensemble_model, ensemble_history = together[1]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ensemble_model.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ensemble_history["r_I"], history["r_I"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ensemble_history.train_loss, history.train_loss, rtol=1e-4)
    assert not np.allclose(together[0][1].train_loss, together[1][1].train_loss)  # distinct seeds, distinct runs
    assert set(ensemble_history.checkpoints) >= {0, 30}


def test_a_row_over_seeds_counts_marks_and_gives_the_median_with_its_interval():
    nan = float("nan")
    rows = [{"setting": "s", "T_G4": 10.0, "T_IH": t_ih, "4-gram first": k != 1, "plateau ratio": ratio, "plateau": k < 2,
             "sharpness ratio": sharp, "sharper switch": False, "final / initial loss": 0.01 * (k + 1),
             "phase-1 kernel drift": 1.0}
            for k, (t_ih, ratio, sharp) in enumerate([(30.0, 3.0, 0.5), (nan, nan, nan), (20.0, 2.0, 0.7),
                                                      (50.0, 5.0, 0.6), (40.0, 4.0, 0.4)])]
    row = stress_tests.seeds_row("setting", rows)
    assert list(row) == ["setting", "seeds", *list(rows[0])[1:]]
    assert (row["seeds"], row["4-gram first"], row["plateau"], row["sharper switch"]) == (5, "4/5", "2/5", "0/5")
    assert row["plateau ratio"] == "4 [2, inf]" and row["T_IH"] == "40 [20, inf]"  # never switched: infinite
    assert row["sharpness ratio"] == "0.6 [0.4, 0.7]"  # the unreadable one is left out
    assert row["final / initial loss"] == "0.03 [0.01, 0.05]" and row["phase-1 kernel drift"] == "1 [1, 1]"
    single = stress_tests.single_row(rows[0])
    assert list(single) == list(row) and single["seeds"] == 1 and single["T_IH"] == 30.0
    table = stress_tests.rows_markdown([single, row])
    assert "| s | 1 |" in table and "| setting | 5 |" in table and "4/5" in table


def test_values_over_seeds_print_at_most_the_precision_their_interval_supports():
    assert stress_tests.values_text([0.014, 0.104, 0.026, 0.011, 0.004]) == "0.01 [0, 0.10]"  # width 0.1, excludes 0
    assert stress_tests.values_text([1.05370, 1.05372, 1.05374, 1.0537, 1.0538]) == "1.05 [1.05, 1.05]"  # ≤ 3 digits
    assert stress_tests.values_text([840.0, 380.0, float("inf"), 900.0, 500.0]) == "800 [400, inf]"  # unbounded: 1 digit
    assert stress_tests.values_text([7.0] * 5) == "7 [7, 7]" and stress_tests.values_text([]) == "–"
