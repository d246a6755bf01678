"""The network calls a prior makes, logged so that they can be timed bare.

A solver's unavoidable cost is its network calls: the denoiser (and, for latent solvers, the
encoder and decoder), forward only or forward + backward when the solver differentiates through
them. ``CallLog`` counts calls by signature (name, input shapes, which inputs are differentiated).
A bare call is the same network on random inputs of the same shapes, differentiated with respect to
the same inputs (a gradient for the text embedding stops at the cross-attention; one for the latent
runs the whole backward), with nothing of the solver around it. A solver's wall time divided by
the bare time of all its calls is its loop overhead (1.0 = no overhead).

Bare calls are timed *interleaved* with the solve (``interleave``): just before the solver's own
call, at the first ``1 + reps`` calls of each signature (the first a warm-up, not counted; reps = 8,
so that a short solve such as 8-step LATINO is sampled over its whole length; this dense stretch ends early
once two samples are in and they add up to ``dense_s`` = 2 s: a call that long, such as a denoiser call on a
mini-batch of 40 video clips, is timed well by two, and replaying all of a few-call solve's calls would double
its job's time) and at every
``every``-th call after, so that the bare time is sampled across the whole solve, under the same
load of the machine as the solve itself. The time the replays take (``replay_s``) is taken out
of the solve's wall time. ``bare_seconds`` sums each signature's bare time over its calls, each
call taking the time of the latest sample before it (the first sample also stands for the calls
before it): the dense early samples weigh no more than the stretch of the solve they cover.
Replay inputs come from the log's own generator: the solver's random streams are untouched.
"""
from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from typing import Callable

import torch


class CallLog:
    def __init__(self):
        self.counts: Counter = Counter()
        self.fns: dict[tuple, Callable] = {}
        self.samples: dict[tuple, list[tuple[int, float]]] = defaultdict(list)   # (call number, seconds)
        self.replay_s = 0.0
        self.every, self.reps, self.dense_s = 0, 8, 2.0
        self._generators: dict[str, torch.Generator] = {}
        self._bar = None

    def progress(self, desc: str, mininterval: float = 10.0) -> "CallLog":
        """Report the calls as they happen (a tqdm line on stderr, the job's log, at most every ``mininterval``
        seconds): a long solve is not silent. ``close_progress`` ends it."""
        from tqdm import tqdm
        self.close_progress()
        self._bar = tqdm(desc=desc, unit=" network calls", mininterval=mininterval, file=sys.stderr)
        return self

    def close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def interleave(self, every: int, reps: int = 8, dense_s: float = 2.0) -> "CallLog":
        """Time a bare replay before the solver's own call at calls 1 .. 1 + reps (until two samples add up to
        ``dense_s`` seconds) and every ``every``-th call of each signature (0: no interleaved timing)."""
        self.every, self.reps, self.dense_s = int(every), int(reps), float(dense_s)
        return self

    def _dense(self, key: tuple, n: int) -> bool:
        taken = self.samples.get(key, [])
        return n <= 1 + self.reps and not (len(taken) >= 2 and sum(s for _, s in taken) >= self.dense_s)

    def record(self, name: str, fn: Callable, *tensors: torch.Tensor) -> None:
        grad = tuple(i for i, t in enumerate(tensors) if t.requires_grad) if torch.is_grad_enabled() else ()
        key = (name, tuple(tuple(t.shape) for t in tensors), grad)
        self.counts[key] += 1
        self.fns[key] = fn
        if self._bar is not None:
            self._bar.update()
        n = self.counts[key]
        if self.every and (self._dense(key, n) or n % self.every == 0):
            start = time.perf_counter()
            device, dtype = tensors[0].device, tensors[0].dtype
            seconds = _time_once(fn, key[1], grad, device, dtype, self._generator(device))
            if n > 1:
                self.samples[key].append((n, seconds))
            self.replay_s += time.perf_counter() - start

    def clear(self) -> None:
        self.counts.clear()
        self.fns.clear()
        self.samples.clear()
        self.replay_s = 0.0

    def summary(self) -> dict:
        """{name: number of calls (batched calls count once)}."""
        out: Counter = Counter()
        for (name, _, _), n in self.counts.items():
            out[name] += n
        return dict(out)

    def _generator(self, device) -> torch.Generator:
        if str(device) not in self._generators:
            self._generators[str(device)] = torch.Generator(device=device).manual_seed(0)
        return self._generators[str(device)]


class LoggedAutoencoder:
    """Mixin of the latent priors: ``encode`` / ``decode`` count their items (``ae_calls``) and log the call
    (named with the prior's ``role``) around the class's own ``_encode`` / ``_decode``."""
    role = ""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.ae_calls += x.shape[0]
        self.calls.record(f"{self.role}encoder", self._encode, x)
        return self._encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.ae_calls += z.shape[0]
        self.calls.record(f"{self.role}decoder", self._decode, z)
        return self._decode(z)


def _sync(device) -> None:
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def _time_once(fn: Callable, shapes, grad: tuple[int, ...], device, dtype, generator=None) -> float:
    """One call on random inputs; with ``grad`` (indices of the differentiated inputs) forward + backward."""
    inputs = [torch.randn(s, device=device, dtype=dtype, generator=generator, requires_grad=i in grad)
              for i, s in enumerate(shapes)]
    _sync(device)
    start = time.perf_counter()
    with torch.set_grad_enabled(bool(grad)):
        out = fn(*inputs)
        if grad:
            torch.autograd.grad(out.sum(), [inputs[i] for i in grad])
    _sync(device)
    return time.perf_counter() - start


def bare_seconds(log: CallLog, device="cpu", dtype=torch.float32, reps: int = 3) -> dict:
    """{name: seconds} the logged calls take bare, from the samples timed during the solve (each call
    at its latest sample's time); a signature sampled no time during the solve is timed now (a warm-up,
    then ``reps`` calls, their mean for every call)."""
    out: Counter = Counter()
    for key, count in log.counts.items():
        (name, shapes, grad), fn = key, log.fns[key]
        samples = log.samples.get(key)
        if samples:
            calls = [n for n, _ in samples[1:]] + [count + 1]      # each sample covers the calls up to the next one
            out[name] += sum(s * (upto - (n if i else 1)) for i, ((n, s), upto) in enumerate(zip(samples, calls)))
        else:
            _time_once(fn, shapes, grad, device, dtype)
            timed = [_time_once(fn, shapes, grad, device, dtype) for _ in range(min(reps, count))]
            out[name] += count * sum(timed) / len(timed)
    return dict(out)
