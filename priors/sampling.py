"""Unconditional / prompted sampling from an epsilon-prediction prior with DDIM (Song et al. 2021).

    for t -> t' on a uniform grid of ``steps`` timesteps:
        eps_hat = eps(x_t, t); x0_hat = tweedie(x_t, eps_hat); x_t' = ddim_step(x0_hat, eps_hat, eta)
"""
from __future__ import annotations

import torch

from .diffusion import ddim_step, tweedie


def timesteps(steps: int, T: int = 1000) -> list[int]:
    """Uniform grid T-1, ..., 0 with ``steps`` entries (diffusers' 'leading' spacing, shifted to end at 0)."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T}, got {steps}")
    return [int(round(t)) for t in torch.linspace(T - 1, 0, steps).tolist()]


@torch.no_grad()
def ddim_sample(eps_fn, abar: torch.Tensor, shape, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, clip: float | None = None) -> torch.Tensor:
    """x_0 samples of ``shape`` from ``eps_fn(x_t, t)``; ``clip`` bounds x0_hat (1 for [-1, 1] images)."""
    x = torch.randn(tuple(shape), generator=generator)
    ts = timesteps(steps, len(abar))
    for t, t_next in zip(ts, ts[1:] + [None]):
        eps_hat = eps_fn(x, t)
        x0_hat = tweedie(x, eps_hat, abar[t])
        if clip is not None:
            x0_hat = x0_hat.clamp(-clip, clip)
        if t_next is None:
            return x0_hat
        noise = torch.randn(x.shape, generator=generator) if eta > 0 else None
        x = ddim_step(x0_hat, eps_hat, abar[t], abar[t_next], eta, noise).to(x.dtype)
    return x


@torch.no_grad()
def consistency_sample(prior, c: torch.Tensor, shape, steps=(999, 749, 499, 249),
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023; LCM): z0 = f(z_t, t, c), re-noised to the next
    timestep, for the latents of ``shape``; returns the decoded [0, 1] images."""
    from .diffusion import add_noise
    device = prior.abar.device
    z = torch.randn(tuple(shape), generator=generator).to(device)
    for t, t_next in zip(steps, list(steps[1:]) + [None]):
        z0 = prior.x0(z, t, c)
        if t_next is None:
            break
        z = add_noise(z0, torch.randn(z.shape, generator=generator).to(device), prior.abar[t_next])
    return prior.decode(z0).clamp(0, 1)


@torch.no_grad()
def lcm_scheduler_sample(prior, c: torch.Tensor, shape, n_steps: int = 4,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """The same multistep consistency sampling through diffusers' ``LCMScheduler`` (its timesteps, its
    boundary scalings); a fresh scheduler per chain, since the scheduler counts its steps."""
    from diffusers import LCMScheduler
    sched = LCMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    sched.set_timesteps(n_steps)
    z = torch.randn(tuple(shape), generator=generator)
    for t in sched.timesteps:
        z = sched.step(prior.eps(z, t, c), t, z, generator=generator).prev_sample
    return prior.decode(z).clamp(0, 1)   # the last step returns the denoised latent
