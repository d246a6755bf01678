"""LVTINO (Spagnoletti et al., ICLR 2026, arXiv 2510.01339, Algorithm 1): LATINO for video, its prior a product
of a video consistency model (VCM) and an image consistency model (ICM) applied per frame.

    x^0 = prox_{200 g_y}(0)  (Problem C: a warm start);  for k = 0..N-1:
        x^{k+1/4} = D_V(f_V(sqrt(abar) E_V(x^k) + sqrt(1 - abar) eps, t^V_k))       (VCM half-step)
        x^{k+1/2} = first likelihood step from x^{k+1/4}                              (time-TV / prox / TV-3D)
        if k < N-1:  x^{k+3/4} = D_I(f_I(sqrt(abar) E_I(x^{k+1/2}) + sqrt(1 - abar) eps_shared, t^I_k)) per frame
                     x^{k+1}   = second likelihood step from x^{k+3/4}                  (CG / prox)
NFE = N VCM + (N - 1) ICM calls: 5 + 4 = 9 (Problems A, B), 3 + 2 = 5 (C, where the paper reports 7 with VIDUE).

As the official code (``bidirectional_LVTINO*.py``), with its per-problem settings (``PROBLEMS``):
- the likelihood steps in its [-1, 1] units (y' = 2 y - 1; the operators keep constants, so A is unchanged);
  first step: A: Chambolle-Pock on 1/2 |Ax - y|^2 + lam |D_t x|_1 from the VCM output (no proximity term),
  200 iterations; B: prox_{gamma g}(VCM output), gamma 3539 then 1363 from k = 2; C: 55 Adam steps on
  1/2 |Ax - y|^2 + lam TV3D_eps(x). Second step: A: 19 CG iterations on (A^T A + 1e-6) x = A^T y + 1e-6 x^{k+3/4}
  from x^{k+3/4}; B: prox, gamma 16868 then 2721 from k = 2 (the code's counter is k + 1 there: its ICM step
  opens its next iteration); C: 23 CG iterations on A^T A x = A^T y;
- the ICM timesteps used are entries 1.. of [499, 374, 249, 124, 124] (A, B) and [499, 249, 63] (C): 374, 249,
  124, 124 and 249, 63 (the code indexes them with k >= 1); one noise draw shared by the frames of a clip;
- the output is the last VCM estimate x^{N-1/4} (the official code discards the last likelihood step);
  ``final='prox'`` returns x^{N-1/2}, the paper's x^N.
The VCM timesteps are the official ones on Wan's flow-matching schedule (shift 8), [757, 522, 375, 255, 125],
mapped to the embedded VCM's DDPM schedule at equal signal-to-noise ratio (``vp_timestep_of_flow``):
[682, 380, 213, 99, 23]. Problem C's warm start is VIDUE's frame interpolation in the official code
(``interpolator``: a VIDUE checkpoint, ``priors/vidue.py``, the paper profile); without one it is the
spatio-temporal ADMM-TV estimate (``admm``; the embedded profile, which has no interpolation network). NFE counts
the diffusion calls only; VIDUE's calls (one per window of 4 measured frames) are logged as 'interpolator'.
"""
from __future__ import annotations

import torch

from ipbench.physics import conjugate_gradient
from ipbench.physics.base import standard_normal
from ipbench.priors.diffusion import add_noise
from ipbench.priors.latent import sae_step
from ipbench.priors.schedules import alpha_bar
from ipbench.priors.tv import admm_tv, l2_tv_adam, l2_tv_pdhg
from ipbench.priors.video_dm import per_frame

PAPER_NAME = "LVTINO"
FLOW_STEPS = {"AB": [757, 522, 375, 255, 125], "C": [757, 522, 375]}
PROBLEMS = {
    "A": {"vcm": FLOW_STEPS["AB"], "icm": [499, 374, 249, 124, 124], "first": "time_tv", "second": "cg_eps"},
    "B": {"vcm": FLOW_STEPS["AB"], "icm": [499, 374, 249, 124, 124], "first": "prox", "second": "prox"},
    "C": {"vcm": FLOW_STEPS["C"], "icm": [499, 249, 63], "first": "tv3d", "second": "cg"},
}


def vp_timestep_of_flow(t: int, shift: float = 8.0, abar: torch.Tensor | None = None) -> int:
    """The DDPM timestep whose SNR abar / (1 - abar) equals that of the flow-matching timestep t
    (x_t = (1 - s) x_0 + s eps, s the shifted sigma on the 1000-point grid nearest t, as Wan's scheduler)."""
    u = torch.linspace(1, 0, 1001, dtype=torch.float64)[:-1]
    s = shift * u / (1 + (shift - 1) * u)
    s_t = s[(1000 * s - t).abs().argmin()]
    abar = alpha_bar("scaled_linear") if abar is None else abar.double()
    return int((torch.log(abar / (1 - abar)) - 2 * torch.log((1 - s_t) / s_t)).abs().argmin())


def first_step(kind: str, op, x, y_pm, k: int, hp: dict):
    """The likelihood step after the VCM, on [-1, 1] images."""
    if kind == "time_tv":
        return l2_tv_pdhg(op, y_pm, x, hp["lam_time_tv"], dims=(-4,), n_iter=hp["pdhg_iter"]).clamp(-1, 1)
    if kind == "prox":
        return op.prox(x, y_pm, hp["gamma_first"][0] if k < 2 else hp["gamma_first"][1]).clamp(-1, 1)
    if kind == "tv3d":
        return l2_tv_adam(op, y_pm, x, hp["lam_tv3d"][0] if k < 1 else hp["lam_tv3d"][1], n_iter=hp["adam_iter"],
                          lr=hp["adam_lr"])
    raise ValueError(f"unknown first likelihood step {kind!r}")


def second_step(kind: str, op, x, y_pm, aty, k: int, hp: dict):
    """The likelihood step after the ICM, on [-1, 1] images (``aty`` = A^T y')."""
    if kind == "cg_eps":
        eps = hp["cg_eps"]
        return conjugate_gradient(lambda v: op.AtA(v) + eps * v, aty + eps * x, x, hp["cg_iter"])
    if kind == "cg":
        return conjugate_gradient(op.AtA, aty, x, hp["cg_iter"])
    if kind == "prox":
        # the official loop runs this step at the start of its iteration k + 1 and switches gamma when that is >= 3
        return op.prox(x, y_pm, hp["gamma_second"][0] if k + 1 < 3 else hp["gamma_second"][1]).clamp(-1, 1)
    raise ValueError(f"unknown second likelihood step {kind!r}")


def warm_start(y, op, problem: str, admm: dict | None = None, interpolator=None, record=None):
    """x^0 in [0, 1] units: prox_{200 g_y}(0) (A, B; the official init, computed with y in [0, 1] and clipped to
    [-1, 1] before it is read as a [0, 1] image, as the code does); Problem C: VIDUE's interpolation of the
    measured frames, upsampled (``interpolator``, the official init), or spatio-temporal ADMM-TV in its place."""
    if problem == "C" and interpolator is not None:
        from ipbench.priors.vidue import interpolate_clip
        T, _, H, W = op.A_adjoint(y).shape[1:]
        return torch.stack([interpolate_clip(interpolator, clip, T, (H, W), record=record) for clip in y]).to(y)
    if problem == "C":
        return admm_tv(y, op, **(admm or {}))
    return op.prox(torch.zeros_like(op.A_adjoint(y)), y, 200.0).clamp(-1, 1)


@torch.no_grad()
def solve(y, op, prior, *, generator=None, prompts=None, problem: str = "A", final: str = "vcm",
          image_prompt: str | None = None, lam_time_tv: float = 2.873789e-4, pdhg_iter: int = 200,
          gamma_first=(3539.0, 1363.0), gamma_second=(16868.0, 2721.0), cg_eps: float = 1e-6,
          cg_iter: int | None = None, lam_tv3d=(6.178523568938361e-07, 1.5583416542691956e-06),
          adam_iter: int = 55, adam_lr: float = 0.019848, admm: dict | None = None,
          interpolator: str | None = None) -> torch.Tensor:
    """``interpolator``: Problem C's warm start network (a VIDUE checkpoint of the catalogue, loaded once per
    process); without it, ``admm``: the ADMM-TV warm start's settings (``lam``, ``rho``, ``n_iter``; the tuned ones)."""
    if problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; valid: {', '.join(PROBLEMS)}")
    if final not in ("vcm", "prox"):
        raise ValueError(f"unknown final {final!r}; valid: 'vcm' (official), 'prox' (the paper's x^N)")
    spec = PROBLEMS[problem]
    hp = dict(lam_time_tv=lam_time_tv, pdhg_iter=pdhg_iter, gamma_first=gamma_first, gamma_second=gamma_second,
              cg_eps=cg_eps, cg_iter=cg_iter or (23 if problem == "C" else 19), lam_tv3d=lam_tv3d,
              adam_iter=adam_iter, adam_lr=adam_lr)
    vcm, icm = prior.video, prior.image
    B = y.shape[0]
    c_v = vcm.embed(list(prompts or [vcm.generic_prompt] * B))
    c_i = icm.embed([image_prompt or icm.generic_prompt] * B)
    y_pm = 2 * y - 1
    net = None
    if interpolator is not None:
        from ipbench.priors.paper import vidue_network
        net = vidue_network(interpolator).to(y.device)
    record = (lambda fn, x: prior.calls.record("interpolator", fn, x)) if hasattr(prior, "calls") else None
    x = warm_start(y, op, problem, admm, net, record)             # [0, 1]
    steps_v = [vp_timestep_of_flow(t, abar=vcm.abar) for t in spec["vcm"]]
    aty = op.A_adjoint(y_pm)
    for k, t_v in enumerate(steps_v):
        x_vcm = 2 * sae_step(vcm, x, t_v, lambda z_t, t: vcm.x0(z_t, t, c_v), generator) - 1
        x_half = first_step(spec["first"], op, x_vcm, y_pm, k, hp)
        if k == len(steps_v) - 1:
            out = x_vcm if final == "vcm" else x_half
            return ((out + 1) / 2).clamp(0, 1)
        t_i = spec["icm"][k + 1]
        z = per_frame(icm.encode, (x_half + 1) / 2)
        shared = standard_normal((B, 1, *z.shape[2:]), generator, dtype=z.dtype, device=z.device)
        z_t = add_noise(z, shared.expand_as(z), icm.abar[t_i])
        x_icm = 2 * per_frame(icm.decode, prior.frames_x0(z_t, t_i, c_i)) - 1
        x = (second_step(spec["second"], op, x_icm, y_pm, aty, k, hp) + 1) / 2
