"""Random inpainting y = m * x + noise, with a fixed Bernoulli mask (deepinv's ``Inpainting``).

The SVD is trivial (U = V = I, singular values = the mask): prox and A^dagger are diagonal.
"""
from __future__ import annotations

import torch

from .base import SVDOperator


class Inpainting(SVDOperator):
    name = "inpainting"

    def __init__(self, image_shape, keep: float, mask_seed: int = 0, sigma_y: float = 0.0):
        """``keep``: probability that a pixel is observed (0.3 for 'inpaint70'); one mask per task,
        shared by all channels and drawn from ``mask_seed``."""
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        super().__init__(sigma_y)
        C, H, W = image_shape
        g = torch.Generator().manual_seed(mask_seed)
        self.mask = (torch.rand(1, H, W, generator=g) < keep).to(torch.float64).expand(C, H, W).clone()

    def V_adjoint(self, x):
        return x

    V = U = U_adjoint = V_adjoint

    @property
    def singulars(self):
        return self.mask
