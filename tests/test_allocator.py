"""keep_freed_memory: large freed blocks are reused instead of page-faulted in afresh each step."""
import resource
import sys

import pytest
import torch

from qsnn_explorer.allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_40_mb_block_is_reused_without_page_faults():
    # 40 MB is above glibc's largest automatic mmap threshold (32 MB): by default every such
    # allocation is a fresh mapping and faults in all of its ~10,000 pages when written.
    assert keep_freed_memory() is True and keep_freed_memory() is True  # idempotent
    for _ in range(3):  # the first rounds grow the heap once
        torch.empty(10 << 20).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.empty(10 << 20).fill_(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 0.1 * 10 * (40 << 20) / 4096, f"{faults} page faults in 10 rounds"
