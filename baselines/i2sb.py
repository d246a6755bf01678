"""I2SB (Liu, Vahdat, Huang, Theodorou, Nie, Anandkumar; ICML 2023): a Schroedinger bridge from the degraded
image to the clean one, learnt from (clean, degraded) pairs of the task (``priors/bridge.py``).

    x_N = x_1 (y at the image size);  for n -> n':  x0_hat = x_n - sigma_n eps_theta(x_n, n),
    x_n' = (1 - s) x0_hat + s x_n + sqrt(sigma_n'^2 (sigma_n^2 - sigma_n'^2) / sigma_n^2) z,  s = sigma_n'^2 / sigma_n^2

No operator at test time. NFE = ``nfe`` (999 by default, the official code's ``interval - 1``; the UD2M
table lists 1000).
"""
from __future__ import annotations

import torch

from ipbench.physics.base import standard_normal
from ipbench.priors.bridge import bridge_sample, degraded_image

PAPER_NAME = "I2SB"


def solve(y, op, prior, *, generator=None, nfe: int = 999, correct=None) -> torch.Tensor:
    x1 = degraded_image(y, op.A_dagger(y).shape)
    noise = lambda: standard_normal(x1.shape, generator, dtype=x1.dtype, device=x1.device)
    return ((bridge_sample(prior, x1, nfe, noise, correct) + 1) / 2).clamp(0, 1)
