"""Noise schedules (pure functions returning tensors) of the DDPM family.

``linear``: beta_t from 1e-4 to 0.02 over T = 1000 steps (DDPM, ADM, the pixel priors).
``scaled_linear``: sqrt(beta) linear from sqrt(0.00085) to sqrt(0.012) (Stable Diffusion).
alpha_bar_t = prod_{s <= t} (1 - beta_s); sigma_t = sqrt(1 - alpha_bar_t) / sqrt(alpha_bar_t).
"""
from __future__ import annotations

import torch

SCHEDULES = ("linear", "scaled_linear")


def betas(kind: str = "linear", T: int = 1000, beta_start: float | None = None,
          beta_end: float | None = None) -> torch.Tensor:
    if kind == "linear":
        return torch.linspace(beta_start or 1e-4, beta_end or 0.02, T, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace((beta_start or 0.00085) ** 0.5, (beta_end or 0.012) ** 0.5, T, dtype=torch.float64) ** 2
    raise ValueError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")


def alpha_bar(kind: str = "linear", T: int = 1000, **kw) -> torch.Tensor:
    return torch.cumprod(1 - betas(kind, T, **kw), 0)
