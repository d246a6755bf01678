"""Total variation: finite differences and the proximal operator of the isotropic TV semi-norm.

``tv_prox(v, w)`` = argmin_z 1/2 |z - v|^2 + w TV(z), by Chambolle's (2004) dual projection,
warm-startable from the dual variable it returns. ``dims`` are the axes the gradient runs over:
(-2, -1) for images (B, C, H, W), (-4, -2, -1) for videos (B, T, C, H, W).
"""
from __future__ import annotations

import torch


def grad(x: torch.Tensor, dims=(-2, -1)) -> torch.Tensor:
    """Forward differences (zero at the far boundary), stacked on a new leading axis."""
    out = []
    for d in dims:
        dx = torch.zeros_like(x)
        n = x.shape[d]
        dx.narrow(d, 0, n - 1).copy_(x.narrow(d, 1, n - 1) - x.narrow(d, 0, n - 1))
        out.append(dx)
    return torch.stack(out)


def div(p: torch.Tensor, dims=(-2, -1)) -> torch.Tensor:
    """Discrete divergence, the negative adjoint of ``grad``."""
    out = torch.zeros_like(p[0])
    for pd, d in zip(p, dims):
        n = pd.shape[d]
        out.narrow(d, 0, n - 1).add_(pd.narrow(d, 0, n - 1))
        out.narrow(d, 1, n - 1).sub_(pd.narrow(d, 0, n - 1))
    return out


def tv(x: torch.Tensor, dims=(-2, -1)) -> torch.Tensor:
    """Isotropic TV of each batch item."""
    return grad(x, dims).pow(2).sum(0).sqrt().flatten(1).sum(1)


def tv_prox(v: torch.Tensor, w: float, dims=(-2, -1), n_iter: int = 20,
            p: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmin_z 1/2 |z - v|^2 + w TV(z), dual variable for a warm start)."""
    if w <= 0:
        return v.clone(), torch.zeros_like(grad(v, dims))
    tau = 1.0 / (4 * len(dims))
    p = torch.zeros_like(grad(v, dims)) if p is None else p
    for _ in range(n_iter):
        g = grad(div(p, dims) - v / w, dims)
        p = (p + tau * g) / (1 + tau * g.pow(2).sum(0, keepdim=True).sqrt())
    return v - w * div(p, dims), p
