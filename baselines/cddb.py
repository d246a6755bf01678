"""CDDB (Chung, Kim, Ye; NeurIPS 2023): I2SB's bridge with a data-consistency step on each x0_hat,

    x0_hat <- x0_hat - zeta grad_{x0_hat} |A(x0_hat) - y|^2      (autograd through A only),

then I2SB's bridge posterior step (``baselines/i2sb.py``): the official ``dds_sampling``, which the
official code writes as posterior(x0_hat, x_n) - mu_{x0, n} zeta g. The squared residual is taken in the
official code's [-1, 1] units (``op.residual_pm``: four times the [0, 1] one), so zeta = 1 is the
official default.
"""
from __future__ import annotations

import torch

from . import i2sb

PAPER_NAME = "CDDB"


def solve(y, op, prior, *, generator=None, nfe: int = 999, zeta: float = 1.0) -> torch.Tensor:
    def correct(x0_hat):
        with torch.enable_grad():
            u = x0_hat.detach().requires_grad_(True)
            g, = torch.autograd.grad(op.residual_pm((u + 1) / 2, y).pow(2).sum(), u)
        return x0_hat - zeta * g

    return i2sb.solve(y, op, prior, generator=generator, nfe=nfe, correct=correct)
