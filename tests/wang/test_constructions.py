"""ihcore.wang.constructions: hand-built transformers for IH₂ and IH_n."""

import pytest
import torch

from ihcore.wang import constructions
from ihcore.wang.mixed_target import induction_head
from tests.wang.helpers import gaussian


@pytest.mark.parametrize("length", [5, 16, 40])
def test_hand_built_transformer_computes_the_induction_head_exactly(length):
    x = gaussian(64, length)
    model = constructions.induction_head_transformer(length, w_star=0.8)
    readout = model(x[:, :, None])[:, -1, 0]
    torch.testing.assert_close(readout, induction_head(x, 0.8), rtol=0, atol=1e-12)


def test_hand_built_transformer_errs_more_on_longer_sequences_at_low_sharpness():
    errors = []
    for length in (8, 64):
        x = gaussian(256, length)
        readout = constructions.induction_head_transformer(length, 1.0, sharpness=4.0)(x[:, :, None])[:, -1, 0]
        errors.append((readout - induction_head(x, 1.0)).pow(2).mean().sqrt().item())
    assert errors[1] > 2 * errors[0] > 0


def test_one_sharp_head_gives_the_bigram_head_exactly():
    x = gaussian(32, 12)
    out = constructions.ngram_head(x, 2, 0.6, torch.tensor([60.0], dtype=torch.float64))
    torch.testing.assert_close(out, induction_head(x, 0.6), rtol=0, atol=1e-12)


def test_more_heads_extract_previous_tokens_better():
    x = gaussian(256, 40)
    errors = []
    for n_heads in (2, 6):
        slopes = constructions.alibi_slopes(n_heads)
        errors.append(constructions.extraction_error(x, slopes, constructions.mixing_coefficients(slopes, 2))[:, -1])
    assert (errors[1] < errors[0] / 3).all()


def test_mixing_coefficients_are_the_same_bits_every_call():
    slopes = constructions.alibi_slopes(5)
    first = constructions.mixing_coefficients(slopes, 3)
    assert all(torch.equal(first, constructions.mixing_coefficients(slopes, 3)) for _ in range(10))


def test_approximation_errors_and_their_summary():
    errors = constructions.approximation_errors([8, 16, 32], 0.5, max_heads=5)
    assert len(errors["ih2_errors"]) == 3 and errors["heads"] == [1, 2, 3, 4, 5]
    assert set(errors["ngram_errors"]) == {2, 3, 4} and errors["position_error"].shape == (3, 64)
    summary = constructions.approximation_summary(errors)
    assert summary["ih2_exact"] and summary["ih2_error"] == constructions.FLOAT_NOISE
    assert summary["ape_ratio"] > 1 > summary["head_ratio"]  # APE leaks grow with L; more heads help
    assert summary["rpe_ratio"] == pytest.approx(1, abs=0.2)  # the RPE leak does not grow with L
    assert summary["exact_from"] == {2: 5, 3: None, 4: None}  # H = 5 heads isolate x_{t−1} to the fit's rounding
