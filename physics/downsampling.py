"""Super-resolution operators: block averaging (DDRM's ``sr{r}``) and bicubic filtering
(deepinv's ``Downsampling(filter='bicubic', padding='reflect')``, used by LATINO-PRO and TReg),
plus UD2M's MNIST operator (3 x 3 Gaussian blur then decimation ``[::4, ::4]``).
"""
from __future__ import annotations

import torch

from .blur import gaussian_kernel_1d
from .separable import KroneckerOperator, apply_along, block_average, filter_then_decimate


def bicubic_kernel_1d(factor: int) -> torch.Tensor:
    """deepinv's ``bicubic_filter``: Keys cubic (a = -0.5) sampled on 4 * factor taps."""
    x = (torch.arange(-2 * factor + 0.5, 2 * factor, 1.0, dtype=torch.float64) / factor).abs()
    a = -0.5
    w = ((a + 2) * x**3 - (a + 3) * x**2 + 1) * (x <= 1)
    w = w + (a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a) * ((x > 1) & (x < 2))
    return w / w.sum()


class Downsampling(KroneckerOperator):
    """(..., H, W) -> (..., H / factor, W / factor) by a separable filter then decimation."""

    name = "downsampling"

    def __init__(self, image_size, factor: int, filter: str = "block", sigma_y: float = 0.0,
                 padding: str = "reflect", blur_sigma: float | None = None, blur_size: int | None = None):
        H, W = image_size
        if factor < 1 or H % factor or W % factor:
            raise ValueError(f"factor {factor} must divide the image size {image_size}")
        self.factor, self.filter = factor, filter
        if filter == "block":
            mats = {-2: block_average(H, factor), -1: block_average(W, factor)}
        elif filter in ("bicubic", "gaussian"):
            k = bicubic_kernel_1d(factor) if filter == "bicubic" else gaussian_kernel_1d(blur_sigma, blur_size)
            mats = {-2: filter_then_decimate(k, H, factor, padding),
                    -1: filter_then_decimate(k, W, factor, padding)}
        else:
            raise ValueError(f"unknown downsampling filter {filter!r}; valid: 'block', 'bicubic', 'gaussian'")
        super().__init__(mats, sigma_y)
        # the filter H before decimation (A = decimate . H): n x n per axis; for blocks f B^T B, whose rows
        # f i are those of B
        if filter == "block":
            self._filter = {a: factor * M.T @ M for a, M in mats.items()}
        else:
            self._filter = {a: filter_then_decimate(k, n, 1, padding) for a, n in ((-2, H), (-1, W))}

    def filter_adjoint(self, u: torch.Tensor) -> torch.Tensor:
        """H^T u at full resolution: the adjoint of the filter alone (UD2M's SR warm start A^T(up(y)))."""
        for a, M in self._filter.items():
            u = apply_along(u, M.T, a)
        return u
