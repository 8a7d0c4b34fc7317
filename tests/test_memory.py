"""Freed memory kept in the process (ganedit.networks.memory): a large map allocated again costs no page faults.
malloc's setting belongs to the whole process, so each check runs in a child process of its own."""

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

try:
    ctypes.CDLL(None).mallopt
except AttributeError:
    pytest.skip("not glibc: ganedit leaves malloc as it is", allow_module_level=True)

FAULTS = """
import json, resource, torch
from ganedit.networks import memory, winograd

def faults_of_a_second_map():
    first = torch.ones(16 * 2**20)  # 64 MB, touched: above malloc's mmap threshold of at most 32 MB
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20

big = torch.zeros(1, 128, 256, 256)  # a 256 px map of 128 channels
as_started = [faults_of_a_second_map() for _ in range(3)]
suited_before = winograd.tile_for(big)
kept = memory.keep_freed_memory()
after = [faults_of_a_second_map() for _ in range(5)]
resident = resident_mb()
after += [faults_of_a_second_map() for _ in range(20)]
print(json.dumps({"as_started": as_started, "kept": kept, "after": after, "growth_mb": resident_mb() - resident,
                  "suited_before": suited_before, "suited_after": winograd.prepare() and winograd.tile_for(big)}))
"""


def test_a_map_allocated_again_reuses_freed_memory():
    out = subprocess.run([sys.executable, "-c", FAULTS], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kept"]
    if min(result["as_started"]) < 10_000:  # 64 MB in 4 kB pages is 16,384 faults
        pytest.skip(f"fresh maps fault {result['as_started']} times here (huge pages?): too few to tell reuse")
    assert max(result["after"][-20:]) < 500, result  # once the heap holds it, it is used again ...
    assert result["growth_mb"] < 70, result  # ... rather than grown again and again
    # Winograd then also serves the largest maps, whose transformed input no longer costs fresh pages
    assert not result["suited_before"] and result["suited_after"]
