"""keep_freed_memory: large freed blocks are reused instead of page-faulted in afresh each step."""
import json
import subprocess
import sys

import pytest

# Run in a fresh interpreter: the heap's state depends on everything the process did before.
PROGRAM = """
import json, resource, sys, torch
from qsnn_explorer.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
for _ in range(3):  # the first rounds grow the heap once
    torch.empty(10 << 20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(10 << 20).fill_(1.0)  # 40 MB
print(json.dumps({"applied": applied, "again": keep_freed_memory() if applied else False,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def faults(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_40_mb_block_is_reused_without_page_faults():
    # 40 MB is above glibc's largest automatic mmap threshold (32 MB): by default every such
    # allocation is a fresh mapping and faults in all of its ~10,000 pages when written.
    pages = 10 * (40 << 20) // 4096
    kept, default = faults("keep"), faults("default")
    assert kept["applied"] is True and kept["again"] is True  # idempotent
    assert default["faults"] > 0.9 * pages, default  # the cost the setting removes is real here
    assert kept["faults"] < 0.1 * pages, kept
