"""Differentiable JPEG compression at a quality factor (baseline IJG/libjpeg pipeline).

x in [0, 1] -> level shift -> 8 x 8 orthonormal DCT-II -> quantise with the IJG tables scaled
by the quality factor -> de-quantise -> inverse DCT. Colour images go through JFIF YCbCr with
4:2:0 chroma averaging (nearest-neighbour up-sampling on decoding). Rounding uses the
straight-through estimator: exact forward value, identity gradient, so gradient-based solvers
(DPS, prox by gradient steps) can differentiate through it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Operator

LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float64)
CHROMA = torch.full((8, 8), 99.0, dtype=torch.float64)
CHROMA[:4, :4] = torch.tensor([[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]])


def quality_table(base: torch.Tensor, quality: int) -> torch.Tensor:
    """IJG scaling of a quantisation table (``jpeg_set_quality``)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return torch.clamp(torch.floor((base * scale + 50) / 100), 1, 255)


def dct_matrix(n: int = 8) -> torch.Tensor:
    k, i = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    D = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    D[0] /= math.sqrt(2)
    return D


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _blocks_roundtrip(plane: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Quantise one (B, H, W) plane in [0, 255] block-wise and decode it."""
    B, H, W = plane.shape
    D = dct_matrix().to(plane)
    blocks = (plane - 128).reshape(B, H // 8, 8, W // 8, 8).transpose(2, 3)  # (B, h, w, 8, 8)
    coef = D @ blocks @ D.T
    coef = round_ste(coef / Q.to(plane)) * Q.to(plane)
    out = D.T @ coef @ D + 128
    return out.transpose(2, 3).reshape(B, H, W)


class JPEG(Operator):
    """y = decode(encode_q(x)) + sigma_y n for (B, C, H, W) images with C in {1, 3}, H, W multiples of 16."""

    name = "jpeg"

    def __init__(self, quality: int, sigma_y: float = 0.0):
        super().__init__(sigma_y)
        self.quality = quality
        self.Q_luma, self.Q_chroma = quality_table(LUMA, quality), quality_table(CHROMA, quality)

    def A(self, x):
        B, C, H, W = x.shape
        if H % 16 or W % 16:
            raise ValueError(f"JPEG needs sizes that are multiples of 16, got {H}x{W}")
        x255 = x.clamp(0, 1) * 255
        if C == 1:
            out = _blocks_roundtrip(x255[:, 0], self.Q_luma).unsqueeze(1)
        elif C == 3:
            r, g, b = x255.unbind(1)
            Y = 0.299 * r + 0.587 * g + 0.114 * b
            Cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
            Cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
            Y = _blocks_roundtrip(Y, self.Q_luma)
            chroma = F.avg_pool2d(torch.stack([Cb, Cr], 1), 2)
            chroma = torch.stack([_blocks_roundtrip(c, self.Q_chroma) for c in chroma.unbind(1)], 1)
            Cb, Cr = F.interpolate(chroma, scale_factor=2, mode="nearest").unbind(1)
            out = torch.stack([Y + 1.402 * (Cr - 128),
                               Y - 0.344136 * (Cb - 128) - 0.714136 * (Cr - 128),
                               Y + 1.772 * (Cb - 128)], 1)
        else:
            raise ValueError(f"JPEG takes 1 or 3 channels, got {C}")
        return (out / 255).clamp(0, 1)

    def A_dagger(self, y, rcond: float = 0.0):
        """The decoded image is the natural estimate: JPEG has no pseudo-inverse."""
        return y
