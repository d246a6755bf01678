"""LATINO (Spagnoletti, Prost, Almansa, Papadakis, Pereyra; ICCV 2025, arXiv 2503.12615, Algorithm 1):
a Langevin scheme whose prior step is a stochastic auto-encoder built from a latent consistency
model and whose likelihood step is a proximal step.

    x^(0) = A^dagger y;  for k = 1..N:
        z_{t_k} = sqrt(abar_{t_k}) E(x^(k-1)) + sqrt(1 - abar_{t_k}) eps      (encode, noise)
        u^(k)   = D(G_theta(z_{t_k}, t_k, c))                                 (one consistency step, decode)
        x^(k)   = prox_{delta_k g_y}(u^(k))                                    (g_y = -log p(y | x))

Steps t = [999, 874, ..., 124] (N = 8) or [999, 749, 499, 249] (N = 4); NFE = N.
The prox is ``op.prox(u, y, gamma_k)`` with gamma_k = delta_k (1 - abar_{t_k}) / (2 sigma_y)^2, the
official code's step in its [-1, 1] units (sigma_y' = 2 sigma_y), so its delta values carry over.

The tables use the paper's form. The official code's choices are options: ``init='adjoint'``
(A^T y, clipped) instead of A^dagger y; ``final='reencode'`` (output D(E(prox))); and
``delta_rule='residual'`` (delta proportional to |A u - y|, two values split at ``t_switch``). The
official residual ``df`` goes through deepinv's forward model, which adds fresh measurement noise to A u
before the norm (a random perturbation of the step size); here df is the noise-free residual in the
official [-1, 1] units (``op.residual_pm``), a deliberate choice.
"""
from __future__ import annotations

import torch

from ipbench.priors.latent import sae_step

PAPER_NAME = "LATINO"
STEPS = {8: [999, 874, 749, 624, 499, 374, 249, 124], 4: [999, 749, 499, 249]}


def initial_estimate(y, op, init: str) -> torch.Tensor:
    if init == "pinv":
        return op.A_dagger(y, rcond=0.03).clamp(0, 1)
    if init == "adjoint":
        return op.A_adjoint(y).clamp(0, 1)
    raise ValueError(f"unknown init {init!r}; valid: 'pinv', 'adjoint'")


def step_size(delta, t, abar_t, sigma_y: float, residual=None, delta_late=None, t_switch: int = 400):
    """gamma_k of the prox: the official code's delta (1 - abar_t) / (2 sigma_y)^2, where
    delta is a constant or, with ``residual`` given, delta (or delta_late once t <= t_switch) x |A u - y|."""
    d = delta if (delta_late is None or t > t_switch) else delta_late
    if residual is not None:
        d = d * residual
    return d * (1 - abar_t) / (2 * max(sigma_y, 1e-3)) ** 2


def latino_pass(x, y, op, prior, c, timesteps, gamma_fn, generator, final: str = "prox", denoise=None):
    """One LATINO chain from the image x. ``denoise(z_t, t)`` replaces the consistency step
    ``prior.x0(z_t, t, c)`` (LATINO-PRO uses it to differentiate through the denoiser)."""
    denoise = denoise or (lambda z_t, t: prior.x0(z_t, t, c))
    for t in timesteps:
        u = sae_step(prior, x, t, denoise, generator)
        x = op.prox(u, y, gamma_fn(t, u))
    if final == "reencode":
        x = prior.decode(prior.encode(x))
    elif final != "prox":
        raise ValueError(f"unknown final {final!r}; valid: 'prox', 'reencode'")
    return x.clamp(0, 1)


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, steps: int = 8, delta: float = 1.0,
          delta_late: float | None = None, delta_rule: str = "constant", t_switch: int = 400,
          init: str = "pinv", final: str = "prox") -> torch.Tensor:
    if steps not in STEPS:
        raise ValueError(f"steps must be one of {sorted(STEPS)}, got {steps}")
    prompts = prompts or [prior.generic_prompt] * y.shape[0]  # the prior's own
    c = prior.embed(list(prompts))

    gamma = step_rule(op, y, prior, delta, delta_late, delta_rule, t_switch)
    return latino_pass(initial_estimate(y, op, init), y, op, prior, c, STEPS[steps], gamma, generator, final)


def step_rule(op, y, prior, delta, delta_late=None, delta_rule: str = "constant", t_switch: int = 400):
    """gamma(t, u) for the prox of step t, given the decoded estimate u."""
    if delta_rule not in ("constant", "residual"):
        raise ValueError(f"unknown delta_rule {delta_rule!r}; valid: 'constant', 'residual'")

    def gamma(t, u):
        residual = None
        if delta_rule == "residual":
            residual = op.residual_pm(u, y).flatten(1).norm(dim=1).view(-1, *([1] * (u.ndim - 1)))
        return step_size(delta, t, prior.abar[t], op.sigma_y, residual, delta_late, t_switch)

    return gamma
