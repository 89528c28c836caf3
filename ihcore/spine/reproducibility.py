"""Bit-identical CPU results across machines of one CPU family: one instruction set for torch's math libraries.

With the same seeds and thread count, torch on one CPU gives the same bits every run. On
another CPU it may not: MKL, oneDNN and ATen's own vector kernels pick their code path by
the instruction sets the CPU has (AVX2, AVX-512, AMX), and the paths round differently.
The differences start in the 6th digit, but training amplifies them (a phase change comes
a few steps earlier), so a notebook's printed summaries can change. Pinning every library
to its AVX2 path (which every x86-64 CPU of the last decade has) makes CPUs of one family
agree. It does not make another family agree: rerun on an AMD EPYC, a pinned Musat run shipped
from an Intel Xeon (``musat-diagnosis``) gave coefficients and losses that differ from the 6th
digit on. The chapters' verdicts, judged over seeds, are what stay the same there.

:func:`pin_cpu_numerics` sets the variables; the libraries read them when first used, so
it must run before any torch computation, best before ``import torch``. The test suite,
``python -m ihcore run/build`` (notebook kernels inherit the environment) and ``make
bench`` call it. A variable already set in the environment is left alone.

The pin also sets the vector instruction set of ``torch.compile``'s CPU kernels, and the
compiler's on-disk caches do not tell one set from the other:
:func:`key_compiled_kernels_by_isa` (called by every compiled training loop) keeps them apart.
"""

from __future__ import annotations

import os
import platform
import subprocess

PINNED_CPU_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels (softmax, reductions, Adam's updates)
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility mode (matrix products)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's kernels
}


def pin_cpu_numerics() -> None:
    """Set :data:`PINNED_CPU_ENVIRONMENT` in this process's environment (children inherit it)."""
    for name, value in PINNED_CPU_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def key_compiled_kernels_by_isa() -> None:
    """Make ``torch.compile``'s caches keep kernels of different vector instruction sets apart.

    Inductor writes its CPU kernels for the vector width that ``ATEN_CPU_CAPABILITY`` selects
    (256 bits under the pin, 512 on an AVX-512 CPU without it), but in torch 2.13 its on-disk
    caches, shared by every process of a user, do not key on that variable: a graph cached by
    one setting is loaded by the other and its kernels rebuilt for the other width. Measured on an
    AMD EPYC (family 26): a compiled softmax cached by an unpinned process came out wrong by 3e35
    in a pinned one; the other order corrupted the heap. Fixing the compiler's vector width
    (``cpp.simdlen``, which its cache keys do hold) to the one the environment selects keeps them
    apart and changes no kernel. A width the user set is left alone.
    """
    import torch._inductor.config as inductor_config
    from torch._inductor import cpu_vec_isa

    if inductor_config.cpp.simdlen is None:
        inductor_config.cpp.simdlen = cpu_vec_isa.pick_vec_isa().bit_width()


def cpu_model() -> str:
    """This machine's CPU as ``lscpu`` names it ("Model name"), or ``platform.processor()``."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False,
                                 env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
