"""The instruction-set pin reaches torch, and leaves a variable the user set alone."""

import os
import subprocess
import sys

from ihcore.spine.reproducibility import PINNED_CPU_ENVIRONMENT, pin_cpu_numerics


def test_pin_sets_every_variable_but_keeps_the_users_own(monkeypatch):
    for name in PINNED_CPU_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    pin_cpu_numerics()
    assert os.environ["MKL_CBWR"] == "COMPATIBLE"
    assert all(os.environ[name] == value for name, value in PINNED_CPU_ENVIRONMENT.items() if name != "MKL_CBWR")


def test_torch_uses_the_avx2_kernels_after_the_pin():
    environment = {k: v for k, v in os.environ.items() if k not in PINNED_CPU_ENVIRONMENT}
    script = ("from ihcore.spine.reproducibility import pin_cpu_numerics; pin_cpu_numerics(); import torch; "
              "print(torch.backends.cpu.get_cpu_capability())")
    capability = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    assert capability.stdout.strip() in ("AVX2", "DEFAULT")  # DEFAULT: a CPU without AVX2
