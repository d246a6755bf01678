"""DPS (Chung et al., ICLR 2023): ancestral DDPM steps with a likelihood gradient through the denoiser.

    x0_hat = clip(tweedie(x_i)),  x'_{i-1} = mu_tilde(x0_hat, x_i) + sigma_tilde_i z,
    x_{i-1} = x'_{i-1} - zeta grad_{x_i} |y - A((x0_hat + 1) / 2)|

on all 1000 steps (1000 NFE, each a forward and a backward pass; ``steps`` < 1000 strides the chain, with
beta_t = 1 - abar_t / abar_{t - stride}). The norm is not squared, as the official code
(``guided_diffusion/condition_methods.py``, ``PosteriorSampling``), and is taken in its [-1, 1] units
(``op.residual_pm``), so zeta is the official ``scale``. The DDPM variance is the fixed posterior
variance beta_tilde (the embedded prior does not learn its variance).
"""
from __future__ import annotations

import torch

from ipbench.physics.base import standard_normal
from ipbench.priors.diffusion import tweedie

PAPER_NAME = "DPS"


def solve(y, op, prior, *, generator=None, zeta: float = 0.6, steps: int = 1000, x_shape=None) -> torch.Tensor:
    x_shape = x_shape or op.A_dagger(y).shape
    abar = prior.abar.to(y)
    stride = len(abar) // steps
    ts = list(range(len(abar) - stride, -1, -stride))        # 999, 998, ..., 0 at 1000 steps (the paper's)
    x = standard_normal(x_shape, generator, dtype=y.dtype, device=y.device)
    for t in ts:
        a, a_prev = abar[t], abar[t - stride] if t > 0 else torch.ones((), dtype=y.dtype)
        beta_t = 1 - a / a_prev                               # beta_t itself at stride 1
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            x0_hat = tweedie(x_in, prior.eps(x_in, t), a).clamp(-1, 1)
            residual = op.residual_pm((x0_hat + 1) / 2, y).flatten(1).norm(dim=1)
            grad, = torch.autograd.grad(residual.sum(), x_in)
        x0_hat = x0_hat.detach()
        mean = (a_prev.sqrt() * beta_t / (1 - a)) * x0_hat + ((1 - beta_t).sqrt() * (1 - a_prev) / (1 - a)) * x
        if t > 0:
            mean = mean + ((1 - a_prev) / (1 - a) * beta_t).sqrt() * standard_normal(x_shape, generator, dtype=y.dtype,
                                                                                       device=y.device)
        x = (mean - zeta * grad).detach()
    return ((x + 1) / 2).clamp(0, 1)
