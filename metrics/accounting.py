"""Wall time and peak memory of a stage."""
from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager

import torch


def peak_memory_mb(device: str = "cpu") -> float:
    """Peak GPU memory allocated by torch on CUDA; otherwise the process's peak resident set."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
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
