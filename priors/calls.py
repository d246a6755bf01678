"""The network calls a prior makes, logged so that they can be replayed bare.

A solver's unavoidable cost is its network calls: the denoiser (and, for latent solvers, the
encoder and decoder), forward only or forward + backward when the solver differentiates through
them. ``CallLog`` counts calls by signature (name, input shapes, differentiated or not);
``bare_seconds`` times each signature alone on random inputs of the same shapes and scales by
its count. A solver's wall time divided by that is its loop overhead (1.0 = no overhead).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

import torch


class CallLog:
    def __init__(self):
        self.counts: Counter = Counter()
        self.fns: dict[str, Callable] = {}

    def record(self, name: str, fn: Callable, *tensors: torch.Tensor) -> None:
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        self.counts[(name, tuple(tuple(t.shape) for t in tensors), grad)] += 1
        self.fns[name] = fn

    def clear(self) -> None:
        self.counts.clear()

    def summary(self) -> dict:
        """{name: number of calls (batched calls count once)}."""
        out: Counter = Counter()
        for (name, _, _), n in self.counts.items():
            out[name] += n
        return dict(out)


def _time_once(fn: Callable, shapes, grad: bool, device, dtype, sync) -> float:
    inputs = [torch.randn(s, device=device, dtype=dtype) for s in shapes]
    if grad:
        inputs[0].requires_grad_(True)
    start = time.perf_counter()
    with torch.set_grad_enabled(grad):
        out = fn(*inputs)
        if grad:
            torch.autograd.grad(out.sum(), inputs[0])
    sync()
    return time.perf_counter() - start


def bare_seconds(log: CallLog, device="cpu", dtype=torch.float32, reps: int = 3) -> dict:
    """{name: seconds} the logged calls take alone (mean of ``reps`` timed calls after a warm-up, x count)."""
    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    out: Counter = Counter()
    for (name, shapes, grad), count in log.counts.items():
        fn = log.fns[name]
        _time_once(fn, shapes, grad, device, dtype, sync)
        n = min(reps, count)
        out[name] += count * sum(_time_once(fn, shapes, grad, device, dtype, sync) for _ in range(n)) / n
    return dict(out)
