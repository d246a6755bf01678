"""VISION-XL (Kwon & Ye, ICCV 2025, arXiv 2412.00156): video inverse problems with an image latent diffusion
model run per frame, as the official ``BaseDDIMCFGpp`` (``latent_sdxl.py``) does.

    z <- DDIM inversion of E(frame 0 of the normalised A^T y) to t = 300, copied to every frame;
    for t on the 25-step DDIM grid with t <= 300 (281, 241, ..., 1: 8 steps):
        eps = eps_uc + w (eps_c - eps_uc) per frame;  z0 = tweedie(z, eps);  x0 = D(z0)
        x   = CG on A^T A x = A^T y from x0, jointly over the frames (``cg_steps`` iterations)
        x   = Gaussian low-pass, sigma = sqrt(lpf_scale (1 - abar_t)) (kernel 61, reflect)
        z   = sqrt(abar_next) E(x) + sqrt(1 - abar_next) (eta n + sqrt(1 - eta^2) eps_uc),  n shared by all frames
    output: D(z0) of the last step (the official code returns it before that step's CG and low-pass).

As the official code: the grid and its one-index shift of abar (``priors.diffusion.ldm_steps``), CFG++ (the
guided eps for Tweedie, the unconditional one for re-noising), empty prompts (so eps_c = eps_uc and one network
call per frame serves both), one noise draw per step shared across frames, the inversion with eps_uc from frame 0
of the measurement brought to the frames' size (the official nearest up-sampling is the normalised adjoint of
its patch-average SR). Differences: the encoder returns the posterior mean (the official samples it), and the last
step's CG, low-pass, encode and re-noise, whose results the official code discards, are not computed. NFE counts
one per step on the whole clip (its frames as one batch) and one per inversion step (frame 0): 8 + 8, where the
published [8] counts the sampling grid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ipbench.physics import conjugate_gradient
from ipbench.physics.base import standard_normal
from ipbench.physics.blur import gaussian_kernel_1d
from ipbench.priors.diffusion import ldm_steps, tweedie
from ipbench.priors.video_dm import per_frame

PAPER_NAME = "VISION-XL"


def low_pass(x: torch.Tensor, sigma: float, size: int = 61) -> torch.Tensor:
    """Separable Gaussian blur of every frame (torchvision's ``gaussian_blur``: reflect padding); the kernel is
    cut to the frame where it is larger."""
    h, w = x.shape[-2:]
    out = x.flatten(0, -3).unsqueeze(1)
    for axis, n in ((-1, w), (-2, h)):
        k = gaussian_kernel_1d(sigma, min(size, 2 * ((n - 1) // 2) + 1)).to(x)
        pad = (k.numel() // 2,) * 2
        weight = k.view(1, 1, 1, -1) if axis == -1 else k.view(1, 1, -1, 1)
        padded = F.pad(out, pad + (0, 0) if axis == -1 else (0, 0) + pad, mode="reflect")
        out = F.conv2d(padded, weight)
    return out.view(x.shape)


def normalised_adjoint(op, y: torch.Tensor) -> torch.Tensor:
    """A^T y / A^T A 1: the adjoint rescaled to keep constants (nearest up-sampling for patch averages)."""
    aty = op.A_adjoint(y)
    return aty / op.A_adjoint(op.A(torch.ones_like(aty[:1]))).clamp_min(1e-8)


def invert(prior, z: torch.Tensor, grid: list, c_uc: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM inversion with eps_uc up the grid (t, abar_t, abar_{t - skip}) in ascending order (the
    official ``inversion``: z is read at abar_{t - skip}, the level below t, and moved to abar_t)."""
    for t, a_t, a_prev in grid:
        eps = prior.eps(z, t, c_uc)
        z = a_t.sqrt() * tweedie(z, eps, a_prev) + (1 - a_t).sqrt() * eps
    return z


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, null_prompt: str = "", steps: int = 25,
          inversion_time: int = 300, w: float = 0.6, eta: float = 0.2, lpf_scale: float = 2.0,
          cg_steps: int = 10) -> torch.Tensor:
    B = y.shape[0]
    c = prior.embed(list(prompts or [""] * B))
    c_uc = prior.embed([null_prompt] * B)
    grid = [(t, a, a_next) for t, a, a_next in ldm_steps(prior.abar, steps) if t <= inversion_time]
    x_init = normalised_adjoint(op, y)
    T = x_init.shape[1]
    z = invert(prior, prior.encode(x_init[:, 0].clamp(0, 1)), grid[::-1], c_uc)
    z = z.unsqueeze(1).expand(-1, T, *z.shape[1:]).contiguous()
    guided = not torch.equal(c, c_uc)
    c, c_uc = c.repeat_interleave(T, 0), c_uc.repeat_interleave(T, 0)        # one condition per frame
    aty = op.A_adjoint(y)
    for k, (t, a_t, a_next) in enumerate(grid):
        eps_uc = per_frame(prior.eps, z, t, c_uc, items=B)
        eps = eps_uc + w * (per_frame(prior.eps, z, t, c, items=0) - eps_uc) if guided else eps_uc
        x0 = per_frame(prior.decode, tweedie(z, eps, a_t))
        if k == len(grid) - 1:
            return x0.clamp(0, 1)
        x = conjugate_gradient(op.AtA, aty, x0, cg_steps)
        x = low_pass(x, float((lpf_scale * (1 - a_t)).sqrt()))
        n = standard_normal((B, 1, *z.shape[2:]), generator, dtype=z.dtype, device=z.device)
        z = a_next.sqrt() * per_frame(prior.encode, x) + (1 - a_next).sqrt() * (eta * n + (1 - eta**2) ** 0.5 * eps_uc)
