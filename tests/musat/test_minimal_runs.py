"""Run configurations of the minimal model and the stress-test summary."""

import math

import numpy as np
import pytest

from ihcore.musat.minimal_runs import STRESS_VARIANTS, minimal_config, run_minimal, stress_configs, stress_summary


def test_unknown_configuration_keys_are_refused():
    with pytest.raises(ValueError, match="lr"):
        minimal_config(lr=0.1)


def test_stress_configs_cover_every_variant_at_every_n_with_tau_growing_as_n_squared():
    configs = stress_configs([2, 4], 3.0, dim=8, batch_size=64)
    assert len(configs) == 2 * len(STRESS_VARIANTS)
    assert {c["tau_max"] for c in configs} == {12.0, 48.0}
    assert all(c["dim"] == 8 for c in configs)
    smallbatch = [c for c in configs if c["variant"].startswith("SGD noise")]
    assert all(c["batch_size"] == 16 for c in smallbatch)  # a variant's override beats the base


def fake_run(variant, n, t_gamma, t_beta, t_alpha, share):
    return {"variant": variant, "n_pairs": n, "T_gamma3@0.5": t_gamma, "T_beta2@0.5": t_beta,
            "T_alpha3@0.5": t_alpha, "share_inside": np.array([np.nan, share])}


def test_stress_summary_applies_the_survival_rules():
    results = [
        fake_run("base", 4, 1, 2, 10, 0.95), fake_run("base", 8, 2, 4, 40, 0.95),  # slope 2
        fake_run("linear", 4, 1, 2, 10, 0.5), fake_run("linear", 8, 2, 4, 20, 0.5),  # slope 1, leaks
        fake_run("swapped", 4, 1, 20, 10, 0.95), fake_run("swapped", 8, 2, 50, math.nan, 0.95),  # never
    ]
    rows = {row["variant"]: row for row in stress_summary(results)}
    assert rows["base"]["slope"] == pytest.approx(2.0)
    assert (rows["base"]["confinement"], rows["base"]["order"], rows["base"]["N-scaling"]) == (True, True, True)
    assert (rows["linear"]["confinement"], rows["linear"]["order"], rows["linear"]["N-scaling"]) == (False, True, False)
    assert (rows["swapped"]["order"], rows["swapped"]["N-scaling"]) == (False, False)


def test_three_parameter_run_has_only_three_nonzero_coefficients_and_stays_inside():
    result = run_minimal(dict(model="three", n_pairs=2, dim=6, data="orthonormal", tau_max=4.0, n_evals=4))
    nonzero = {name for name, value in zip(result["names"], result["coefficients"][-1]) if value != 0}
    assert "gamma3" in nonzero and nonzero <= {"alpha3", "beta2", "gamma3"}
    assert result["share_inside"][-1] == pytest.approx(1.0)
