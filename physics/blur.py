"""Circular blurs with separable kernels, as deepinv's ``BlurFFT`` with ``gaussian_blur``.

The kernel of ``gaussian_blur(sigma)`` follows deepinv: 2 * int(sigma / 0.3 + 1) + 1 taps,
exp(-x^2 / (2 sigma^2)), normalised; UD2M's "5 x 5, variance 3" is ``sigma = sqrt(3), size = 5``.
"""
from __future__ import annotations

import math

import torch

from .separable import KroneckerOperator, circulant


def gaussian_kernel_1d(sigma: float, size: int | None = None) -> torch.Tensor:
    if sigma <= 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    if size is None:
        size = 2 * int(sigma / 0.3 + 1) + 1
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-x**2 / (2 * sigma**2))
    return k / k.sum()


def box_kernel_1d(size: int) -> torch.Tensor:
    if size < 1:
        raise ValueError(f"box size must be >= 1, got {size}")
    return torch.full((size,), 1.0 / size, dtype=torch.float64)


class SeparableBlur(KroneckerOperator):
    """Circular 2-D convolution with the kernel k k^T on (..., H, W) images."""

    name = "blur"

    def __init__(self, kernel_1d: torch.Tensor, image_size: tuple[int, int], sigma_y: float = 0.0):
        H, W = image_size
        self.kernel_1d = kernel_1d
        super().__init__({-2: circulant(kernel_1d, H), -1: circulant(kernel_1d, W)}, sigma_y)

    @property
    def kernel_2d(self) -> torch.Tensor:
        return torch.outer(self.kernel_1d, self.kernel_1d)


def GaussianBlur(image_size, sigma: float, kernel_size: int | None = None, sigma_y: float = 0.0):
    """Circular Gaussian blur; ``sigma`` in pixels (deepinv's kernel unless ``kernel_size``)."""
    return SeparableBlur(gaussian_kernel_1d(sigma, kernel_size), image_size, sigma_y)


def UniformBlur(image_size, kernel_size: int, sigma_y: float = 0.0):
    """Circular box blur of ``kernel_size`` x ``kernel_size`` pixels."""
    return SeparableBlur(box_kernel_1d(kernel_size), image_size, sigma_y)


def variance_to_sigma(variance: float) -> float:
    return math.sqrt(variance)
