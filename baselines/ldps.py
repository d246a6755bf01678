"""LDPS (latent DPS, the baseline of PSLD, P2L and TReg): DPS in the latent space of a latent
diffusion model, z_{t-1} = DDIM(z_t) - omega grad_{z_t} |y - A(D(z0_hat(z_t)))|, 1000 steps
(NFE 1000), backpropagating through the UNet and the decoder. It is PSLD without the gluing term
(``baselines.psld.latent_posterior_sampling`` with gamma = 0).
"""
from __future__ import annotations

import torch

from .psld import latent_posterior_sampling

PAPER_NAME = "LDPS"


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, steps: int = 1000, omega: float = 1.0) -> torch.Tensor:
    return latent_posterior_sampling(y, op, prior, generator, prompts, steps, omega, gamma=0.0)
