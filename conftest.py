"""Shared test set-up at the repository root, loaded by every pytest run here (tests and notebooks).

Notebooks re-executed by nbval write their claims ledgers to a temporary directory, not to
the committed data/claims/, and show no progress bars (tqdm's stderr would break nbval's
comparisons). Kernels inherit these variables from the pytest process, as they do the
pinned instruction sets of :mod:`ihcore.spine.reproducibility`, set before torch is imported.
"""

import os
import tempfile

from ihcore.spine.reproducibility import pin_cpu_numerics

pin_cpu_numerics()

import torch  # noqa: E402  (after the pin: the math libraries read it when first used)


def pytest_configure(config):
    os.environ.setdefault("IHCORE_CLAIMS_DIR", tempfile.mkdtemp(prefix="ihcore-claims-"))
    os.environ["IHCORE_PROGRESS"] = "0"
    torch.set_num_threads(1)
