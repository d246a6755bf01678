"""The network calls a prior makes, logged so that they can be replayed bare.

A solver's unavoidable cost is its network calls: the denoiser (and, for latent solvers, the
encoder and decoder), forward only or forward + backward when the solver differentiates through
them. ``CallLog`` counts calls by signature (name, input shapes, which inputs are differentiated);
``bare_seconds`` times each signature alone on random inputs of the same shapes, differentiating
with respect to the same inputs (a gradient for the text embedding stops at the cross-attention; one
for the latent runs the whole backward), and scales by its count. A solver's wall time divided by
that is its loop overhead (1.0 = no overhead).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

import torch


class CallLog:
    def __init__(self):
        self.counts: Counter = Counter()
        self.fns: dict[tuple, Callable] = {}

    def record(self, name: str, fn: Callable, *tensors: torch.Tensor) -> None:
        grad = tuple(i for i, t in enumerate(tensors) if t.requires_grad) if torch.is_grad_enabled() else ()
        key = (name, tuple(tuple(t.shape) for t in tensors), grad)
        self.counts[key] += 1
        self.fns[key] = fn

    def clear(self) -> None:
        self.counts.clear()
        self.fns.clear()

    def summary(self) -> dict:
        """{name: number of calls (batched calls count once)}."""
        out: Counter = Counter()
        for (name, _, _), n in self.counts.items():
            out[name] += n
        return dict(out)


def _time_once(fn: Callable, shapes, grad: tuple[int, ...], device, dtype, sync) -> float:
    """One call on random inputs; with ``grad`` (indices of the differentiated inputs) forward + backward."""
    inputs = [torch.randn(s, device=device, dtype=dtype, requires_grad=i in grad) for i, s in enumerate(shapes)]
    start = time.perf_counter()
    with torch.set_grad_enabled(bool(grad)):
        out = fn(*inputs)
        if grad:
            torch.autograd.grad(out.sum(), [inputs[i] for i in grad])
    sync()
    return time.perf_counter() - start


def bare_seconds(log: CallLog, device="cpu", dtype=torch.float32, reps: int = 3) -> dict:
    """{name: seconds} the logged calls take alone (mean of ``reps`` timed calls after a warm-up, x count)."""
    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    out: Counter = Counter()
    for key, count in log.counts.items():
        (name, shapes, grad), fn = key, log.fns[key]
        _time_once(fn, shapes, grad, device, dtype, sync)
        n = min(reps, count)
        out[name] += count * sum(_time_once(fn, shapes, grad, device, dtype, sync) for _ in range(n)) / n
    return dict(out)
