"""DiffPIR (Zhu et al., CVPR-W / NTIRE 2023): a denoising step, a closed-form data step, a
zeta-mixed re-noising, on 100 quadratically spaced steps from t = 999.

    x0 = D(x_t, t);  x0_hat = prox: argmin_x |y - A x|^2 + rho_t |x - x0|^2,  rho_t = lam sigma_n^2 / sigma_bar_t^2
    eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)
    x_{t-1} = sqrt(abar_{t-1}) x0_hat + sqrt(1 - abar_{t-1}) (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)

As the official code (``main_ddpir_deblur.py``, whose experiment loop runs lambda = 7, zeta = 0.3;
``main_ddpir_sisr.py`` sweeps lambda = 2..12 at zeta = 0.25; 100 NFE), the data step is solved on [0, 1]
images with sigma_n = max(0.001, sigma_y); the denoised estimate is clipped to [-1, 1]; at the last step
(t = 0) the denoiser is evaluated (it counts in the published 100 NFE) but neither the data step nor its
output is used: the official loop returns the iterate x_0 it reached.
"""
from __future__ import annotations

import numpy as np
import torch

from ipbench.physics.base import standard_normal
from ipbench.priors.diffusion import add_noise, eps_from_x0, tweedie

PAPER_NAME = "DiffPIR"


def quad_timesteps(n: int, T: int = 1000) -> list[int]:
    """t_i = T - 1 - seq_i with seq = int(sqrt(linspace(0, T^2, n))), its last entry minus one (skip_type
    'quad'): the official loop looks seq_i up in the *reversed* list of sigmas, so t runs 999, 899, 857, ...,
    5, 0 for n = 100, dense near t = 0 where the data step is strongest."""
    seq = [int(v) for v in np.sqrt(np.linspace(0, T**2, n))]
    seq[-1] -= 1
    return [T - 1 - s for s in seq]


@torch.no_grad()
def solve(y, op, prior, *, generator=None, steps: int = 100, lam: float = 7.0, zeta: float = 0.3) -> torch.Tensor:
    x_init = op.A_dagger(y, rcond=0.03)
    x_shape = x_init.shape
    abar = prior.abar.to(y)
    sigma_n = max(1e-3, op.sigma_y)
    ts = quad_timesteps(steps)
    noise = lambda: standard_normal(x_shape, generator, dtype=y.dtype, device=y.device)
    x_t = add_noise(2 * x_init.clamp(0, 1) - 1, noise(), abar[ts[0]])
    for i, t in enumerate(ts):
        x0 = tweedie(x_t, prior.eps(x_t, t), abar[t]).clamp(-1, 1)
        if i == len(ts) - 1:
            break
        sigma_bar2 = (1 - abar[t]) / abar[t]
        rho = lam * sigma_n**2 / sigma_bar2
        x0_hat = 2 * op.prox((x0 + 1) / 2, y, 1.0 / rho) - 1          # gamma / 2 |Ax - y|^2 + 1/2 |x - x0|^2
        eps_hat = eps_from_x0(x_t, x0_hat, abar[t])
        a_next = abar[ts[i + 1]]
        x_t = a_next.sqrt() * x0_hat + (1 - a_next).sqrt() * ((1 - zeta) ** 0.5 * eps_hat + zeta**0.5 * noise())
    return ((x_t + 1) / 2).clamp(0, 1)
