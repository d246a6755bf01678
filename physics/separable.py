"""Separable linear operators: one dense 1-D matrix per axis (A = M_1 (x) M_2 (x) ...).

Circular blurs with separable kernels (Gaussian, box), block-average and bicubic
down-sampling, and the video operator (temporal pooling then spatial down-sampling) are all
Kronecker products of small 1-D matrices. The SVD of a Kronecker product is the Kronecker
product of the 1-D SVDs, so every such operator gets an exact SVD, a closed-form prox and a
pseudo-inverse for free (DDRM's ``H_functions`` use the same construction).

Where singular values repeat (a symmetric circular blur pairs frequencies k and n - k; block averaging has
one singular value), LAPACK may return any orthonormal basis of the repeated subspace, and which one
depends on the library build and the processor. Samplers that draw noise in spectral coordinates (DDRM)
would then give different images on different machines. ``canonical_svd`` therefore fixes one basis per
subspace, computed from the subspace alone, so the operator is the same everywhere (up to rounding).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import SVDOperator


def apply_along(x: torch.Tensor, M: torch.Tensor, axis: int) -> torch.Tensor:
    """Multiply every 1-D fibre of ``x`` along ``axis`` by the matrix ``M``."""
    return torch.movedim(torch.movedim(x, axis, -1) @ M.T.to(dtype=x.dtype, device=x.device), -1, axis)


def circulant(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """n x n matrix of the circular convolution with a centred 1-D kernel (odd length)."""
    L = kernel.numel()
    if L % 2 == 0:
        raise ValueError(f"kernel length must be odd for a centred circular blur, got {L}")
    M = torch.zeros(n, n, dtype=torch.float64)
    c = L // 2
    for i in range(n):
        for l in range(L):
            M[i, (i + l - c) % n] += kernel[l]
    return M


def block_average(n: int, factor: int) -> torch.Tensor:
    """(n / factor) x n matrix averaging disjoint blocks of ``factor`` samples."""
    if n % factor:
        raise ValueError(f"size {n} is not divisible by the factor {factor}")
    M = torch.zeros(n // factor, n, dtype=torch.float64)
    for i in range(n // factor):
        M[i, i * factor:(i + 1) * factor] = 1.0 / factor
    return M


def filter_then_decimate(kernel: torch.Tensor, n: int, factor: int, padding: str = "reflect") -> torch.Tensor:
    """Matrix of: pad, correlate with ``kernel`` ('same' size), keep samples 0, factor, 2 factor ...

    This is deepinv's ``Downsampling`` along one axis (conv with the filter, then ``[::factor]``).
    """
    L = kernel.numel()
    left, right = (L - 1) // 2, L // 2
    eye = torch.eye(n, dtype=torch.float64).unsqueeze(1)          # n signals of length n
    padded = F.pad(eye, (left, right), mode=padding)
    out = F.conv1d(padded, kernel.to(torch.float64).view(1, 1, -1))  # correlation, length n
    return out.squeeze(1).T[::factor].contiguous()                 # (n/factor) x n


def _canonical_basis(B: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of span(B) that depends on the subspace only: the QR factor (diag R > 0) of the
    projector B B^T applied to a fixed probe matrix with as many columns as B."""
    Q, R = torch.linalg.qr((B @ B.T) @ probe)
    return Q * torch.sign(torch.diagonal(R))


def _groups(s: torch.Tensor, tol: float) -> list[range]:
    """Runs of equal values (within ``tol``) in the non-increasing vector ``s``."""
    runs, start = [], 0
    for i in range(1, s.numel() + 1):
        if i == s.numel() or s[i - 1] - s[i] > tol:
            runs.append(range(start, i))
            start = i
    return runs


def canonical_svd(M: torch.Tensor, rtol: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """M = U diag(s) V^T (float64; U: m x m, s: n entries, zero past min(m, n), V: n x n) with a basis of each
    repeated singular subspace that does not depend on the LAPACK build: V's basis is canonical (see
    ``_canonical_basis``) and U's columns follow it (U_g <- U_g V_g^T V_g', so that M v = s u still holds).
    The left null space (m > n, or s = 0) gets its own canonical basis."""
    M = M.to(torch.float64)
    m, n = M.shape
    U, s, Vh = torch.linalg.svd(M, full_matrices=True)
    V = Vh.T.clone()
    s_full = torch.zeros(n, dtype=torch.float64)
    s_full[: s.numel()] = s
    tol = rtol * max(float(s_full[0]), 1.0)
    probe = torch.randn(max(m, n), max(m, n), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    left_null = [i for i in range(m) if i >= n or s_full[i] <= tol]
    for g in _groups(s_full, tol):
        idx = list(g)
        Vg = _canonical_basis(V[:, idx], probe[:n, idx])
        paired = [i for i in idx if i < m and s_full[i] > tol]
        if paired:
            U[:, paired] = U[:, paired] @ (V[:, paired].T @ Vg)
        V[:, idx] = Vg
    if left_null:
        U[:, left_null] = _canonical_basis(U[:, left_null], probe[:m, left_null])
    return U, s_full, V


class KroneckerOperator(SVDOperator):
    """x -> M_a x along each listed axis a (axes counted from the end, e.g. -1 for W).

    >>> op = KroneckerOperator({-2: block_average(8, 2), -1: block_average(8, 2)})
    >>> op.A(torch.ones(1, 1, 8, 8)).shape
    torch.Size([1, 1, 4, 4])
    """

    def __init__(self, matrices: dict[int, torch.Tensor], sigma_y: float = 0.0):
        super().__init__(sigma_y)
        self.matrices = {int(a): M.to(torch.float64) for a, M in matrices.items()}
        self._svd = {}
        for a, M in self.matrices.items():
            self._svd[a] = canonical_svd(M)
        self._singulars = None

    def _apply(self, x, which):
        for a, M in self.matrices.items():
            x = apply_along(x, which(a, M), a)
        return x

    def A(self, x):
        return self._apply(x, lambda a, M: M)

    def A_adjoint(self, y):
        return self._apply(y, lambda a, M: M.T)

    def V_adjoint(self, x):
        return self._apply(x, lambda a, M: self._svd[a][2].T)

    def V(self, c):
        return self._apply(c, lambda a, M: self._svd[a][2])

    def U_adjoint(self, y):
        c = self._apply(y, lambda a, M: self._svd[a][0].T)
        for a, M in self.matrices.items():                    # lift to the shape of x
            m, n = M.shape
            if n > m:
                shape = list(c.shape)
                shape[a] = n - m
                c = torch.cat([c, c.new_zeros(shape)], dim=a)
        return c

    def U(self, c):
        for a, M in self.matrices.items():
            c = c.narrow(a, 0, M.shape[0])
        return self._apply(c, lambda a, M: self._svd[a][0])

    @property
    def singulars(self):
        if self._singulars is None:
            ndim = max(abs(a) for a in self.matrices)
            s = torch.ones([1] * ndim, dtype=torch.float64)
            for a, (_, s_a, _) in self._svd.items():
                shape = [1] * ndim
                shape[a] = s_a.numel()
                s = s * s_a.view(shape)
            self._singulars = s
        return self._singulars

    def axis_mask(self, zero: float) -> torch.Tensor:
        """1 where every axis' 1-D singular value is >= ``zero``, else 0 (shaped as ``singulars``): DDRM's
        official blur H-functions treat 1-D singular values below ZERO = 3e-2 as zero."""
        ndim = max(abs(a) for a in self.matrices)
        mask = torch.ones([1] * ndim, dtype=torch.float64)
        for a, (_, s_a, _) in self._svd.items():
            shape = [1] * ndim
            shape[a] = s_a.numel()
            mask = mask * (s_a >= zero).to(torch.float64).view(shape)
        return mask

    def measurement_shape(self, x_shape):
        shape = list(x_shape)
        for a, M in self.matrices.items():
            shape[a] = M.shape[0]
        return tuple(shape)
