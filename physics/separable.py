"""Separable linear operators: one dense 1-D matrix per axis (A = M_1 (x) M_2 (x) ...).

Circular blurs with separable kernels (Gaussian, box), block-average and bicubic
down-sampling, and the video operator (temporal pooling then spatial down-sampling) are all
Kronecker products of small 1-D matrices. The SVD of a Kronecker product is the Kronecker
product of the 1-D SVDs, so every such operator gets an exact SVD, a closed-form prox and a
pseudo-inverse for free (DDRM's ``H_functions`` use the same construction).
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
            U, s, Vh = torch.linalg.svd(M, full_matrices=True)
            s_full = torch.zeros(M.shape[1], dtype=torch.float64)
            s_full[: s.numel()] = s
            self._svd[a] = (U, s_full, Vh.T)
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
