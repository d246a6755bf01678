"""PSLD (Rout et al., NeurIPS 2023): latent DDIM steps corrected by the gradient of a measurement term
and of a "gluing" term that keeps D(z0_hat) consistent with the encoder on the range of A^T.

    z0_hat = tweedie(z_t, eps(z_t, t, c));  z' = DDIM(z0_hat, eps; eta = 0);  x0_hat = D(z0_hat)
    z_{t-1} = z' - grad_{z_t} [ omega |y - A x0_hat| + gamma |E(A^T y + (I - A^T A) x0_hat) - z0_hat| ]

1000 DDIM steps (NFE 1000); gamma = 0.1, omega = 1 (the official defaults). Norms are not squared,
as the official code. Residuals are taken on [0, 1] images (the official code's y and A act on
[-1, 1] ones, so its omega is half of omega here at equal effect). The official code runs the
UNet twice per step for an empty-prompt CFG batch; here one conditioned pass. LDPS is gamma = 0.
"""
from __future__ import annotations

import torch

from methods.latino import GENERIC_PROMPT
from priors.diffusion import ddim_step, descending_steps, tweedie

PAPER_NAME = "PSLD"
USES_PRIOR = "latent"


def latent_posterior_sampling(y, op, prior, generator, prompts, steps: int, omega: float, gamma: float,
                              update_prompt=None):
    """The LDPS / PSLD loop (gamma = 0 is LDPS). ``update_prompt(z_t, t, c) -> c``, called before each
    step, lets P2L move the prompt embedding."""
    B = y.shape[0]
    c = prior.embed(list(prompts or [GENERIC_PROMPT] * B))
    z = prior.noise_like_latents(op, y, generator)
    Aty = op.A_adjoint(y) if gamma else None
    for t, a_t, a_next in descending_steps(prior.abar, steps):
        if update_prompt is not None:
            c = update_prompt(z, t, c)
        with torch.enable_grad():
            z_in = z.detach().requires_grad_(True)
            eps = prior.eps(z_in, t, c)
            z0 = tweedie(z_in, eps, a_t)
            x0 = prior.decode(z0)
            Ax0 = op.A(x0)
            loss = omega * (y - Ax0).flatten(1).norm(dim=1)
            if gamma:
                glued = prior.encode((Aty + x0 - op.A_adjoint(Ax0)).clamp(0, 1))
                loss = loss + gamma * (glued - z0).flatten(1).norm(dim=1)
            grad, = torch.autograd.grad(loss.sum(), z_in)
        z = (ddim_step(z0.detach(), eps.detach(), a_t, a_next) - grad).detach()
    return prior.decode(z).clamp(0, 1)


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, steps: int = 1000, omega: float = 1.0,
          gamma: float = 0.1) -> torch.Tensor:
    return latent_posterior_sampling(y, op, prior, generator, prompts, steps, omega, gamma)
