"""UD2M (Kemajou Mbakam, Spence, Pereyra; TMLR 2025, arXiv 2507.02686): a few-step posterior sampler made
of K unfolded LATINO modules, each distilled into one step of the (LoRA-adapted) denoiser.

Module k (x_t enters as a Gaussian likelihood on x_0; rho = sigma_y sigma_t / sqrt(sigma_y^2 + sigma_t^2)):

    z       = argmin_u |A u - y|^2 / (2 lam sigma_y^2) + |u - x^(k)|^2 / (2 rho^2) + |u - x_t / sqrt(abar_t)|^2 / (2 sigma_t^2)
    t_delta = argmin_s |sigma_s - rho|,   z_u = sqrt(abar_u) z + sqrt(1 - abar_u) eps,   x^(k+1) = tweedie(z_u, eps_theta(z_u, u))

with x^(0) = f_psi (A^dagger y without RAM, the paper's; ``warm_start='y'`` takes y itself, as the official
code does for deblurring, where the truncated A^dagger y amplifies noise; ``warm_start='ram'`` the RAM
network f_psi(x_t, y), ``priors/ram.py``, run once per sampler step) and sigma_t = sqrt(1 - abar_t) / sqrt(abar_t).
Sampler (Algorithm 1): x_{t_N} ~ N(0, I); for n = N..1: x0_hat = modules(x_{t_n}, y), then the official code's
DDIM step (eta = 0.8) on the grid t_i = int((i / N)^2 1000). NFE = K x N (9 for K = N = 3), plus N with RAM (12).

The two quadratic terms in u are one: |u - m|^2 / (2 tau^2), so the module's data step is the
operator's own prox. Units follow the official code: [-1, 1] images, sigma_y doubled.
"""
from __future__ import annotations

import torch

from physics.base import standard_normal
from priors.diffusion import add_noise, eps_from_x0, tweedie
from priors.ram import back_projection
from priors.schedules import betas

PAPER_NAME = "UD2M"
USES_PRIOR = "pixel"


def time_grid(N: int, T: int = 1000) -> list[int]:
    """t_i = int((i / N)^2 T), i = 1..N, the last minus one, in decreasing order."""
    grid = [int((i / N) ** 2 * T) for i in range(1, N + 1)]
    grid[-1] -= 1
    return sorted(grid, reverse=True)


def unfolded_modules(x_t, t, y, op, prior, K: int, generator, lam: float = 1.0, x_init=None,
                     t_offset: int = 0) -> torch.Tensor:
    """x0_hat = L(x_t, y): K LATINO modules from the warm start ``x_init`` ([-1, 1] images)."""
    abar = prior.abar.to(x_t)
    sigma_y = 2 * max(op.sigma_y, 1e-3)                          # [-1, 1] units
    sigma_t = ((1 - abar[t]) / abar[t]).sqrt()
    rho = sigma_y * sigma_t / (sigma_y**2 + sigma_t**2).sqrt()
    tau2 = 1 / (1 / rho**2 + 1 / sigma_t**2)
    sigmas = ((1 - abar) / abar).sqrt()
    u = int(min(max((sigmas - rho).abs().argmin().item() + t_offset, 1), len(abar) - 1))
    x = x_init if x_init is not None else back_projection(y, op)
    for _ in range(K):
        m = tau2 * (x / rho**2 + x_t / abar[t].sqrt() / sigma_t**2)
        gamma = (tau2 / 4) / (lam * (sigma_y / 2) ** 2)           # the prox in [0, 1] units
        z = 2 * op.prox((m + 1) / 2, y, gamma) - 1
        z_u = add_noise(z, standard_normal(z.shape, generator, dtype=z.dtype, device=z.device), abar[u])
        x = tweedie(z_u, prior.eps(z_u, u), abar[u])
    return x


WARM_STARTS = ("pinv", "y", "ram")


def f_psi(y, op, kind: str = "pinv", x_t=None, t=None, ram=None) -> torch.Tensor:
    """x^(0) in [-1, 1]: the truncated A^dagger y ('pinv', the paper's f_psi without RAM), y ('y'), or the
    RAM network's f_psi(x_t, y) ('ram', which needs x_t, t and the network)."""
    if kind not in WARM_STARTS:
        raise ValueError(f"unknown warm_start {kind!r}; valid: {', '.join(map(repr, WARM_STARTS))}")
    if kind == "ram":
        if ram is None:
            raise ValueError("warm_start 'ram' needs a RAM network: an adapter distilled with it, or `ram: <checkpoint>`")
        return ram(x_t, t, y, op)
    return back_projection(y, op) if kind == "pinv" else 2 * y.clamp(0, 1) - 1


def adapt(prior, adapter: str, K: int) -> tuple[float, str]:
    """Put a shipped UD2M distillation on the prior (in place, once; with its fine-tuned RAM network as
    ``prior.ram`` if it was distilled with one); return its learnt lambda and its warm start."""
    from priors.lora import load_adapter
    psi, card = load_adapter(prior, adapter)
    if card.get("K") != K:
        raise ValueError(f"adapter {adapter!r} was distilled for K = {card.get('K')} modules, not K = {K}")
    if card.get("warm_start") == "ram":
        from priors.ram import load_ram
        prior.ram = load_ram(adapter, counter=prior)
    return psi["lam"], card.get("warm_start", "pinv")


@torch.no_grad()
def solve(y, op, prior, *, generator=None, K: int = 3, N: int = 3, eta: float = 0.8, lam: float = 1.0,
          warm_start: str = "pinv", adapter: str | None = None, ram: str | None = None) -> torch.Tensor:
    """``adapter``: a shipped UD2M distillation (LoRA + learnt lambda, ``priors/ud2m_distill.py``, and the
    RAM network it was fine-tuned with) put on the prior; without it the modules run the plain prior (an
    untrained UD2M). ``ram``: a shipped RAM network for ``warm_start='ram'`` without such an adapter."""
    if K < 1 or N < 1:
        raise ValueError(f"UD2M needs K >= 1 and N >= 1, got K={K}, N={N}")
    if adapter is not None:
        lam, warm_start = adapt(prior, adapter, K)
    if ram is not None and getattr(prior, "ram", None) is None:
        from priors.ram import load_ram
        prior.ram = load_ram(ram, counter=prior)
    abar, beta = prior.abar.to(y), betas().to(y)
    ts = time_grid(N)
    x_init = None if warm_start == "ram" else f_psi(y, op, warm_start)
    x_shape = x_init.shape if x_init is not None else op.A_dagger(y, rcond=0.03).shape
    x_t = standard_normal(x_shape, generator, dtype=y.dtype, device=y.device)
    for i, t in enumerate(ts):
        if warm_start == "ram":
            x_init = f_psi(y, op, "ram", x_t, t, getattr(prior, "ram", None))
        x0_hat = unfolded_modules(x_t, t, y, op, prior, K, generator, lam, x_init).clamp(-1, 1)
        if i == len(ts) - 1:
            return ((x0_hat + 1) / 2).clamp(0, 1)
        t_next = ts[i + 1]
        eps_hat = eps_from_x0(x_t, x0_hat, abar[t])
        s = eta * ((1 - abar[t_next]) / (1 - abar[t])).sqrt() * beta[t].sqrt()      # the official eta_sigma
        z1, z2 = (standard_normal(x_t.shape, generator, dtype=y.dtype, device=y.device) for _ in range(2))
        x_t = (abar[t_next].sqrt() * x0_hat + (1 - abar[t_next] - s**2).clamp_min(0).sqrt() * eps_hat
               + s * z1 + s * (1 - abar[t_next]).sqrt() * z2)
