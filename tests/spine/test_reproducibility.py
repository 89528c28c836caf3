"""The instruction-set pin reaches torch, and leaves a variable the user set alone."""

import os
import subprocess
import sys

import pytest

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


# What a compiled training loop does first, then a compiled softmax against the eager one: their largest difference.
COMPILED_AGAINST_EAGER = """
import torch
from ihcore.spine.reproducibility import key_compiled_kernels_by_isa
key_compiled_kernels_by_isa()
x = torch.randn(1000, 37, generator=torch.Generator().manual_seed(0))
f = lambda x: torch.softmax(2 * x + 1, dim=-1).sum(0)
print((torch.compile(f)(x) - f(x)).abs().max().item())
"""


def test_compiled_kernels_under_the_pin_and_without_it_share_a_compiler_cache_safely(tmp_path):
    from torch._inductor import cpu_vec_isa

    if not any(isa.bit_width() == 512 for isa in cpu_vec_isa.valid_vec_isa_list()):
        pytest.skip("this CPU has one vector width (no AVX-512): pinned and unpinned kernels are the same")
    unpinned = {k: v for k, v in os.environ.items() if k not in PINNED_CPU_ENVIRONMENT}
    unpinned["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path)  # one cache, as a user's processes share theirs
    for environment in (unpinned, {**unpinned, **PINNED_CPU_ENVIRONMENT}):  # AVX-512 kernels cached first
        run = subprocess.run([sys.executable, "-c", COMPILED_AGAINST_EAGER], env=environment, capture_output=True,
                             text=True, check=False)
        # Without the key, the second run rebuilt the first's kernels for its own width: it corrupted
        # the heap or computed garbage (3e35 here; NaN weights after a compiled training).
        assert run.returncode == 0, run.stderr[-2000:]
        assert float(run.stdout.split()[-1]) < 1e-3  # rounding: 3e-5 on sums of about 27
