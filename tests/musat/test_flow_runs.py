"""The closed-form flow's runs: configuration, emergence order, N^2 law and gradient sizes."""

from types import SimpleNamespace

import pytest

from ihcore.musat.flow_runs import FlowRunConfig, fit_ns, gradient_slopes, run, slopes, sweep_configs
from ihcore.spine.validation import ParameterError


def test_a_bad_field_is_refused_with_a_message_naming_it():
    with pytest.raises(ParameterError, match=r"FlowRunConfig: n_pairs = 1 is invalid: expected an integer >= 2"):
        FlowRunConfig(1)
    with pytest.raises(ParameterError, match=r"tau_factor = -1.0 is invalid: expected a number > 0"):
        FlowRunConfig(4, tau_factor=-1.0)


def test_the_chapter_sweep_and_fit_range():
    assert [c.n_pairs for c in sweep_configs(SimpleNamespace(n_max_reduced=16))] == [2, 4, 8, 16]
    assert fit_ns(256) == [32, 64, 128, 256]


def test_flow_runs_keep_the_order_with_quadratic_alpha3_and_gradients_one_over_n_then_n_squared():
    results = [run(FlowRunConfig(n)) for n in (16, 32)]
    for r in results:
        assert r["T_gamma3@0.5"] < r["T_beta2@0.5"] < r["T_alpha3@0.5"]
        assert (r["tau_factor"], r["stop_alpha3"]) == (40.0, 1.0)
    assert 1.8 < slopes(results, [16, 32])["alpha3"] < 2.2
    assert results[0]["grad_gamma3@0"] == pytest.approx(1 / 32)  # 1/(2N) at zero init
    gradients = gradient_slopes(results, [16, 32])
    assert gradients["gamma3"] == pytest.approx(-1.0)
    assert -2.3 < gradients["beta2"] < -1.7
