"""PSLD (Rout et al., NeurIPS 2023): latent DDIM steps corrected by the gradient of a measurement term
and of a "gluing" term that keeps D(z0_hat) consistent with the encoder on the range of A^T.

    z0_hat = tweedie(z_t, eps(z_t, t, c));  z' = DDIM(z0_hat, eps; eta = 0);  x0_hat = D(z0_hat)
    z_{t-1} = z' - grad_{z_t} [ omega |y - A x0_hat| + gamma |E(A^T y + (I - A^T A) x0_hat) - z0_hat| ]

1000 DDIM steps on the official grid (``priors.diffusion.ldm_steps``: UNet t = 1000 .. 1), NFE 1000;
gamma = 0.1, omega = 1 (the official defaults). Norms are not squared,
as the official code, and the measurement residual is in its [-1, 1] units (``op.residual_pm``), so
omega is the official omega; as the official code, the residual carries fresh measurement noise
(``noiser(A x0_hat) - y``) and the glued image is encoded unclamped. The gluing term differs from the official code's on purpose: it uses the
true A^T and I - A^T A where the official operators give a pseudo-transpose (e.g. the bicubic
up-sampling for SR); on the suite's Kronecker operators the true adjoint exists. The official code runs the
UNet twice per step for an empty-prompt CFG batch; here one conditioned pass. LDPS is gamma = 0.
"""
from __future__ import annotations

import torch

from ipbench.physics.base import standard_normal
from ipbench.priors.diffusion import ddim_step, ldm_steps, tweedie

PAPER_NAME = "PSLD"


def latent_posterior_sampling(y, op, prior, generator, prompts, steps: int, omega: float, gamma: float,
                              update_prompt=None):
    """The LDPS / PSLD loop (gamma = 0 is LDPS). ``update_prompt(z_t, t, abar_t, c) -> c``, called before
    each step, lets P2L move the prompt embedding."""
    B = y.shape[0]
    c = prior.embed(list(prompts or [prior.generic_prompt] * B))
    z = prior.noise_like_latents(op, y, generator)
    Aty = op.A_adjoint(y) if gamma else None
    for t, a_t, a_next in ldm_steps(prior.abar, steps):
        if update_prompt is not None:
            c = update_prompt(z, t, a_t, c)
        with torch.enable_grad():
            z_in = z.detach().requires_grad_(True)
            eps = prior.eps(z_in, t, c)
            z0 = tweedie(z_in, eps, a_t)
            x0 = prior.decode(z0)
            r = op.residual_pm(x0, y)            # the official noiser: fresh measurement noise in the norm
            r = r + 2 * op.sigma_y * standard_normal(r.shape, generator, dtype=r.dtype, device=r.device)
            loss = omega * r.flatten(1).norm(dim=1)
            if gamma:
                glued = prior.encode(Aty + x0 - op.A_adjoint(op.A(x0)))
                loss = loss + gamma * (glued - z0).flatten(1).norm(dim=1)
            grad, = torch.autograd.grad(loss.sum(), z_in)
        z = (ddim_step(z0.detach(), eps.detach(), a_t, a_next) - grad).detach()
    return prior.decode(z).clamp(0, 1)


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, steps: int = 1000, omega: float = 1.0,
          gamma: float = 0.1) -> torch.Tensor:
    return latent_posterior_sampling(y, op, prior, generator, prompts, steps, omega, gamma)
