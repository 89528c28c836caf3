"""ihcore.wang.laziness: tangent kernels and drift."""

import math

import pytest
import torch

from ihcore.spine.transformer import AttentionOnlyTransformer, TransformerConfig
from ihcore.wang import laziness


def test_tangent_kernel_of_a_linear_model_is_the_gram_matrix_and_never_drifts():
    features = torch.randn(5, 3, dtype=torch.float64)
    outputs = lambda theta: features @ theta  # noqa: E731
    start, end = torch.ones(3, dtype=torch.float64), torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(laziness.tangent_kernel(outputs, start), features @ features.T)
    found = laziness.drift(outputs, start, end)
    assert found["kernel_drift"] == 0 and found["parameter_drift"] == pytest.approx(math.sqrt(2 / 3))


def test_model_outputs_reproduce_the_model():
    model = AttentionOnlyTransformer(TransformerConfig(1, 1, 6, d_model=8)).double()
    tokens = torch.randn(4, 6, 1, dtype=torch.float64)
    outputs, flatten = laziness.model_outputs(model, tokens)
    torch.testing.assert_close(outputs(flatten(dict(model.named_parameters()))), model(tokens)[:, -1, 0])


def test_the_chunked_model_drift_equals_the_whole_batch_kernel_drift():
    model = AttentionOnlyTransformer(TransformerConfig(1, 1, 6, d_model=8), seed=0).double()
    tokens = torch.randn(10, 6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = {k: v + 0.3 * torch.randn(v.shape, dtype=v.dtype, generator=torch.Generator().manual_seed(1))
           for k, v in start.items()}
    outputs, flatten = laziness.model_outputs(model, tokens)
    whole = laziness.drift(outputs, flatten(start), flatten(end))
    chunked = laziness.model_drift(model, tokens, start, end, chunk=3)  # chunks of 3, 3, 3, 1 probes
    assert whole["kernel_drift"] > 0.01
    assert chunked == pytest.approx(whole, rel=1e-10)
