"""ADMM-TV: the total-variation baseline of LVTINO's tables, here per image (or per video).

    x^* = argmin_x 1/2 |A x - y|^2 + lam TV(x), split as x = z (Boyd et al. 2011):
    x <- prox_{f / rho}(z - u),   z <- prox_{(lam / rho) TV}(x + u),   u <- u + x - z.

The data step is the operator's own prox (closed form through the SVD, or gradient steps for
JPEG); the TV step is Chambolle's projection, warm-started. No network: NFE = 0.
"""
from __future__ import annotations

import torch

from ipbench.priors.tv import admm_tv

PAPER_NAME = "ADMM-TV"


@torch.no_grad()
def solve(y: torch.Tensor, op, prior=None, *, generator=None, lam: float = 2e-3, rho: float = 0.1,
          n_iter: int = 100, tv_iter: int = 20, x0: torch.Tensor | None = None) -> torch.Tensor:
    return admm_tv(y, op, lam, rho, n_iter, tv_iter, x0)
