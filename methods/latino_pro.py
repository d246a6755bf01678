"""LATINO-PRO (Spagnoletti et al., ICCV 2025, arXiv 2503.12615, Algorithm 2): LATINO with the prompt
calibrated by maximum marginal likelihood, through stochastic approximation proximal gradient (SAPG).

    for m = 1..M:  run LATINO (N_m = 4 steps) with prompt c_m, visiting latents z_{t_1}, ..., z_{t_N};
                   h(c_m) = grad_c log p(z_{t_1..N} | c_m)
                          = sum_i grad_c [-|z_{t_{i+1}} - sqrt(abar_{t_{i+1}}) z0_hat(z_{t_i}, c)|^2 / (2 (1 - abar_{t_{i+1}}))]
                   c_{m+1} = Proj_C[c_m + gamma_m h(c_m)],  x^(0) <- x^(N_m)
    then one 8-step LATINO pass with c_{M+1}.

M = 15, gamma_m = 0.08 max(0.9^max(0, m - 10), 0.001) (m from 0), NFE = 15 x 4 + 8 = 68: the
gradient reuses each step's denoiser evaluation (autograd through the denoiser only, not through
the autoencoder or the operator). As the official code, each step's gradient is normalised per
token, the first 4 tokens ("[BOS] a photo of") stay frozen, and C is the set of per-token L2 balls
of radius ``radius`` around the initial embedding c_0. Only the token embeddings move (SDXL's pooled
embedding stays at c_0).

As the official code (``main_LATINO_PRO.py``, ``accumulated_grad``), the tables step along the running sum
of every h(c_m) so far, never reset (``accumulate=True``), so later prompt steps grow with m; the paper's
form, this iteration's h(c_m) alone, is ``accumulate=False``. The official final 8-step pass uses a step
size 10 times smaller than the calibration passes on deblurring (``noise_schemes.py``,
``noise_pred_cond_y_PRO``: 4e-4 df against 4e-3 df), and the same one on SR: ``delta_final``. gamma0 and the
radius are the official values for SDXL's 2048-d token embeddings; the profiles state how they carry over
to their text encoder. The official diagnostic prior samples (60 uncounted UNet calls) are not drawn.
"""
from __future__ import annotations

import torch

from ipbench.priors.diffusion import tweedie
from ipbench.priors.latent import consistency_output
from .latino import STEPS, initial_estimate, latino_pass, step_rule

PAPER_NAME = "LATINO-PRO"


def sapg_step_size(m: int, gamma0: float = 0.08) -> float:
    return gamma0 * max(0.9 ** max(0, m - 10), 0.001)


def project(c: torch.Tensor, c0: torch.Tensor, radius: float) -> torch.Tensor:
    """Per-token projection onto the L2 ball of ``radius`` around c0 (last axis = embedding)."""
    d = c - c0
    norm = d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return c0 + d * (radius / norm).clamp(max=1.0)


class ChainGradient:
    """The denoise hook of a SAPG pass: the consistency step, keeping z0_hat(z_{t_i}, c) differentiable
    in c, and the per-token-normalised gradient of each Gaussian transition once z_{t_{i+1}} exists."""

    def __init__(self, prior, c: torch.Tensor, last_t: int | None = None):
        self.prior, self.c, self.last_t = prior, c.detach(), last_t
        self.grad = torch.zeros_like(self.c)
        self.prev = None

    def __call__(self, z_t: torch.Tensor, t: int) -> torch.Tensor:
        abar = self.prior.abar
        if self.prev is not None:
            z0_prev, c_var = self.prev
            with torch.enable_grad():
                log_p = -(z_t - abar[t].sqrt() * z0_prev).pow(2).flatten(1).sum(1) / (2 * (1 - abar[t]))
                g, = torch.autograd.grad(log_p.sum(), c_var)
            self.grad += g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        if t == self.last_t:                       # no transition follows the pass's last step: no graph
            self.prev = None
            return self.prior.x0(z_t, t, self.c)
        with torch.enable_grad():
            c_var = self.c.clone().requires_grad_(True)
            z0 = tweedie(z_t, self.prior.eps(z_t, t, c_var), abar[t])
        self.prev = (z0, c_var)
        return consistency_output(z_t, z0.detach(), t)


@torch.no_grad()
def calibrate(y, op, prior, *, generator=None, prompts=None, sapg_iterations: int = 15, gamma0: float = 0.08,
              radius: float = 15.0, frozen_tokens: int = 4, accumulate: bool = True, delta: float = 1.0,
              delta_late: float | None = None, delta_rule: str = "constant", t_switch: int = 500,
              init: str = "pinv"):
    """The SAPG phase: (the image after the last 4-step pass, the calibrated token embeddings)."""
    prompts = prompts or [prior.generic_prompt] * y.shape[0]
    c0 = prior.embed(list(prompts))
    c = c0.clone()
    gamma = step_rule(op, y, prior, delta, delta_late, delta_rule, t_switch)
    x = initial_estimate(y, op, init)
    total = torch.zeros_like(c)
    for m in range(sapg_iterations):
        hook = ChainGradient(prior, c, STEPS[4][-1])
        x = latino_pass(x, y, op, prior, c, STEPS[4], gamma, generator, "prox", denoise=hook)
        total = total + hook.grad if accumulate else hook.grad
        total[:, :frozen_tokens] = 0
        c = project(c + sapg_step_size(m, gamma0) * total, c0, radius)
    return x, c


@torch.no_grad()
def solve_with_prompt(y, op, prior, *, generator=None, delta_final: float | None = None, final: str = "prox",
                      **sapg):
    """SAPG calibration (``calibrate``'s keywords), then one 8-step LATINO pass with the calibrated
    prompt: (restoration, calibrated token embeddings)."""
    x, c = calibrate(y, op, prior, generator=generator, **sapg)
    delta = delta_final if delta_final is not None else sapg.get("delta", 1.0)
    gamma = step_rule(op, y, prior, delta, None, sapg.get("delta_rule", "constant"), sapg.get("t_switch", 500))
    return latino_pass(x, y, op, prior, c, STEPS[8], gamma, generator, final), c


def solve(y, op, prior, **kw):
    return solve_with_prompt(y, op, prior, **kw)[0]


def solve_with_extras(y, op, prior, **kw):
    """(restoration, {'prompt_embeds': the calibrated token embeddings}), kept beside the samples."""
    x, c = solve_with_prompt(y, op, prior, **kw)
    return x, {"prompt_embeds": c}
