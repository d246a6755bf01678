"""Shared steps of every diffusion-based solver, written once.

Notation (DDPM): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

* ``tweedie``: x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
* ``eps_from_x0``: eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)
* ``add_noise``: x_t from x_0 and eps
* ``ddim_step``: x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - s^2) eps_hat + s z,
  s = eta sqrt((1 - abar_t') / (1 - abar_t)) sqrt(1 - abar_t / abar_t') (Song et al. 2021, eq. 12)
* ``ldm_steps``: the latent samplers' DDIM grid, as the official latent-diffusion codes build it
"""
from __future__ import annotations

import torch


def _bcast(a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(a, dtype=like.dtype, device=like.device)
    return a.reshape(-1, *([1] * (like.ndim - 1))) if a.ndim else a


def tweedie(x_t: torch.Tensor, eps_hat: torch.Tensor, abar_t) -> torch.Tensor:
    a = _bcast(abar_t, x_t)
    return (x_t - (1 - a).sqrt() * eps_hat) / a.sqrt()


def eps_from_x0(x_t: torch.Tensor, x0_hat: torch.Tensor, abar_t) -> torch.Tensor:
    a = _bcast(abar_t, x_t)
    return (x_t - a.sqrt() * x0_hat) / (1 - a).sqrt()


def add_noise(x0: torch.Tensor, eps: torch.Tensor, abar_t) -> torch.Tensor:
    a = _bcast(abar_t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def ddim_step(x0_hat: torch.Tensor, eps_hat: torch.Tensor, abar_t, abar_next, eta: float = 0.0,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    a, a_next = _bcast(abar_t, x0_hat), _bcast(abar_next, x0_hat)
    s = eta * ((1 - a_next) / (1 - a)).sqrt() * (1 - a / a_next).clamp_min(0).sqrt()
    out = a_next.sqrt() * x0_hat + (1 - a_next - s**2).clamp_min(0).sqrt() * eps_hat
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        out = out + s * noise
    return out


def ldm_steps(abar: torch.Tensor, steps: int):
    """(t, abar_t, abar_next) on the DDIM grid of the official latent-diffusion codes (LDPS, PSLD, P2L, TReg):
    with c = T // steps, the UNet sees t = i c + 1 (i = steps - 1 .. 0) while abar is read one index lower,
    abar_t = abar[i c] and abar_next = abar[(i - 1) c], the last step ending at abar[0], not 1. This is the
    LDM sampler PSLD ships (``make_ddim_timesteps`` adds 1, its ``make_ddim_sampling_parameters`` subtracts it)
    and TReg's Stable Diffusion DDIMScheduler (leading spacing, steps_offset 1, a 1 prepended to abar)."""
    T = len(abar)
    c = T // steps
    for i in range(steps - 1, -1, -1):
        yield i * c + 1, abar[i * c], abar[(i - 1) * c] if i > 0 else abar[0]

