"""ADMM-TV: the total-variation baseline of LVTINO's tables, here per image (or per video).

    x^* = argmin_x 1/2 |A x - y|^2 + lam TV(x), split as x = z (Boyd et al. 2011):
    x <- prox_{f / rho}(z - u),   z <- prox_{(lam / rho) TV}(x + u),   u <- u + x - z.

The data step is the operator's own prox (closed form through the SVD, or gradient steps for
JPEG); the TV step is Chambolle's projection, warm-started. No network: NFE = 0.
"""
from __future__ import annotations

import torch

from ipbench.priors.tv import tv_prox

PAPER_NAME = "ADMM-TV"


@torch.no_grad()
def solve(y: torch.Tensor, op, prior=None, *, generator=None, lam: float = 2e-3, rho: float = 0.1,
          n_iter: int = 100, tv_iter: int = 20, x0: torch.Tensor | None = None) -> torch.Tensor:
    if lam < 0 or rho <= 0 or n_iter < 1:
        raise ValueError(f"ADMM-TV needs lam >= 0, rho > 0, n_iter >= 1 (got {lam}, {rho}, {n_iter})")
    dims = (-4, -2, -1) if getattr(op, "item_ndim", 3) == 4 else (-2, -1)
    x = op.A_dagger(y, rcond=0.03) if x0 is None else x0
    z, u, p = x.clone(), torch.zeros_like(x), None
    for _ in range(n_iter):
        x = op.prox(z - u, y, 1.0 / rho)
        z, p = tv_prox(x + u, lam / rho, dims, tv_iter, p)
        u = u + x - z
    return z.clamp(0, 1)
