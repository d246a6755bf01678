"""Total variation: finite differences and the proximal operator of the isotropic TV semi-norm.

``tv_prox(v, w)`` = argmin_z 1/2 |z - v|^2 + w TV(z), by Chambolle's (2004) dual projection,
warm-startable from the dual variable it returns. ``dims`` are the axes the gradient runs over:
(-2, -1) for images (B, C, H, W), (-4, -2, -1) for videos (B, T, C, H, W).
"""
from __future__ import annotations

import torch


def grad(x: torch.Tensor, dims=(-2, -1), out: torch.Tensor | None = None) -> torch.Tensor:
    """Forward differences (zero at the far boundary), stacked on a new leading axis; written into ``out``
    (shape (len(dims), *x.shape), not differentiable) when given."""
    if out is None:
        return torch.stack([torch.cat([x.diff(dim=d), torch.zeros_like(x.narrow(d, 0, 1))], dim=d) for d in dims])
    for o, d in zip(out, dims):
        n = x.shape[d]
        torch.sub(x.narrow(d, 1, n - 1), x.narrow(d, 0, n - 1), out=o.narrow(d, 0, n - 1))
        o.narrow(d, n - 1, 1).zero_()
    return out


def div(p: torch.Tensor, dims=(-2, -1), out: torch.Tensor | None = None) -> torch.Tensor:
    """Discrete divergence, the negative adjoint of ``grad`` (written into ``out`` when given)."""
    out = torch.zeros_like(p[0]) if out is None else out.zero_()
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
        return v.clone(), torch.zeros((len(dims), *v.shape), dtype=v.dtype, device=v.device)
    tau = 1.0 / (4 * len(dims))
    p = torch.zeros((len(dims), *v.shape), dtype=v.dtype, device=v.device) if p is None else p.clone()
    g, d, norm, v_w = torch.empty_like(p), torch.empty_like(v), torch.empty_like(v), v / w
    for _ in range(n_iter):                     # p <- (p + tau g) / (1 + tau |g|),  g = grad(div p - v / w)
        grad(div(p, dims, out=d).sub_(v_w), dims, out=g)
        torch.mul(g[0], g[0], out=norm)
        for gd in g[1:]:
            norm.addcmul_(gd, gd)
        p.add_(g, alpha=tau).div_(norm.sqrt_().mul_(tau).add_(1))
    return v - w * div(p, dims, out=d), p


def l2_tv_pdhg(op, y: torch.Tensor, x0: torch.Tensor, lam: float, dims=(-4,), n_iter: int = 200,
               tau: float = 0.25, sigma: float = 0.25, theta: float = 1.0) -> torch.Tensor:
    """argmin_x 1/2 |A x - y|^2 + lam |D x|_1 (anisotropic over ``dims``; LVTINO's time TV: dims=(-4,)) by
    Chambolle-Pock from x0, duals at zero, as the official ``solve_l2_tv``:
    p <- (p + sigma (A xbar - y)) / (1 + sigma),  q <- clip(q + sigma D xbar, +-lam),
    x' <- x - tau (A^T p + D^T q),  xbar <- x' + theta (x' - x)."""
    x, xbar = x0.clone(), x0.clone()
    p, q = torch.zeros_like(y), torch.zeros_like(grad(x0, dims))
    for _ in range(n_iter):
        p = (p + sigma * (op.A(xbar) - y)) / (1 + sigma)
        q = (q + sigma * grad(xbar, dims)).clamp(-lam, lam)
        x_new = x - tau * (op.A_adjoint(p) - div(q, dims))
        xbar, x = x_new + theta * (x_new - x), x_new
    return x


def l2_tv_adam(op, y: torch.Tensor, x0: torch.Tensor, lam: float, dims=(-4, -2, -1), n_iter: int = 55,
               lr: float = 0.019848, eps_tv: float = 1e-2, bounds=(-1.0, 1.0)) -> torch.Tensor:
    """argmin_x 1/2 |A x - y|^2 + lam sum sqrt(|D x|^2 + eps_tv^2) (isotropic over ``dims``) by Adam from x0,
    clipped to ``bounds`` after each step, as the official ``solve_l2_tv3_adam_autograd``."""
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    with torch.enable_grad():
        for _ in range(n_iter):
            loss = 0.5 * (op.A(x) - y).pow(2).sum() + lam * (grad(x, dims).pow(2).sum(0) + eps_tv**2).sqrt().sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(*bounds)
    return x.detach()


def admm_tv(y: torch.Tensor, op, lam: float = 2e-3, rho: float = 0.1, n_iter: int = 100, tv_iter: int = 20,
            x0: torch.Tensor | None = None) -> torch.Tensor:
    """argmin_x 1/2 |A x - y|^2 + lam TV(x) by ADMM (x = z): x <- prox_{f / rho}(z - u), z <- prox_{(lam / rho) TV}
    (x + u), u <- u + x - z; TV over (T, H, W) for videos (B, T, C, H, W), (H, W) for images. From A^dagger y."""
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
