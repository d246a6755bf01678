"""Reduced precision for network calls (the profile's ``precision``; its effect: ``results/bench_speed.md``).

``bf16``: a prior's networks run under bfloat16 autocast where that was measured faster on CPU, and nothing
else changes precision: a call takes and returns float32, so a solver's data steps (gradients of the
likelihood, CG, SVDs, proximal steps) and every metric stay in float32. Where (``suite/speed.py`` measures it
per network and per solver): the autoencoder's encoder and decoder, with or without a backward pass, and every
denoiser's forward-only calls. A denoiser call whose input is differentiated (DPS, LDPS, PSLD, P2L) stays in
float32 for the latent U-Net, whose backward under autocast measured slower than in float32; the pixel U-Nets
gain in both. ``float32``: no autocast (the reference; the paper profile's networks run in the dtype of their
checkpoint entry instead).
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
