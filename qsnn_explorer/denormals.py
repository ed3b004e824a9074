"""Flush subnormal floats to zero in the threads that train on the CPU.

x86 CPUs compute with subnormal ("denormal") floats, |x| < 1.18e-38 in float32, through
microcode assists about 100× slower than normal arithmetic. Training makes them: once the
network is confident, softmax probabilities of the wrong classes underflow (e^-90 and below),
and their gradients slow every GEMM and kernel they enter. On the mnist5k preset CPU training
slowed by 40–45% over twenty epochs (7,100 → 4,300 samples/s on 1 thread; 10,800 → 5,900 on
2); with flush-to-zero / denormals-are-zero (FTZ/DAZ) it held steady (≈7,000 and ≈10,700):
``benchmarks/RESULTS_DENORMALS.md``. TensorFlow runs its CPU kernels in this mode by default.

The mode is a per-thread CPU flag, inherited by threads created after it is set (torch's and
numba's worker pools), so the Trainer sets it when it is built, before its first parallel op,
and again at every step and evaluation (~1 µs) for whichever thread trains. Only values below
1.18e-38 change: they become 0. Pools started before, by other code, keep their mode.
"""
from __future__ import annotations

import torch


def flush_denormals() -> bool:
    """Set FTZ/DAZ for the calling thread; False where the CPU does not support it."""
    return torch.set_flush_denormal(True)
