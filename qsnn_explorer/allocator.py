"""Keep freed memory in the process, so training steps stop page-faulting.

A training step frees and re-allocates the same few large tensors ([T, B, N] spikes, their
gradients, GEMM outputs). glibc's malloc serves blocks that large with fresh ``mmap`` pages and
hands them back on ``free``, so every step touches them anew: on the tutorial preset about
1,500 page faults per step, ~20% of a fast-path step on a 2-core VM. Raising ``M_MMAP_THRESHOLD``
(blocks up to 64 MB come from the heap) and ``M_TRIM_THRESHOLD`` (up to 256 MB of free heap is
kept) lets the next step reuse the same, already mapped, memory. The peak is unchanged; memory
freed after training stays with the process for reuse instead of going back to the OS at once.
This is the tuning PyTorch's CPU performance guide suggests (there via jemalloc/tcmalloc).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # mallopt parameters, glibc's <malloc.h>
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Apply the thresholds above once per process; False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
