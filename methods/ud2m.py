"""UD2M (Kemajou Mbakam, Spence, Pereyra; TMLR 2025, arXiv 2507.02686): a few-step posterior sampler made
of K unfolded LATINO modules, each distilled into one step of the (LoRA-adapted) denoiser.

Module k (x_t enters as a Gaussian likelihood on x_0; rho = sigma_y sigma_t / sqrt(sigma_y^2 + sigma_t^2)):

    z       = argmin_u |A u - y|^2 / (2 lam sigma_y^2) + |u - x^(k)|^2 / (2 rho^2) + |u - x_t / sqrt(abar_t)|^2 / (2 sigma_t^2)
    t_delta = argmin_s |sigma_s - rho|,   z_u = sqrt(abar_u) z + sqrt(1 - abar_u) eps,   x^(k+1) = tweedie(z_u, eps_theta(z_u, u))

with x^(0) = f_psi. Default ``warm_start='official'``: the official code's f_psi without RAM as it is trained
(``UnfoldedModel.training_step``): y for deblurring (and JPEG, whose y is an image), and for SR and inpainting
the blend b sqrt(1 - abar_t) + sqrt(abar_t) x_t sigma_y, over sqrt(sigma_y^2 + 1 - abar_t), with
b = H^T up(y) (SR: bilinear up-sampling, then the adjoint of the filter) or A^T y (inpainting), recomputed at
every sampler step since it carries x_t. The official sampler at HEAD also blends for deblurring (unlike its
training): ``'blend'`` runs that form. ``'pinv'`` is the paper's f_psi without RAM, the truncated A^dagger y;
``'ram'`` the RAM network f_psi(x_t, y), ``priors/ram.py``, run once per sampler step.
sigma_t = sqrt(1 - abar_t) / sqrt(abar_t) in the modules. Sampler (Algorithm 1): x_{t_N} ~ N(0, I); for n = N..1: x0_hat = modules(x_{t_n}, y), then the official code's
DDIM step (eta = 0.8) on the grid t_i = int((i / N)^2 1000). NFE = K x N (9 for K = N = 3), plus N with RAM (12).

The two quadratic terms in u are one: |u - m|^2 / (2 tau^2), so the module's data step is the
operator's own prox (exact on every linear operator: the official code solves it in closed form on Gaussian
blurs and inpainting but takes 5 normalised gradient steps on other blurs, ``Deblurring.mean_estimate``; here
the uniform blur gets the exact minimiser too, a deliberate choice). Units follow the official code: [-1, 1]
images, sigma_y doubled (floored at 1e-3 here). On JPEG, which has no
closed-form prox, the official code (``physics/physics.py``, ``JPEG.mean_estimate``) takes 3 Adam steps from
the decoded y; here the operator's prox runs its gradient steps close to the minimiser the module's equation
asks for (a deliberate choice: the same data step on every operator).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ipbench.physics.base import standard_normal
from ipbench.priors.diffusion import add_noise, eps_from_x0, tweedie
from ipbench.priors.ram import back_projection
from ipbench.priors.schedules import betas

PAPER_NAME = "UD2M"


def time_grid(N: int, T: int = 1000) -> list[int]:
    """t_i = int((i sqrt(T) / N)^2), i = 1..N, the last minus one, in decreasing order: the official
    ``get_seq_progress_seq`` computed as it does (numpy, squares of a linspace of sqrt(T)), which rounds
    one step below the exact (i / N)^2 T for some i (N = 5: 39, 159 and 639, not 40, 160 and 640)."""
    grid = [int(s) for s in np.square(np.linspace(0, T**0.5, N + 1)[1:])]
    grid[-1] -= 1
    return grid[::-1]


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


WARM_STARTS = ("official", "y", "blend", "pinv", "ram")
PER_STEP = ("blend", "ram")                                   # warm starts that carry x_t


def official_warm_start(op) -> str:
    """What the official code trains with, without RAM: the blend for SR and inpainting, y otherwise."""
    return "blend" if getattr(op, "name", None) in ("downsampling", "inpainting") else "y"


def blend(y, op, x_t, abar_t) -> torch.Tensor:
    """(b sqrt(1 - abar_t) + sqrt(abar_t) x_t sigma_y) / sqrt(sigma_y^2 + 1 - abar_t) in [-1, 1] units."""
    y_pm, _ = op.signed(y, x_t.shape)
    b = op.filter_adjoint(F.interpolate(y_pm, size=x_t.shape[-2:], mode="bilinear")) \
        if hasattr(op, "filter_adjoint") else op.A_adjoint(y_pm)
    sigma_y, sigma_t = 2 * max(op.sigma_y, 1e-3), (1 - abar_t).sqrt()          # as the modules' sigma_y
    return (b * sigma_t + abar_t.sqrt() * x_t * sigma_y) / (sigma_y**2 + sigma_t**2).sqrt()


def f_psi(y, op, kind: str = "official", x_t=None, t=None, ram=None, abar=None) -> torch.Tensor:
    """x^(0) in [-1, 1] (see the module docstring): 'official', 'y', 'blend' (needs x_t, t and abar),
    'pinv', or 'ram' (needs x_t, t and the network)."""
    if kind not in WARM_STARTS:
        raise ValueError(f"unknown warm_start {kind!r}; valid: {', '.join(map(repr, WARM_STARTS))}")
    kind = official_warm_start(op) if kind == "official" else kind
    if kind == "ram":
        if ram is None:
            raise ValueError("warm_start 'ram' needs a RAM network: an adapter distilled with it, or `ram: <checkpoint>`")
        return ram(x_t, t, y, op)
    if kind == "blend":
        return blend(y, op, x_t, abar.to(x_t)[t])
    if kind == "y" and y.shape[-2:] != (x_t.shape[-2:] if x_t is not None else y.shape[-2:]):
        raise ValueError(f"warm_start 'y' needs a measurement of the image's size; {op.name} gives {tuple(y.shape)}")
    return back_projection(y, op) if kind == "pinv" else 2 * y.clamp(0, 1) - 1


def adapt(prior, adapter: str, K: int) -> tuple[float, str]:
    """Put a shipped UD2M distillation on the prior (in place, once; with its fine-tuned RAM network as
    ``prior.ram`` if it was distilled with one); return its learnt lambda and its warm start."""
    from ipbench.priors.lora import load_adapter
    from ipbench.store.catalog import resolve
    ck = resolve(adapter)
    psi, card = load_adapter(prior, ck)
    if card.get("K") != K:
        raise ValueError(f"adapter {adapter!r} was distilled for K = {card.get('K')} modules, not K = {K}")
    if card.get("warm_start") == "ram":
        from ipbench.priors.ram import load_ram
        prior.ram = load_ram(ck, counter=prior)
    return psi["lam"], card.get("warm_start", "pinv")


@torch.no_grad()
def solve(y, op, prior, *, generator=None, K: int = 3, N: int = 3, eta: float = 0.8, lam: float = 1.0,
          warm_start: str = "official", adapter: str | None = None, ram: str | None = None) -> torch.Tensor:
    """``adapter``: a shipped UD2M distillation (LoRA + learnt lambda, ``training/ud2m_distill.py``, and the
    RAM network it was fine-tuned with) put on the prior; without it the modules run the plain prior (an
    untrained UD2M). ``ram``: a shipped RAM network for ``warm_start='ram'`` without such an adapter."""
    if K < 1 or N < 1:
        raise ValueError(f"UD2M needs K >= 1 and N >= 1, got K={K}, N={N}")
    if adapter is not None:
        lam, warm_start = adapt(prior, adapter, K)
    if ram is not None and getattr(prior, "ram", None) is None:
        from ipbench.priors.ram import load_ram
        from ipbench.store.catalog import resolve
        prior.ram = load_ram(resolve(ram), counter=prior)
    abar, beta = prior.abar.to(y), betas().to(y)
    ts = time_grid(N)
    kind = official_warm_start(op) if warm_start == "official" else warm_start
    x_t = standard_normal(op.A_adjoint(y).shape if hasattr(op, "A_adjoint") else y.shape, generator,
                          dtype=y.dtype, device=y.device)
    x_init = None if kind in PER_STEP else f_psi(y, op, kind, x_t)
    for i, t in enumerate(ts):
        if kind in PER_STEP:
            x_init = f_psi(y, op, kind, x_t, t, getattr(prior, "ram", None), abar)
        x0_raw = unfolded_modules(x_t, t, y, op, prior, K, generator, lam, x_init)
        x0_hat = x0_raw.clamp(-1, 1)
        if i == len(ts) - 1:
            return ((x0_hat + 1) / 2).clamp(0, 1)
        t_next = ts[i + 1]
        eps_hat = eps_from_x0(x_t, x0_raw, abar[t])              # from the unclamped output, as the official code
        s = eta * ((1 - abar[t_next]) / (1 - abar[t])).sqrt() * beta[t].sqrt()      # the official eta_sigma
        z1, z2 = (standard_normal(x_t.shape, generator, dtype=y.dtype, device=y.device) for _ in range(2))
        x_t = (abar[t_next].sqrt() * x0_hat + (1 - abar[t_next] - s**2).clamp_min(0).sqrt() * eps_hat
               + s * z1 + s * (1 - abar[t_next]).sqrt() * z2)
