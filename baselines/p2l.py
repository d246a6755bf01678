"""P2L, prompt-tuning latent diffusion (Chung, Ye, Milanfar, Delbracio; ICML 2024): LDPS in which
the text embedding c is optimised on the fly, alternating with the latent update.

    c   <- Adam step on |y - A(D(z0_hat(z_t; c)))|^2 / m      (one UNet + decoder forward / backward)
    z_{t-1} = DDIM(z_t; eps(z_t, t, c)) - omega grad_{z_t} |y - A(D(z0_hat(z_t; c)))|   (LDPS step)

1000 steps x (1 prompt update + 1 sampling pass) = NFE 2000, the published P2L NFE, on the official
latent grid and with the LDPS step of ``baselines/psld.py`` (omega on the residual in the official [-1, 1]
units); the prompt loss is scale-free under Adam, so its units do not matter. There is no
official code; this follows the closest one (TReg's re-implementation, ``P2LSolver``): Adam with
lr 1e-4, one prompt step per diffusion step, no encoder-range projection. Unlike that code, the
sampling pass uses the tuned c (its w = 1 default silently samples with the null prompt). The
paper's projection frequency and number of prompt steps are not stated in the available sources.
"""
from __future__ import annotations

import torch

from ipbench.priors.diffusion import tweedie
from .psld import latent_posterior_sampling

PAPER_NAME = "P2L"


class PromptTuner:
    """``update_prompt`` of the LDPS loop: one Adam step per diffusion step on the token embeddings."""

    def __init__(self, y, op, prior, lr: float, prompt_steps: int = 1):
        self.y, self.op, self.prior, self.lr, self.prompt_steps = y, op, prior, lr, prompt_steps
        self.opt = None

    def __call__(self, z_t: torch.Tensor, t: int, abar_t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.opt is None:
            self.c = c.detach().clone().requires_grad_(True)
            self.opt = torch.optim.Adam([self.c], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.prompt_steps):
                x0 = self.prior.decode(tweedie(z_t.detach(), self.prior.eps(z_t.detach(), t, self.c), abar_t))
                loss = (self.y - self.op.A(x0)).pow(2).flatten(1).mean(1).sum()
                self.c.grad, = torch.autograd.grad(loss, self.c)       # the embedding's gradient only
                self.opt.step()
        return self.c.detach()


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, steps: int = 1000, omega: float = 1.0,
          lr: float = 1e-4, prompt_steps: int = 1) -> torch.Tensor:
    tuner = PromptTuner(y, op, prior, lr, prompt_steps)
    return latent_posterior_sampling(y, op, prior, generator, prompts, steps, omega, gamma=0.0, update_prompt=tuner)
