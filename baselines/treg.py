"""TReg, text regularisation of latent diffusion (Kim, Park, Chung, Ye; ICLR 2025): guided DDIM in
which every third step (k % 3 == 0, k < 170 of 200) is replaced by a data-consistency step, and the
null text embedding is tuned by adaptive negation (AN).

    eps = eps_uc + w (eps_c - eps_uc);  z0_hat = tweedie(z_t, eps);  x0_hat = D(z0_hat)
    x0y = CG_5[(A^T A + lambda I) x = A^T y + lambda x0_hat] from x0_hat;   z0y = E(x0y)
    AN:  10 Adam steps on uc minimising mean_tokens(phi(x0y) . uc)      (phi: the image tower)
    z_{t'} = sqrt(abar') zbar0 + (1 - abar') eps + sqrt((1 - abar') abar') n,
             zbar0 = abar' z0y + (1 - abar') z0_hat

Other steps are DDIM (eta = 0) with the guided eps; the output is D(z0_hat) of the last step.
200 steps on the official grid (``priors.diffusion.ldm_steps``: UNet t = 996, 991, ..., 1), NFE 200: the guided pair (conditional and null branch, batched) counts as one evaluation,
as in the published NFE. Defaults are the official ``solve.py``'s (w = 4, lambda = 1e-4, AN on,
fresh Adam per data-consistency step); the README's null_lr (5e-4 deblur, 1e-3 SR) is set per task
in the config. The image tower phi is the profile's image-text model (``prior.image_features``:
the digit-text similarity network here, CLIP ViT-L/14 in the paper profile).
"""
from __future__ import annotations

import torch

from ipbench.physics.base import conjugate_gradient, standard_normal
from ipbench.priors.diffusion import ddim_step, ldm_steps, tweedie

PAPER_NAME = "TReg"


def data_consistency(x0, y, op, lam: float, cg_steps: int) -> torch.Tensor:
    """CG_k on (A^T A + lambda I) x = A^T y + lambda x0_hat, started at x0_hat (early-stopped)."""
    return conjugate_gradient(lambda v: op.AtA(v) + lam * v, op.A_adjoint(y) + lam * x0, x0=x0,
                              max_iter=cg_steps, tol=0.0)


def adaptive_negation(uc: torch.Tensor, image_features: torch.Tensor, lr: float, iters: int,
                       eps: float = 1e-8) -> torch.Tensor:
    """Move the null embedding away from what the current estimate shows: ``iters`` Adam steps (fresh
    state, betas (0.9, 0.999), ``eps``) on L(uc) = mean_tokens(phi . uc).

    L is linear in uc, so its gradient g = phi / (B x tokens) is the same at every step and each of Adam's
    bias-corrected steps is exactly lr g / (|g| + eps): the steps are taken in closed form (the tests check
    it against ``torch.optim.Adam``)."""
    B, n_tokens = uc.shape[:2]
    g = (image_features / (B * n_tokens)).unsqueeze(1).expand_as(uc)
    return uc - iters * lr * g / (g.abs() + eps)


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, null_prompt: str = "", steps: int = 200,
          w: float = 4.0, cg_lambda: float = 1e-4, cg_steps: int = 5, dc_every: int = 3, dc_until: int = 170,
          adaptive_negation_on: bool = True, null_lr: float = 8e-4, null_iters: int = 10) -> torch.Tensor:
    B = y.shape[0]
    c = prior.embed(list(prompts or [prior.generic_prompt] * B))
    uc = prior.embed([null_prompt] * B)
    z = prior.noise_like_latents(op, y, generator)
    for k, (t, a_t, a_next) in enumerate(ldm_steps(prior.abar, steps)):
        eps = prior.eps_cfg(z, t, c, uc, w)
        z0 = tweedie(z, eps, a_t)
        if k % dc_every == 0 and k < dc_until:
            x0y = data_consistency(prior.decode(z0), y, op, cg_lambda, cg_steps).clamp(0, 1)
            z0y = prior.encode(x0y)
            if adaptive_negation_on:
                uc = adaptive_negation(uc, prior.image_features(x0y), null_lr, null_iters)
            zbar0 = a_next * z0y + (1 - a_next) * z0
            n = standard_normal(z.shape, generator, dtype=z.dtype, device=z.device)
            z = a_next.sqrt() * zbar0 + (1 - a_next) * eps + ((1 - a_next) * a_next).sqrt() * n
        else:
            z = ddim_step(z0, eps, a_t, a_next)
    return prior.decode(z0).clamp(0, 1)
