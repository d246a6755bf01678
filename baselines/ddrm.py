"""DDRM (Kawar, Elad, Ermon, Song; NeurIPS 2022), on the operator's SVD A = U diag(s) V^T.

In spectral coordinates x_bar = V^T x (VE units, sigma_t = sqrt(1 - abar_t) / sqrt(abar_t)),
y_bar = U^T y / s, one step t -> t' with x0_bar = V^T x0_hat and eps_bar = V^T eps_hat is, per component:

    s = 0:                   x0_bar + sqrt(1 - eta^2) sigma_t' eps_bar + eta sigma_t' z
    s sigma_t' <  sigma_y:   x0_bar + sqrt(1 - eta^2) sigma_t' (y_bar - x0_bar) s / sigma_y + eta sigma_t' z
    s sigma_t' >= sigma_y:   (1 - eta_b) x0_bar + eta_b y_bar + sqrt(sigma_t'^2 - eta_b^2 sigma_y^2 / s^2) z

on 20 uniform steps (950, 900, ..., 0), eta = 0.85, eta_b = 1 (the paper and the official code). As the
official blur H-functions (``functions/svd_replacement.py``, ``Deblurring``: ZERO = 3e-2), a blur's 1-D
singular values below ``zero`` are set to zero but stay measured components: the official
``efficient_generalized_steps`` then takes its "less noisy than y" branch with s = 0, written here with
(y_bar - x0_bar) s = U^T y - s x0_bar: x0_bar + sqrt(1 - eta^2) sigma_t' (U^T y) / sigma_y + eta sigma_t' z
(``zero=0`` keeps every singular value). The official SR and inpainting H-functions have no threshold, nor
does it here.
"""
from __future__ import annotations

import torch

from ipbench.physics.base import standard_normal
from ipbench.priors.diffusion import tweedie

PAPER_NAME = "DDRM"


@torch.no_grad()
def solve(y, op, prior, *, generator=None, steps: int = 20, eta: float = 0.85, eta_b: float = 1.0,
          zero: float = 0.03, x_shape=None) -> torch.Tensor:
    svd = op.svd()
    if svd is None:
        raise ValueError(f"DDRM needs an operator with an SVD; {type(op).__name__} has none")
    x_shape = x_shape or op.A_dagger(y).shape
    y_s, sigma_y = op.signed(y, x_shape)
    s = svd.singulars_like(y_s).expand(x_shape[1:])
    measured = s > 0                                                       # components y sees
    if zero and "blur" in getattr(op, "name", "") and hasattr(svd, "axis_mask"):
        s = s * svd.axis_mask(zero).to(s)
    obs = s > 0
    U_t_y = svd.U_adjoint(y_s)
    y_bar = torch.where(obs, U_t_y / torch.where(obs, s, torch.ones_like(s)), torch.zeros_like(s))
    abar = prior.abar.to(y_s)
    ts = list(range(1000 - 1000 // steps, -1, -(1000 // steps)))              # 950, 900, ..., 0
    sig = lambda t: ((1 - abar[t]) / abar[t]).sqrt() if t >= 0 else torch.zeros((), dtype=y_s.dtype)
    # initialisation at sigma_T: the measured components keep y_bar plus the missing noise
    sigma_T = sig(ts[0])
    z = standard_normal(x_shape, generator, dtype=y_s.dtype, device=y_s.device)
    big = obs & (s * sigma_T > sigma_y)
    x_bar = torch.where(big, y_bar + (sigma_T**2 - sigma_y**2 / torch.where(big, s, 1) ** 2).clamp_min(0).sqrt() * z,
                        sigma_T * z)
    x_t = abar[ts[0]].sqrt() * svd.V(x_bar)
    for t, t_next in zip(ts, ts[1:] + [-1]):
        eps_hat = prior.eps(x_t, t)
        x0_bar = svd.V_adjoint(tweedie(x_t, eps_hat, abar[t]))
        eps_bar = svd.V_adjoint(eps_hat)
        s_next = sig(t_next)
        z = standard_normal(x_shape, generator, dtype=y_s.dtype, device=y_s.device)
        unobserved = x0_bar + (1 - eta**2) ** 0.5 * s_next * eps_bar + eta * s_next * z
        s_safe = torch.where(obs, s, torch.ones_like(s))
        noisy = x0_bar + (1 - eta**2) ** 0.5 * s_next * (U_t_y - s * x0_bar) / max(sigma_y, 1e-12) + eta * s_next * z
        clean = (1 - eta_b) * x0_bar + eta_b * y_bar + (s_next**2 - eta_b**2 * sigma_y**2 / s_safe**2).clamp_min(0).sqrt() * z
        x_bar = torch.where(~measured, unobserved, torch.where(s * s_next < sigma_y, noisy, clean))
        a_next = abar[t_next] if t_next >= 0 else torch.ones((), dtype=y_s.dtype)
        x_t = a_next.sqrt() * svd.V(x_bar)
    return ((x_t + 1) / 2).clamp(0, 1)
