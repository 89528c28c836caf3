"""Shared inputs of the Wang tests."""

import numpy as np
import torch

from ihcore.wang.mixed_target import sample_tokens

HAND_MADE = torch.tensor([[1.0, 2.0, -1.0, 0.5, 2.0]], dtype=torch.float64)  # x_1..x_5
SMALL = dict(length=10, lr=0.5, time=20.0, n_train=64, n_eval=64, n_evals=20)  # a six-parameter run of a second

T = np.geomspace(0.01, 1000, 2001)
LAZY = 1 - np.exp(-T / 2)  # starts at t = 0: 10 % → 90 % takes ln(ln 10 / ln(10/9)) e-folds
SWITCH = 1 / (1 + np.exp(-(T - 100) / 2))  # a logistic jump at t = 100


def gaussian(n, length, seed=0):
    return sample_tokens(n, length, torch.Generator().manual_seed(seed))
