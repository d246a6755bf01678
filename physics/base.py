"""Forward operators y = A(x) + sigma_y * n, after deepinv's physics (LinearPhysics, DecomposablePhysics).

Three levels:

* :class:`Operator` -- any differentiable forward map (JPEG); ``prox`` by gradient steps.
* :class:`LinearOperator` -- adds ``A_adjoint``; ``prox`` and ``A_dagger`` by conjugate gradients.
* :class:`SVDOperator` -- adds an SVD A = U diag(s) V^T; ``prox`` and ``A_dagger`` in closed form.

``prox(u, y, gamma) = argmin_x gamma/2 |A x - y|^2 + 1/2 |x - u|^2`` everywhere.
Images are batches ``(B, C, H, W)`` (video ``(B, T, C, H, W)``); every reduction is per item.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

Generators = "torch.Generator | Sequence[torch.Generator] | None"  # one per item, shared, or none


def batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item inner product <a_i, b_i>, shaped (B, 1, ..., 1) for broadcasting."""
    dims = tuple(range(1, a.ndim))
    return (a * b).sum(dim=dims, keepdim=True)


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       x0: torch.Tensor | None = None, max_iter: int = 100,
                       tol: float = 1e-6) -> torch.Tensor:
    """Solve M x = b for a symmetric positive (semi-)definite M, independently per batch item."""
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x)
    p = r.clone()
    rs = batch_dot(r, r)
    b_norm = batch_dot(b, b).clamp_min(1e-30)
    for _ in range(max_iter):
        if bool((rs <= tol**2 * b_norm).all()):
            break
        Mp = apply(p)
        alpha = rs / batch_dot(p, Mp).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * Mp
        rs_new = batch_dot(r, r)
        p = r + (rs_new / rs.clamp_min(1e-30)) * p
        rs = rs_new
    return x


def standard_normal(shape: Sequence[int], generator: Generators = None, *,
                    dtype=torch.float32, device=None) -> torch.Tensor:
    """N(0, I) of ``shape``; with a list of generators, item i of the batch uses generator i.

    One generator per image makes an image's noise independent of the batch it runs in
    (EDM's StackedRandomGenerator).
    """
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(tuple(shape[1:]), generator=g, dtype=dtype, device=device)
                        for g in generator])


class Operator:
    """A forward model with additive Gaussian noise of std ``sigma_y`` (in [0, 1] image units)."""

    name = "operator"
    #: number of trailing dimensions of one item (C, H, W) for images
    item_ndim = 3

    def __init__(self, sigma_y: float = 0.0):
        if sigma_y < 0:
            raise ValueError(f"sigma_y must be >= 0, got {sigma_y}")
        self.sigma_y = float(sigma_y)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def measure(self, x: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        """y = A(x) + sigma_y * n, n ~ N(0, I) drawn from ``generator`` (one per item or shared)."""
        Ax = self.A(x)
        return Ax + self.sigma_y * standard_normal(Ax.shape, generator, dtype=Ax.dtype, device=Ax.device)

    def residual_pm(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A(x) - y in the units of the official codes, whose images and measurements live in [-1, 1]:
        2 (A(x) - y) for x in [0, 1]. Every residual-based step size (DPS's and CDDB's zeta, the omega of
        LDPS / PSLD / P2L, LATINO's residual rule) is applied to this, so a config value means the paper's."""
        return 2 * (self.A(x) - y)

    def data_fidelity(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-item 1/2 |A x - y|^2."""
        r = self.A(x) - y
        return 0.5 * r.pow(2).flatten(1).sum(1)

    def A_dagger(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no pseudo-inverse")

    def prox(self, u: torch.Tensor, y: torch.Tensor, gamma: float | torch.Tensor,
             n_iter: int = 50) -> torch.Tensor:
        """argmin_x gamma/2 |A x - y|^2 + 1/2 |x - u|^2 by gradient descent (nonlinear A).

        The step 1/(1 + gamma L) uses L = 1, which holds for the non-expansive operators here. Where
        gradients are on (a distillation through the prox), the result is differentiable in u and gamma
        through its last step only, with the iterate before it held fixed (Jacobian-free backpropagation):
        at the fixed point this is exact when A's Jacobian is the identity (as JPEG's is with rounding
        passed straight through), and costs no unrolled graph.
        """
        gamma = torch.as_tensor(gamma, dtype=u.dtype, device=u.device)
        step = 1.0 / (1.0 + gamma)
        track = torch.is_grad_enabled()
        x = u.detach().clone()
        for k in range(n_iter):
            with torch.enable_grad():
                x.requires_grad_(True)
                g, = torch.autograd.grad(self.data_fidelity(x, y).sum(), x)
            x = x.detach()
            with torch.set_grad_enabled(track and k == n_iter - 1):   # a graph for the last step only
                x = x - step * (gamma * g + x - u)
        return x


class LinearOperator(Operator):
    """A linear forward model: ``A_adjoint``, CG-based ``prox`` and least-squares ``A_dagger``."""

    cg_max_iter = 200
    cg_tol = 1e-7

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def AtA(self, x: torch.Tensor) -> torch.Tensor:
        return self.A_adjoint(self.A(x))

    def prox(self, u, y, gamma, n_iter: int | None = None):
        gamma = torch.as_tensor(gamma, dtype=u.dtype, device=u.device)
        b = gamma * self.A_adjoint(y) + u
        return conjugate_gradient(lambda v: gamma * self.AtA(v) + v, b, x0=u,
                                  max_iter=n_iter or self.cg_max_iter, tol=self.cg_tol)

    def A_dagger(self, y: torch.Tensor, rcond: float = 0.0) -> torch.Tensor:
        """Minimum-norm least-squares solution (CG on the normal equations from 0)."""
        b = self.A_adjoint(y)
        return conjugate_gradient(self.AtA, b, max_iter=self.cg_max_iter, tol=self.cg_tol)

    def svd(self) -> "SVDOperator | None":
        return None

    def signed(self, y: torch.Tensor, x_shape) -> tuple[torch.Tensor, float]:
        """The measurement of x' = 2 x - 1 (the [-1, 1] range of diffusion priors): (2 y - A 1, 2 sigma_y)."""
        ones = torch.ones((1, *x_shape[1:]), dtype=y.dtype, device=y.device)
        return 2 * y - self.A(ones), 2 * self.sigma_y


class SVDOperator(LinearOperator):
    """A = U diag(s) V^T with orthogonal U, V (deepinv's DecomposablePhysics).

    Subclasses give ``V_adjoint`` (x -> spectral coefficients, same shape as x), ``V``,
    ``U_adjoint`` (y -> coefficients in the spectral shape of x, zero where s = 0), ``U``,
    and ``singulars`` broadcastable to the spectral shape (zero on the null space).
    """

    def V_adjoint(self, x):
        raise NotImplementedError

    def V(self, c):
        raise NotImplementedError

    def U_adjoint(self, y):
        raise NotImplementedError

    def U(self, c):
        raise NotImplementedError

    @property
    def singulars(self) -> torch.Tensor:
        raise NotImplementedError

    def singulars_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.singulars.to(dtype=x.dtype, device=x.device)

    def A(self, x):
        return self.U(self.singulars_like(x) * self.V_adjoint(x))

    def A_adjoint(self, y):
        return self.V(self.singulars_like(y) * self.U_adjoint(y))

    def prox(self, u, y, gamma, n_iter=None):
        s = self.singulars_like(u)
        gamma = torch.as_tensor(gamma, dtype=u.dtype, device=u.device)
        c = (gamma * s * self.U_adjoint(y) + self.V_adjoint(u)) / (gamma * s**2 + 1)
        return self.V(c)

    def A_dagger(self, y, rcond: float = 0.0):
        """Truncated pseudo-inverse: singular values <= rcond * max(s) are treated as zero."""
        s = self.singulars_like(y)
        keep = s > rcond * s.max()
        inv = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
        return self.V(inv * self.U_adjoint(y))

    def svd(self):
        return self
