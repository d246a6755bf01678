"""Wall time and peak memory of a stage."""
from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager

import torch


def peak_memory_mb(device: str = "cpu") -> float:
    """Peak GPU memory allocated by torch on CUDA; otherwise the process's own peak resident set.

    On Linux this is VmHWM, the high-water mark of this process's address space: ``ru_maxrss`` is carried
    across ``exec`` from the process that spawned it (a test runner, a workflow manager), so a small job
    started by a large parent would report the parent's peak."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10           # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


@contextmanager
def stopwatch(device: str = "cpu"):
    """``with stopwatch() as t: ...`` then ``t['wall_time_s']``; synchronises CUDA around the block."""
    result = {}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield result
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
    result["wall_time_s"] = time.perf_counter() - start
    result["peak_memory_mb"] = peak_memory_mb(device)
