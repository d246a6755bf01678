"""Reduced precision for network calls (the profile's ``precision``; its effect: ``results/bench_speed.md``).

``bf16``: a prior's networks run under bfloat16 autocast where that was measured faster on CPU, and nothing
else changes precision: a call takes and returns float32, so a solver's data steps (gradients of the
likelihood, CG, SVDs, proximal steps) and every metric stay in float32. Where (``suite/speed.py`` measures it
per network and per solver, ``results/bench_speed.md``): every forward-only call (denoisers, bridges, RAM, the
autoencoder), and the pixel denoiser's calls that a solver differentiates (DPS). The latent family's
differentiated calls (the U-Net, encoder and decoder under LDPS, PSLD and P2L) stay in float32: through a
backward pass they gained little or lost, and LDPS's and PSLD's 1,000-step trajectories moved (PSNR by up to
1.4 dB on an image) where DPS's did not. ``float32``: no autocast (the reference; the paper profile's networks
run in the dtype of their checkpoint entry instead).
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("float32", "bf16")


def autocast(x: torch.Tensor, enabled: bool):
    """bfloat16 autocast on ``x``'s device when ``enabled``, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(x.device.type, dtype=torch.bfloat16)


def differentiated(*tensors: torch.Tensor) -> bool:
    """Whether a backward pass will run through this call (some input needs its gradient)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def set_precision(prior, precision: str):
    """Set ``precision`` on a loaded prior (and on the priors it is made of); returns it."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    for part in (prior, *(getattr(prior, k) for k in ("video", "image") if hasattr(prior, k))):
        part.bf16 = precision == "bf16"
    return prior
