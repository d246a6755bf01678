"""Fidelity to the official code: for every solver, its timestep list, its per-step coefficients and
one step's update on a tiny instance, against formulas written out from the official sources (cited
by repository, file and line at the commits of ``reference/baselines.md``, ``reference/ud2m.md`` and
``reference/latino_lvtino.md``), and against deepinv 0.5 / diffusers where they implement the same
schedule. Where the suite departs from the official code the test is a strict xfail whose reason
states the discrepancy.

Units: the official codes work on [-1, 1] images; for a linear A, an image x in [0, 1] is x_pm = 2 x - 1
and its measurement y_pm = 2 y - A 1 (the official codes measure x_pm), with A acting on x_pm as is.
Stand-in networks are fixed linear maps, so every step is exact in float64.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ipbench import physics
from ipbench.baselines import cddb, ddrm, diffpir, dps, i2sb, psld
from conftest import dense
from ipbench.methods import latino, latino_pro, ud2m

D64 = torch.float64


# ---------------------------------------------------------------------------------------------------
# the official schedules, written out
# ---------------------------------------------------------------------------------------------------

def linear_betas() -> np.ndarray:
    """DDPM / ADM linear betas 1e-4 .. 0.02 (DiffPIR main_ddpir_deblur.py l.80-86; DDRM
    runners/diffusion.py l.36-39; DPS configs/diffusion_config.yaml; UD2M diffusion_schedulers.py l.7-12)."""
    return np.linspace(1e-4, 0.02, 1000, dtype=np.float64)


def linear_abar() -> torch.Tensor:
    return torch.tensor(np.cumprod(1 - linear_betas()), dtype=D64)


def sd_abar() -> torch.Tensor:
    """Stable Diffusion's scaled-linear schedule (sqrt beta linear 0.00085 .. 0.012; PSLD
    configs/stable-diffusion/v1-inference.yaml, diffusers' SD 1.5 scheduler config)."""
    b = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1 - b), dtype=D64)


def draws(seed: int, k: int, shape) -> list[torch.Tensor]:
    """The first k standard normals a solver's generator seeded with ``seed`` yields."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(tuple(shape), generator=g, dtype=D64) for _ in range(k)]


def fixed_matrix(n: int, seed: int, scale: float) -> torch.Tensor:
    return scale * torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=D64) / n ** 0.5


class StubPixelPrior:
    """A stand-in pixel DDPM: eps(x, t) = (1 + t / 1000) W x, a fixed linear map; records its calls."""

    def __init__(self, n: int = 64, seed: int = 0, scale: float = 0.3):
        self.W = fixed_matrix(n, seed, scale)
        self.abar = linear_abar()
        self.calls = []

    def eps(self, x, t):
        self.calls.append((x.detach().clone(), int(t)))
        return (1 + int(t) / 1000) * (x.flatten(1) @ self.W.T.to(x.dtype)).view_as(x)


def blur(sigma_y: float, sigma: float = 1.0):
    return physics.build_operator({"name": "gaussian_blur", "sigma": sigma}, (1, 8, 8), sigma_y)


def measured(op, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, 8, 8, generator=g, dtype=D64)
    return x, op.measure(x, g)


def y_pm(op, y):
    """The official codes' measurement of x_pm = 2 x - 1: 2 y - A 1."""
    return 2 * y - op.A(torch.ones(1, 1, 8, 8, dtype=D64))


def normal_solve(op, lhs_diag, rhs):
    """Solve (A^T A c_A + d I) x = rhs densely: ``lhs_diag = (c_A, d)``."""
    A = torch.tensor(dense(op.A, (1, 8, 8)))
    c_A, d = lhs_diag
    M = c_A * A.T @ A + d * torch.eye(A.shape[1], dtype=D64)
    return torch.linalg.solve(M, rhs.reshape(-1)).view_as(rhs)


# ---------------------------------------------------------------------------------------------------
# DiffPIR (yuanzhi-zhu/DiffPIR @ 111d26e8cf)
# ---------------------------------------------------------------------------------------------------

def official_diffpir_timesteps(n: int) -> list[int]:
    """main_ddpir_deblur.py l.248-251: seq = int(sqrt(linspace(0, 1000^2, n))), last - 1; l.206-210:
    sigmas[i] = reduced_alpha_cumprod[999 - i]; l.258-260: t_i = find_nearest(reduced_alpha_cumprod,
    sigmas[seq[i]]) (utils/utils_model.py l.202-205: argmin |array - value|), in float32 as l.83-89."""
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float32))
    ac = torch.cumprod(1 - betas, 0)
    reduced = (torch.sqrt(1 - ac) / torch.sqrt(ac)).numpy()
    sigmas = [reduced[999 - i] for i in range(1000)]
    seq = [int(s) for s in np.sqrt(np.linspace(0, 1000 ** 2, n))]
    seq[-1] -= 1
    return [int(np.abs(reduced - sigmas[s]).argmin()) for s in seq]


@pytest.mark.parametrize("n", [20, 100])
def test_diffpir_timesteps_match_official_and_deepinv(n):
    """DiffPIR's quad schedule (``quad_timesteps``) against the official main_ddpir_deblur.py l.248-260 and
    deepinv 0.5's ``DiffPIR`` (t_i = find_nearest(reduced_alpha_cumprod, sigmas[seq[i]]))."""
    from deepinv.sampling import DiffPIR
    official = official_diffpir_timesteps(n)
    model = DiffPIR(model=None, data_fidelity=None, max_iter=n)
    via_deepinv = [int(model.find_nearest(model.reduced_alpha_cumprod, model.sigmas[model.seq[i]]))
                   for i in range(len(model.seq))]
    assert official == via_deepinv
    assert diffpir.quad_timesteps(n) == official
    assert official[0] == 999 and official[-1] == 0 and (n != 100 or official[:3] == [999, 899, 857])


def official_diffpir_step(x_t, t, t_next, prior, op, y, lam, zeta, z):
    """One official DiffPIR step (main_ddpir_deblur.py): x0 = clip(pred_xstart) (utils_model.py l.220-247,
    clip_denoised=True); rho_t = lam sigma^2 / sigma_ks[t]^2 with sigma = max(0.001, noise_level_img) and
    sigma_ks[t] = sqrt(1 - abar_t) / sqrt(abar_t) (l.49, l.211-216); data step on [0, 1] images
    (l.288-295: utils_sisr.data_solution, sf = 1: argmin |y - k * x|^2 + rho |x - x0|^2, i.e.
    (A^T A + rho I) x = A^T y + rho x0); re-noise with eta = 0 (l.342-347)."""
    abar = prior.abar
    a, a_next = abar[t], abar[t_next]
    eps_net = (1 + t / 1000) * (x_t.flatten(1) @ prior.W.T).view_as(x_t)
    x0 = ((x_t - (1 - a).sqrt() * eps_net) / a.sqrt()).clamp(-1, 1)
    sigma = max(0.001, op.sigma_y)
    rho = lam * sigma ** 2 / ((1 - a) / a)
    x0_p = normal_solve(op, (1.0, rho), op.A_adjoint(y) + rho * (x0 / 2 + 0.5))
    x0 = x0 + 1.0 * (2 * x0_p - 1 - x0)                                  # guidance_scale = 1
    eps = (x_t - a.sqrt() * x0) / (1 - a).sqrt()
    return a_next.sqrt() * x0 + math.sqrt(1 - zeta) * (1 - a_next).sqrt() * eps \
        + math.sqrt(zeta) * (1 - a_next).sqrt() * z


@pytest.mark.parametrize("sigma_y", [0.05, 0.0])
def test_diffpir_one_step_matches_official(sigma_y):
    """One DiffPIR step t = 292 -> 0 of the 3-step quad schedule (999, 292, 0): rho_t = lam sigma_n^2 /
    sigmabar_t^2 with sigma_n = max(1e-3, sigma_y), the closed-form data step and the zeta-mixed re-noising,
    against the official main_ddpir_deblur.py l.206-216, l.288-295, l.342-347."""
    op = blur(sigma_y)
    _, y = measured(op)
    prior = StubPixelPrior()
    lam, zeta = 7.0, 0.3
    diffpir.solve(y, op, prior, generator=torch.Generator().manual_seed(5), steps=3, lam=lam, zeta=zeta)
    assert [t for _, t in prior.calls] == official_diffpir_timesteps(3) == [999, 292, 0]
    z = draws(5, 3, (1, 1, 8, 8))[2]                      # x_T's noise, step 1's, step 2's
    expected = official_diffpir_step(prior.calls[1][0], 292, 0, prior, op, y, lam, zeta, z)
    torch.testing.assert_close(prior.calls[2][0], expected, atol=1e-10, rtol=0)


def test_diffpir_output_is_the_last_iterate():
    """The official output: x_0 = x / 2 + 0.5 after the loop, where the last step (t = 0) neither solves the
    data step nor re-noises (main_ddpir_deblur.py l.284, l.339-350, l.360, l.377)."""
    op = blur(0.05)
    _, y = measured(op)
    prior = StubPixelPrior()
    out = diffpir.solve(y, op, prior, generator=torch.Generator().manual_seed(5), steps=3)
    torch.testing.assert_close(out, ((prior.calls[2][0] + 1) / 2).clamp(0, 1), atol=1e-8, rtol=0)


def test_diffpir_defaults_are_the_official_deblur_run():
    """The (lambda, zeta) the official deblurring script actually runs."""
    import inspect
    p = inspect.signature(diffpir.solve).parameters
    assert (p["lam"].default, p["zeta"].default) == (7.0, pytest.approx(0.3))


# ---------------------------------------------------------------------------------------------------
# DPS (DPS2022/diffusion-posterior-sampling @ effbde7325)
# ---------------------------------------------------------------------------------------------------

def test_dps_timesteps_and_one_step_match_official_and_deepinv():
    """DPS on all 1000 steps (gaussian_diffusion.py l.182-200: idx = 999 .. 0) and one step t = 500 -> 499:
    x0_hat = clip(tweedie) (process_xstart, clip_denoised), x' = coef1 x0_hat + coef2 x_t + sqrt(var) z
    (l.97-104; var the fixed posterior variance, the embedded prior learns none), minus
    scale grad_{x_t} |y_pm - A(x0_hat)| unsquared (condition_methods.py l.28-32, l.79-87). The gradient
    also equals deepinv 0.5's ``DPSDataFidelity.grad`` (clip [-1, 1], weight 1) on the same [-1, 1] problem,
    and deepinv's DPS grid, 999 x linspace(1, 0, 1000), is the same 1000 integer steps."""
    import deepinv as dinv
    op = blur(0.05)
    _, y = measured(op)
    prior = StubPixelPrior()
    zeta = 0.4
    dps.solve(y, op, prior, generator=torch.Generator().manual_seed(7), zeta=zeta, steps=1000)
    ts = [t for _, t in prior.calls]
    assert ts == list(range(1000))[::-1]

    class Identity(torch.nn.Module):
        def forward(self, x, sigma):
            return x
    grid = dinv.sampling.DPS(Identity(), num_steps=1000).solver.timesteps
    assert torch.round(grid * 999).long().tolist() == ts

    i, t = 499, 500
    x_t = prior.calls[i][0]
    betas, abar = linear_betas(), prior.abar
    a, a_prev, beta = abar[t], abar[t - 1], betas[t]
    yp = y_pm(op, y)

    def x0_hat(x, clip=True):
        x0 = (x - (1 - a).sqrt() * (1 + t / 1000) * (x.flatten(1) @ prior.W.T).view_as(x)) / a.sqrt()
        return x0.clamp(-1, 1) if clip else x0
    xg = x_t.clone().requires_grad_(True)
    x0 = x0_hat(xg)
    grad, = torch.autograd.grad(torch.linalg.norm(yp - op.A(x0)), xg)
    coef1 = beta * a_prev.sqrt() / (1 - a)
    coef2 = (1 - a_prev) * math.sqrt(1 - beta) / (1 - a)
    var = beta * (1 - a_prev) / (1 - a)
    z = draws(7, i + 2, x_t.shape)[-1]
    expected = coef1 * x0.detach() + coef2 * x_t + var.sqrt() * z - zeta * grad
    torch.testing.assert_close(prior.calls[i + 1][0], expected, atol=1e-10, rtol=0)

    fidelity = dinv.sampling.DPSDataFidelity(denoiser=lambda v, sigma: x0_hat(v.to(D64), clip=False).float(),
                                              clip=[-1.0, 1.0], weight=1.0)
    phys = dinv.physics.LinearPhysics(A=lambda v: op.A(v), A_adjoint=lambda v: op.A_adjoint(v))
    g_dinv = fidelity.grad(x_t.float(), yp.float(), phys, 0.1)
    torch.testing.assert_close(g_dinv.to(D64), grad, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------
# I2SB (NVlabs/I2SB @ 1ffdfaaf05) and CDDB (HJ-harry/CDDB @ f751aa9305)
# ---------------------------------------------------------------------------------------------------

class StubBridgeNet(torch.nn.Module):
    """eps_theta(x_n, n) = (1 + n / 1000) W x_n; records its calls."""

    def __init__(self):
        super().__init__()
        self.W = fixed_matrix(64, 3, 0.5)
        self.calls = []

    def forward(self, x, n):
        n = int(n.flatten()[0])
        self.calls.append((x.detach().clone(), n))
        return SimpleNamespace(sample=(1 + n / 1000) * (x.flatten(1) @ self.W.T.to(x.dtype)).view_as(x))


def official_i2sb_schedule(beta_max: float):
    """runner.py l.58-63 (make_beta_schedule: linspace(sqrt(1e-4), sqrt(beta_max / 1000), 1000)^2) and l.81-82
    (first half mirrored); diffusion.py l.17-25 (compute_gaussian_product_coef) and l.33-36."""
    b = np.linspace(1e-4 ** 0.5, (beta_max / 1000) ** 0.5, 1000, dtype=np.float64) ** 2
    b = np.concatenate([b[:500], np.flip(b[:500])])
    std_fwd, std_bwd = np.sqrt(np.cumsum(b)), np.sqrt(np.flip(np.cumsum(np.flip(b))))
    denom = std_fwd ** 2 + std_bwd ** 2
    return std_fwd, std_bwd, std_bwd ** 2 / denom, std_fwd ** 2 / denom, np.sqrt(std_fwd ** 2 * std_bwd ** 2 / denom)


@pytest.mark.parametrize("beta_max", [0.3, 1.0])
def test_i2sb_bridge_schedule_matches_official(beta_max):
    """The bridge std sigma_n, sigmabar_n and q(x_n | x_0, x_1)'s mu_x0, mu_x1, std_sb (``BridgePrior``)
    against I2SB's runner.py l.58-63, l.81-82 and diffusion.py l.17-36, l.51-64."""
    from ipbench.priors.bridge import BridgePrior
    std_fwd, std_bwd, mu_x0, mu_x1, std_sb = official_i2sb_schedule(beta_max)
    prior = BridgePrior(StubBridgeNet(), beta_max=beta_max)
    np.testing.assert_allclose(prior.sigma2.double().sqrt().numpy(), std_fwd, rtol=1e-6)
    np.testing.assert_allclose(prior.sigmabar2.double().sqrt().numpy(), std_bwd, rtol=1e-6)
    n, one, zero = torch.arange(1000), torch.ones(1000, 1, 1, 1, dtype=D64), torch.zeros(1000, 1, 1, 1, dtype=D64)
    np.testing.assert_allclose(prior.q_sample(one, zero, n, zero).flatten().numpy(), mu_x0, rtol=1e-6)
    np.testing.assert_allclose(prior.q_sample(zero, one, n, zero).flatten().numpy(), mu_x1, rtol=1e-6)
    np.testing.assert_allclose(prior.q_sample(zero, zero, n, one).flatten().numpy(), std_sb, rtol=1e-6)


def official_space_indices(num_steps: int, count: int) -> list[int]:
    """util.py l.86-98: round(k * (num_steps - 1) / (count - 1)), the stride accumulated in floats."""
    stride = (num_steps - 1) / (count - 1) if count > 1 else 1
    out, cur = [], 0.0
    for _ in range(count):
        out.append(round(cur))
        cur += stride
    return out


@pytest.mark.parametrize("nfe", [1, 2, 10, 20, 100, 999])
def test_bridge_steps_match_official_space_indices(nfe):
    """I2SB / CDDB sampling grid: runner.py l.226-228 (steps = space_indices(1000, nfe + 1)), reversed."""
    from ipbench.priors.bridge import bridge_steps
    assert bridge_steps(1000, nfe) == official_space_indices(1000, nfe + 1)[::-1]


@pytest.mark.parametrize("solver, zeta", [("i2sb", 0.0), ("cddb", 1.0), ("cddb", 0.5)])
def test_bridge_step_matches_official_posterior_and_dds(solver, zeta):
    """One bridge step n = 999 -> 500 (nfe = 2) from x_N = x_1 = y_pm: x0_hat = clip(x_n - sigma_n eps)
    (runner.py l.108-112, --clip-denoise), the posterior p(x_n' | x_n, x0_hat) with noise (diffusion.py
    l.66-80) and, for CDDB, minus mu_x0 zeta grad_{x0_hat} |A x0_hat - y_pm|^2 (CDDB i2sb/diffusion.py
    l.293-314, dds_sampling)."""
    from ipbench.priors.bridge import BridgePrior
    op = blur(0.01)
    _, y = measured(op)
    net = StubBridgeNet()
    prior = BridgePrior(net, beta_max=0.3)
    g = torch.Generator().manual_seed(11)
    if solver == "i2sb":
        i2sb.solve(y, op, prior, generator=g, nfe=2)
    else:
        cddb.solve(y, op, prior, generator=g, nfe=2, zeta=zeta)
    assert [n for _, n in net.calls] == [999, 500]
    x1 = y_pm(op, y)
    torch.testing.assert_close(net.calls[0][0], x1, atol=1e-12, rtol=0)
    std_fwd = official_i2sb_schedule(0.3)[0]
    s_n, s_p = std_fwd[999], std_fwd[500]
    x0 = (x1 - s_n * (1 + 999 / 1000) * (x1.flatten(1) @ net.W.T).view_as(x1)).clamp(-1, 1)
    x0g = x0.clone().requires_grad_(True)
    grad, = torch.autograd.grad(torch.linalg.norm(op.A(x0g) - x1) ** 2, x0g)
    d2 = s_n ** 2 - s_p ** 2
    mu_x0, mu_xn, var = d2 / (s_p ** 2 + d2), s_p ** 2 / (s_p ** 2 + d2), s_p ** 2 * d2 / (s_p ** 2 + d2)
    z = draws(11, 1, x1.shape)[0]
    expected = mu_x0 * x0 + mu_xn * x1 + math.sqrt(var) * z - mu_x0 * zeta * grad
    torch.testing.assert_close(net.calls[1][0], expected, atol=2e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------
# DDRM (bahjat-kawar/ddrm @ 32b6b3ccfd)
# ---------------------------------------------------------------------------------------------------

def official_ddrm_step(x_t, t, t_next, prior, op, y, z, s, in_singulars, eta=0.85, eta_b=1.0):
    """functions/denoising.py l.62-100 (efficient_generalized_steps) per spectral component, with
    compute_alpha (l.6-9: abar at t, 1 at t = -1) and sigma_0 = 2 sigma_y (runners/diffusion.py l.271):
    before (s sigma' > sigma_0): eta_b U^T y / s + (1 - eta_b) x0_bar + sqrt(sigma'^2 - sigma_0^2 eta_b^2 / s^2) z;
    after (s sigma' < sigma_0, a component that has a singular value): x0_bar + sqrt(1 - eta^2) sigma'
    (U^T y - s x0_bar) / sigma_0 + eta sigma' z; the rest: x0_bar + sqrt(1 - eta^2) sigma' eps_bar + eta sigma' z."""
    svd = op.svd()
    a = prior.abar[t]
    a_next = prior.abar[t_next] if t_next >= 0 else torch.ones((), dtype=D64)
    eps = (1 + t / 1000) * (x_t.flatten(1) @ prior.W.T).view_as(x_t)
    x0 = (x_t - eps * (1 - a).sqrt()) / a.sqrt()
    sig_next = (1 - a_next).sqrt() / a_next.sqrt()
    sigma_0 = 2 * op.sigma_y
    x0_bar, eps_bar, Uty = svd.V_adjoint(x0), svd.V_adjoint(eps), svd.U_adjoint(y_pm(op, y))
    before = in_singulars & (s * sig_next > sigma_0)
    after = in_singulars & (s * sig_next < sigma_0)
    s_b = torch.where(before, s, torch.ones_like(s))
    x_bar = torch.where(before, eta_b * Uty / s_b + (1 - eta_b) * x0_bar
                        + (sig_next ** 2 - sigma_0 ** 2 * eta_b ** 2 / s_b ** 2).clamp_min(0).sqrt() * z,
                        torch.where(after, x0_bar + (1 - eta ** 2) ** 0.5 * sig_next * (Uty - s * x0_bar) / sigma_0
                                    + eta * sig_next * z,
                                    x0_bar + (1 - eta ** 2) ** 0.5 * sig_next * eps_bar + eta * sig_next * z))
    return a_next.sqrt() * svd.V(x_bar), (before.any().item(), after.any().item(), (~before & ~after).any().item())


DDRM_OPS = {
    "gaussian_blur": lambda: blur(0.05),
    "inpainting": lambda: physics.build_operator({"name": "inpainting", "keep": 0.5}, (1, 8, 8), 0.05),
    "block_sr": lambda: physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.05),
}


@pytest.mark.parametrize("k", [13, 18, 19])
@pytest.mark.parametrize("name", list(DDRM_OPS))
def test_ddrm_timesteps_and_one_step_match_official(name, k):
    """DDRM's 20 steps 950 .. 0 (runners/diffusion.py l.333-334: seq = range(0, 1000, 50), reversed, next -1)
    and step k (t = 950 - 50 k -> t - 50; k = 19 is the last, to abar = 1: the output) against the
    official efficient_generalized_steps written out per component. Blur with ``zero=0`` (every singular
    value kept), inpainting and block SR (whose official H-functions keep only the nonzero singular values:
    the missing components take the eps branch)."""
    op = DDRM_OPS[name]()
    _, y = measured(op)
    prior = StubPixelPrior()
    out = ddrm.solve(y, op, prior, generator=torch.Generator().manual_seed(9), steps=20, zero=0.0)
    ts = [t for _, t in prior.calls]
    assert ts == list(range(0, 1000, 50))[::-1]
    s = op.svd().singulars_like(y).expand(1, 8, 8)
    z = draws(9, k + 2, (1, 1, 8, 8))[-1]
    expected, branches = official_ddrm_step(prior.calls[k][0], ts[k], ts[k] - 50, prior, op, y, z, s, s > 0)
    got = prior.calls[k + 1][0] if k < 19 else out
    expected = expected if k < 19 else ((expected + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)
    if (name, k) == ("gaussian_blur", 13):
        assert branches[:2] == (True, True)              # both measured branches are exercised
    if name == "inpainting":
        assert branches[2]                               # and the missing one


def test_ddrm_thresholded_blur_components_follow_the_official_branch():
    """DDRM on a blur with ``zero=0.03`` (the default): the components whose 1-D singular value falls under
    the threshold, as the official Deblurring H-function handles them."""
    op = blur(0.05)
    _, y = measured(op)
    prior = StubPixelPrior()
    ddrm.solve(y, op, prior, generator=torch.Generator().manual_seed(9), steps=20)
    svd = op.svd()
    mask = svd.axis_mask(0.03).expand(1, 8, 8)
    kept = [int((torch.linalg.svdvals(M) >= 0.03).sum()) for M in op.matrices.values()]
    assert int((mask == 0).sum()) == 64 - kept[0] * kept[1] > 0       # the official ZERO rule, per axis
    s = svd.singulars_like(y).expand(1, 8, 8) * mask
    k = 13
    z = draws(9, k + 2, (1, 1, 8, 8))[-1]
    expected, _ = official_ddrm_step(prior.calls[k][0], 300, 250, prior, op, y, z, s, torch.ones_like(s, dtype=bool))
    torch.testing.assert_close(prior.calls[k + 1][0], expected, atol=1e-9, rtol=0)


# ---------------------------------------------------------------------------------------------------
# latent samplers: the DDIM grid, LDPS / PSLD (LituRout/PSLD @ d734647bbc), TReg (TReg-inverse/TReg @ 6d856f9758)
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [4, 10, 200, 1000])
def test_ldm_steps_are_diffusers_leading_timesteps_with_abar_one_index_lower(steps):
    """``priors.diffusion.ldm_steps`` (LDPS, PSLD, P2L, TReg) calls the UNet at diffusers' DDIMScheduler
    timesteps for leading spacing and steps_offset 1 (SD 1.5's scheduler), while, as the official codes,
    abar is read one index lower than diffusers reads it; the DDIM update itself is diffusers' ``step``
    on those abar (eta = 0 and eta > 0 with the same noise)."""
    from diffusers import DDIMScheduler
    from ipbench.priors.diffusion import ddim_step, ldm_steps
    abar = sd_abar()
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    sched.set_timesteps(steps)
    grid = list(ldm_steps(abar, steps))
    assert [t for t, _, _ in grid] == sched.timesteps.tolist()
    assert all(a.item() == abar[t - 1].item() for t, a, _ in grid) and grid[-1][2].item() == abar[0].item()
    if steps == 1000:                        # diffusers' step cannot take t = 1000 (its abar has 1000 entries)
        return
    # diffusers' step on the suite's abar: the same update
    sched.alphas_cumprod = torch.cat([abar[:1], abar[:-1]]).float()   # so that diffusers reads abar[t - 1] at t
    sched.final_alpha_cumprod = abar[0].float()
    g = torch.Generator().manual_seed(0)
    z, e, n = (torch.randn(1, 4, 2, 2, generator=g) for _ in range(3))
    for t, a_t, a_next in grid[:2] + grid[-1:]:
        prev = sched.step(e, t, z, eta=0.0).prev_sample
        torch.testing.assert_close(ddim_step((z - (1 - a_t).sqrt() * e) / a_t.sqrt(), e, a_t, a_next).float(), prev,
                                   atol=1e-5, rtol=1e-5)
        prev = sched.step(e, t, z, eta=0.7, variance_noise=n).prev_sample
        torch.testing.assert_close(ddim_step((z - (1 - a_t).sqrt() * e) / a_t.sqrt(), e, a_t, a_next, eta=0.7,
                                             noise=n).float(), prev, atol=1e-5, rtol=1e-5)


def test_psld_grid_matches_official_ldm_ddim_sampler():
    """PSLD's (and the PSLD repo's LDPS's) 1000-step grid: make_ddim_timesteps('uniform', 1000, 1000) =
    range(0, 1000) + 1; make_ddim_sampling_parameters subtracts 1 for the alphas (l.66-71), alphas_prev =
    [abar_0] + alphas[:-1]; the sampler runs index 999 .. 0 with ts = ddim_timesteps[index]."""
    from ipbench.priors.diffusion import ldm_steps
    abar = sd_abar()
    ddim_t = np.arange(0, 1000) + 1
    alphas = abar[ddim_t - 1]
    alphas_prev = torch.cat([abar[:1], alphas[:-1]])
    official = [(int(ddim_t[i]), alphas[i].item(), alphas_prev[i].item()) for i in range(999, -1, -1)]
    suite = [(t, a.item(), a_next.item()) for t, a, a_next in ldm_steps(abar, 1000)]
    assert suite == official


def test_treg_grid_matches_official():
    """TReg's 200-step grid as the official solver builds it."""
    from diffusers import DDIMScheduler
    from ipbench.priors.diffusion import ldm_steps
    abar = sd_abar()
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)              # SD 1.5's scheduler_config.json
    skip = len(sched.timesteps) // 200
    sched.set_timesteps(200)
    shifted = torch.cat([torch.ones(1, dtype=D64), abar])
    official = [(t, shifted[t].item(), (shifted[t - skip] if t - skip >= 0 else abar[0]).item())
                for t in sched.timesteps.tolist()]
    assert official[0][0] == 996 and official[-1][0] == 1
    assert [(t, a.item(), a_next.item()) for t, a, a_next in ldm_steps(abar, 200)] == official


class StubLatentPrior:
    """A stand-in latent prior: 1 x 8 x 8 latents, affine decoder / encoder, eps(z, t) = sqrt(1 - abar_t) z
    + 0.01 W z (so z0_hat stays near the data), recording the eps calls."""

    generic_prompt = ""

    def __init__(self):
        self.abar = sd_abar()
        self.W, self.Dm, self.Em = fixed_matrix(64, 4, 1.0), fixed_matrix(64, 5, 0.2), fixed_matrix(64, 6, 0.2)
        self.calls = []

    def _lin(self, M, v):
        return (v.flatten(1) @ (torch.eye(64, dtype=D64) + M).T).view_as(v)

    def embed(self, prompts):
        return torch.zeros(len(prompts), 2, 4, dtype=D64)

    def noise_like_latents(self, op, y, generator):
        return torch.randn((y.shape[0], 1, 8, 8), generator=generator, dtype=y.dtype)

    def eps(self, z, t, c):
        self.calls.append((z.detach().clone(), int(t)))
        return (1 - self.abar[min(int(t), 999)]).sqrt() * z + 0.01 * (z.flatten(1) @ self.W.T).view_as(z)

    def decode(self, z):                     # [0, 1] images
        return 0.5 + 0.1 * self._lin(self.Dm, z)

    def encode(self, x):
        return self._lin(self.Em, 10 * (x - 0.5))


def official_psld_step(z_t, t, a, a_prev, prior, op, y, omega, gamma, transpose="adjoint", noise=None):
    """psld.py l.272-335 (general_inverse) with eta = 0, [-1, 1] images x_pm = D_pm(z0) = 2 D(z0) - 1 and
    E_pm(x_pm) = E((x_pm + 1) / 2): z' = sqrt(a_prev) z0 + sqrt(1 - a_prev) e (l.309-314),
    meas = |noiser(A x_pm) - y_pm| (l.318-321), glue = |E_pm(A^T y_pm + x_pm - A^T A x_pm) - z0| (l.323-330),
    z_{t-1} = z' - grad_{z_t} (gamma glue + omega meas) (l.332-335). ``transpose``: the true adjoint, or
    'identity' (the DPS operators' ``transpose`` for blur, PSLD's
    diffusion-posterior-sampling/guided_diffusion/measurements.py l.130-131)."""
    At = op.A_adjoint if transpose == "adjoint" else (lambda v: v)
    yp = y_pm(op, y)
    zg = z_t.clone().requires_grad_(True)
    e = prior.eps(zg, t, None)
    prior.calls.pop()
    z0 = (zg - (1 - a).sqrt() * e) / a.sqrt()
    z_prev = a_prev.sqrt() * z0 + (1 - a_prev).sqrt() * e
    x_pm = 2 * prior.decode(z0) - 1
    meas_pred = op.A(x_pm) + (0 if noise is None else noise)
    meas = torch.linalg.norm(meas_pred - yp)
    glued = prior.encode((At(yp) + x_pm - At(op.A(x_pm)) + 1) / 2)
    glue = torch.linalg.norm(glued - z0)
    grad, = torch.autograd.grad(gamma * glue + omega * meas, zg)
    return (z_prev - grad).detach(), (At(yp) + x_pm - At(op.A(x_pm)) + 1).detach() / 2


@pytest.mark.parametrize("gamma", [0.0, 0.1])
def test_ldps_psld_gradient_step_matches_official(gamma):
    """One LDPS (gamma = 0) / PSLD step of a 2-step run on the official grid (UNet t 501 then 1): the DDIM update minus the gradient of
    omega |A x0_pm - y_pm| + gamma |E(A^T y_pm + (I - A^T A) x0_pm) - z0|, unsquared norms in [-1, 1] units
    (psld.py l.272-335), with the true adjoint (the suite's documented choice) and the noiser's fresh
    measurement noise inside the norm."""
    op = blur(0.05)
    _, y = measured(op)
    prior = StubLatentPrior()
    psld.latent_posterior_sampling(y, op, prior, torch.Generator().manual_seed(2), None, steps=2, omega=1.0,
                                   gamma=gamma)
    assert [t for _, t in prior.calls] == [501, 1]         # UNet t; abar[500] -> abar[0]
    abar = prior.abar
    noise = 2 * 0.05 * draws(2, 2, (1, 1, 8, 8))[1]             # the noiser's draw, after x_T's
    expected, glued = official_psld_step(prior.calls[0][0], 501, abar[500], abar[0], prior, op, y, 1.0, gamma,
                                         noise=noise)
    assert 0 <= glued.min() and glued.max() <= 1
    torch.testing.assert_close(prior.calls[1][0], expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("case", ["glued inside [0, 1]", "glued outside [0, 1]", "true transpose"])
def test_psld_step_with_the_official_details(case):
    """The PSLD step with the official details: the noiser's fresh noise inside the measurement norm (the
    generator's draw after x_T's), the glued image encoded unclamped (y scaled so that it leaves [0, 1]);
    and the one deliberate difference, the true A^T in the gluing term where the official code uses the
    DPS operators' transpose, the identity for blur and inpainting (PSLD's
    diffusion-posterior-sampling/guided_diffusion/measurements.py l.130-131, l.148-149; psld.py l.323-324)."""
    op = blur(0.05)
    _, y = measured(op)
    if case == "glued outside [0, 1]":
        y = 3 * y
    prior = StubLatentPrior()
    psld.latent_posterior_sampling(y, op, prior, torch.Generator().manual_seed(2), None, steps=2, omega=1.0,
                                   gamma=0.1)
    abar = prior.abar
    noise = 2 * 0.05 * draws(2, 2, (1, 1, 8, 8))[1]
    expected, glued = official_psld_step(prior.calls[0][0], 501, abar[500], abar[0], prior, op, y, 1.0, 0.1,
                                         noise=noise)
    if case == "glued outside [0, 1]":
        assert glued.max() > 1
    torch.testing.assert_close(prior.calls[1][0], expected, atol=1e-9, rtol=0)
    if case == "true transpose":
        identity, _ = official_psld_step(prior.calls[0][0], 501, abar[500], abar[0], prior, op, y, 1.0, 0.1,
                                         transpose="identity", noise=noise)
        assert not torch.allclose(prior.calls[1][0], identity, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# LATINO / LATINO-PRO (LATINO-PRO/LATINO-PRO @ b0168a9b86)
# ---------------------------------------------------------------------------------------------------

def test_latino_timesteps_match_official_and_ddim_trailing():
    """LATINO's grids: main_LATINO.py l.174 ([999, 874, ..., 124], N = 8) and main_LATINO_PRO.py l.116
    ([999, 749, 499, 249], the SAPG passes), which override the LCMScheduler's own grid; they are
    diffusers' DDIMScheduler 'trailing' grids (LCMScheduler's set_timesteps(8) is not)."""
    from diffusers import DDIMScheduler, LCMScheduler
    assert latino.STEPS[8] == [999, 874, 749, 624, 499, 374, 249, 124]
    assert latino.STEPS[4] == [999, 749, 499, 249]
    for n in (4, 8):
        sched = DDIMScheduler(beta_schedule="scaled_linear", timestep_spacing="trailing")
        sched.set_timesteps(n)
        assert sched.timesteps.tolist() == latino.STEPS[n]
    lcm = LCMScheduler(beta_schedule="scaled_linear")
    lcm.set_timesteps(8)
    assert lcm.timesteps.tolist() != latino.STEPS[8]


def test_consistency_boundary_scalings_match_diffusers_lcm():
    """c_skip, c_out of ``priors.latent.boundary_scalings`` against diffusers' LCMScheduler
    (sigma_data 0.5, timestep_scaling 10) at LATINO's timesteps and at 0."""
    from diffusers import LCMScheduler
    from ipbench.priors.latent import boundary_scalings
    lcm = LCMScheduler(beta_schedule="scaled_linear", timestep_scaling=10.0)
    for t in latino.STEPS[8] + [0]:
        c_skip, c_out = lcm.get_scalings_for_boundary_condition_discrete(torch.tensor(t))
        ours = boundary_scalings(t)
        assert ours[0].item() == pytest.approx(c_skip.item(), rel=1e-6)
        assert ours[1].item() == pytest.approx(c_out.item(), rel=1e-6)


def official_latino_gamma(op, u, y, t, abar_t, early, late, t_switch, noise=None):
    """noise_schemes.py l.19-25 (df = |forward_model(x_pm) - y_norm|, y_norm = 2 y - 1, main_LATINO.py
    l.306-307), l.41-44 (delta = early df if t > 400 else late df) and l.75 (gamma = delta (1 - abar_t) /
    sigma_y_norm^2, sigma_y_norm = 2 sigma_y): the gamma of prox_l2(x, y_norm, gamma) on [-1, 1] images,
    which is the same gamma on [0, 1] ones. ``noise``: forward_model's own fresh noise (deepinv physics)."""
    Ax = op.A(2 * u - 1) + (0 if noise is None else noise)
    df = torch.linalg.norm(Ax - (2 * y - 1))
    delta = (early if t > t_switch else late) * df
    return delta * (1 - abar_t) / (2 * op.sigma_y) ** 2


@pytest.mark.parametrize("t", [999, 499, 374, 124])
def test_latino_residual_step_size_matches_official(t):
    """LATINO's residual step rule (``step_rule``, delta_rule='residual', Gaussian deblurring sigma_k < 10:
    5e-4 df for t > 400 else 2e-4 df) against noise_schemes.py l.19-25, l.41-44, l.75 without
    forward_model's noise."""
    op = blur(0.01)
    _, y = measured(op)
    u = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=D64)
    prior = SimpleNamespace(abar=sd_abar())
    gamma = latino.step_rule(op, y, prior, 5e-4, 2e-4, "residual", 400)(t, u)
    expected = official_latino_gamma(op, u, y, t, prior.abar[t], 5e-4, 2e-4, 400)
    assert gamma.flatten().item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.xfail(strict=True, reason="official noise_schemes.py l.25 computes df = |forward_model(x) - y| "
                   "with deepinv's noisy forward model (fresh N(0, sigma_y^2) noise, inverse_problems.py l.7); "
                   "methods/latino.py uses |A u - y| (residual_pm) without noise")
def test_latino_residual_includes_the_forward_models_noise():
    """LATINO's residual step size with the official df, whose forward model adds fresh noise."""
    op = blur(0.01)
    _, y = measured(op)
    u = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=D64)
    prior = SimpleNamespace(abar=sd_abar())
    noise = op.sigma_y * draws(8, 1, (1, 1, 8, 8))[0]
    gamma = latino.step_rule(op, y, prior, 5e-4, 2e-4, "residual", 400)(499, u)
    expected = official_latino_gamma(op, u, y, 499, prior.abar[499], 5e-4, 2e-4, 400, noise=noise)
    assert gamma.flatten().item() == pytest.approx(expected.item(), rel=1e-9)


def test_latino_pro_sapg_step_size_and_projection_match_official():
    """LATINO-PRO's SAPG: gamma_m = 0.08 max(0.9^max(0, m - 10), 0.001), m from 0 (main_LATINO_PRO.py l.253),
    the per-token projection onto the L2 ball of radius 15 around c_0 (l.230-236) and the defaults (15 SAPG
    steps, configs/LATINO-PRO.yaml; 4 frozen tokens, l.247; the running sum of gradients, l.246)."""
    import inspect
    for m in range(40):
        assert latino_pro.sapg_step_size(m) == pytest.approx(0.08 * max(0.9 ** max(0, m - 10), 0.001), rel=1e-15)
    assert latino_pro.sapg_step_size(10) == 0.08 and latino_pro.sapg_step_size(11) == pytest.approx(0.072)
    g = torch.Generator().manual_seed(0)
    c0, c = torch.randn(1, 5, 16, generator=g, dtype=D64), 10 * torch.randn(1, 5, 16, generator=g, dtype=D64)
    d = c - c0
    official = c0 + torch.clamp(15 / (d.norm(dim=-1, keepdim=True) + 1e-8), max=1.0) * d
    torch.testing.assert_close(latino_pro.project(c, c0, 15.0), official, atol=1e-6, rtol=0)
    p = inspect.signature(latino_pro.calibrate).parameters
    assert (p["sapg_iterations"].default, p["gamma0"].default, p["radius"].default, p["frozen_tokens"].default,
            p["accumulate"].default) == (15, 0.08, 15.0, 4, True)


# ---------------------------------------------------------------------------------------------------
# UD2M (charles-kmc/UD2M @ a10f9f8)
# ---------------------------------------------------------------------------------------------------

def official_ud2m_grid(N: int) -> list[int]:
    """unfolded_models/diffusion_schedulers.py l.155-165 (get_seq_progress_seq): int of
    square(linspace(0, sqrt(1000), N + 1)[1:]), the last minus 1, reversed (runner_inference_cmd.py l.91)."""
    seq = [int(s) for s in np.square(np.linspace(0, 1000 ** 0.5, N + 1)[1:])]
    seq[-1] -= 1
    return seq[::-1]


@pytest.mark.parametrize("N", [3, 5, 10])
def test_ud2m_time_grid_matches_official(N):
    """UD2M's sampler grid against get_seq_progress_seq (N = 3: 999, 444, 111; N = 5: 999, 639, 360, 159, 39)."""
    assert ud2m.time_grid(N) == official_ud2m_grid(N)
    # in float64 the squares are 39.99.., 159.99.., 360.0, 639.99.., 1000.0: int() gives 39, 159, 360, 639
    assert {3: [999, 444, 111], 5: [999, 639, 360, 159, 39]}.get(N, official_ud2m_grid(N)) == official_ud2m_grid(N)


def circular_filter(k: torch.Tensor, n: int) -> torch.Tensor:
    """n x n circular convolution with a centred 1-D kernel (UD2M physics.py l.466-481, blur2A: the kernel
    rolled to the origin, applied by FFT)."""
    c = len(k) // 2
    M = torch.zeros(n, n, dtype=D64)
    for i in range(n):
        for l in range(len(k)):
            M[i, (i + l - c) % n] += k[l]
    return M


@pytest.mark.parametrize("task", ["sr", "inpainting", "deblur"])
def test_ud2m_warm_start_matches_official(task):
    """UD2M's f_psi without RAM: for SR and inpainting the blend (b sqrt(1 - abar_t) + sqrt(abar_t) x_t
    sigma_y) / sqrt(sigma_y^2 + 1 - abar_t), sigma_y = 2 sigma_y(0, 1) (physics.py l.200, l.356, l.452), with
    b = H^T bilinear_up(y_pm) (runner_inference_cmd.py l.132, physics.py l.456-459, l.493-500;
    unfolded_models.py l.295) or A^T y_pm (l.134; l.299; the official inpainting y is 2 M (x + n) - 1,
    physics.py l.427-432); for deblurring y itself (unfolded_models.py l.286, training) by default and the
    runner's blend l.134 with 'blend'."""
    g = torch.Generator().manual_seed(6)
    x_t = torch.randn(1, 1, 8, 8, generator=g, dtype=D64)
    abar = linear_abar()
    t = 444
    a, sy = abar[t], None
    if task == "sr":
        op = physics.build_operator({"name": "downsampling", "factor": 2, "filter": "gaussian", "blur_variance": 3.0,
                                     "blur_size": 3, "padding": "circular"}, (1, 8, 8), 0.05)
        k = torch.exp(-torch.arange(-1.0, 2.0, dtype=D64) ** 2 / 6)
        H = circular_filter(k / k.sum(), 8)
        x = torch.rand(1, 1, 8, 8, generator=g, dtype=D64)
        torch.testing.assert_close(op.A(x), (H @ x @ H.T)[..., ::2, ::2], atol=1e-12, rtol=0)   # official y model
        y = op.measure(x, g)
        up = F.interpolate(y_pm(op, y), size=(8, 8), mode="bilinear")
        b = H.T @ up @ H
    elif task == "inpainting":
        op = physics.build_operator({"name": "inpainting", "keep": 0.5}, (1, 8, 8), 0.05)
        x = torch.rand(1, 1, 8, 8, generator=g, dtype=D64)
        y = op.measure(x, g)
        M = op.mask
        y_official = 2 * M * y - 1                      # 2 M (x + n) - 1: the masked pixels at -1
        b = M * y_official
    else:
        op = blur(0.05)
        x, y = measured(op)
        b = op.A_adjoint(y_pm(op, y))
    sy = 2 * op.sigma_y
    blend = (b * (1 - a).sqrt() + a.sqrt() * x_t * sy) / (sy ** 2 + 1 - a).sqrt()
    if task == "deblur":
        torch.testing.assert_close(ud2m.f_psi(y, op, "official", x_t, t, None, abar), 2 * y - 1, atol=1e-12, rtol=0)
        torch.testing.assert_close(ud2m.f_psi(y, op, "blend", x_t, t, None, abar), blend, atol=1e-12, rtol=0)
    else:
        torch.testing.assert_close(ud2m.f_psi(y, op, "official", x_t, t, None, abar), blend, atol=1e-12, rtol=0)


def fake_modules(scale: float):
    """A stand-in for the K unfolded modules: x0_hat = scale tanh(W x_t), recording (x_t, t)."""
    W = fixed_matrix(64, 8, 2.0)
    calls = []

    def modules(x_t, t, *args, **kwargs):
        calls.append((x_t.clone(), int(t)))
        return scale * torch.tanh((x_t.flatten(1) @ W.T).view_as(x_t))
    return modules, calls


def official_ud2m_ddim(x_t, x_raw, t, t_next, z1, z2, eta=0.8):
    """runner_inference_cmd.py l.137-155 and runners_utils.py l.14-22 (ddim_solver): x0 = clamp(x_raw),
    eps = (x_t - sqrt(abar_t) x_raw) / sqrt(1 - abar_t) from the unclamped module output (hqs_modules.py
    l.222-233), eta_sigma = eta sqrt(1 - abar_t') / sqrt(1 - abar_t) sqrt(beta_t),
    x_t' = sqrt(abar_t') x0 + sqrt(1 - abar_t' - eta_sigma^2) eps + eta_sigma z1 + eta_sigma sqrt(1 - abar_t') z2."""
    betas, abar = linear_betas(), linear_abar()
    a, a_next = abar[t], abar[t_next]
    x0 = x_raw.clamp(-1, 1)
    eps = (x_t - a.sqrt() * x_raw) / (1 - a).sqrt()
    eta_sigma = eta * (1 - a_next).sqrt() / (1 - a).sqrt() * math.sqrt(betas[t])
    return a_next.sqrt() * x0 + (1 - a_next - eta_sigma ** 2).sqrt() * eps + eta_sigma * z1 \
        + eta_sigma * (1 - a_next).sqrt() * z2


def run_ud2m_with_fake_modules(monkeypatch, scale):
    modules, calls = fake_modules(scale)
    monkeypatch.setattr(ud2m, "unfolded_modules", modules)
    op = blur(0.01)
    _, y = measured(op)
    out = ud2m.solve(y, op, StubPixelPrior(), generator=torch.Generator().manual_seed(12), K=3, N=3)
    z = draws(12, 3, (1, 1, 8, 8))                         # x_T, then z1 and z2 of the first step
    return out, calls, z, modules


def test_ud2m_ddim_step_matches_official(monkeypatch):
    """UD2M's reverse step 999 -> 444 (N = 3, eta = 0.8) and its last output x0_hat against the official
    ddim_solver (runners_utils.py l.14-22) and runner_inference_cmd.py l.153-170 (x = x0 at the last point)."""
    out, calls, z, modules = run_ud2m_with_fake_modules(monkeypatch, 0.9)
    assert [t for _, t in calls] == [999, 444, 111]
    torch.testing.assert_close(calls[0][0], z[0], atol=0, rtol=0)
    x_raw = modules(calls[0][0], 999)
    expected = official_ud2m_ddim(calls[0][0], x_raw, 999, 444, z[1], z[2])
    torch.testing.assert_close(calls[1][0], expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(out, (modules(calls[2][0], 111).clamp(-1, 1) + 1) / 2, atol=1e-12, rtol=0)


def test_ud2m_ddim_eps_uses_the_unclamped_module_output(monkeypatch):
    """The same step when the modules' output leaves [-1, 1]."""
    out, calls, z, modules = run_ud2m_with_fake_modules(monkeypatch, 1.5)
    x_raw = modules(calls[0][0], 999)
    assert x_raw.abs().max() > 1
    expected = official_ud2m_ddim(calls[0][0], x_raw, 999, 444, z[1], z[2])
    torch.testing.assert_close(calls[1][0], expected, atol=1e-10, rtol=0)


def official_ud2m_module(op, x, x_t, y, t, lam, noise, abar, data_step="exact"):
    """One unfolded module (hqs_modules.py l.177-222): sigma_t = sqrt(1 - abar_t) / sqrt(abar_t), sigma_y = 2
    sigma_y(0, 1); rho = sigma_y sigma_t / sqrt(sigma_y^2 + sigma_t^2) and u = clamp(argmin_s |sigma_s - rho|,
    1, 1000) (diffusion_schedulers.py l.268-296, TAUG = TLAT = 0); the data step z = argmin |A z - y_pm|^2 /
    (2 lam sigma_y^2) + |z - x|^2 / (2 rho^2) + |z - x_t / sqrt(abar_t)|^2 / (2 sigma_t^2) in closed form
    (physics.py l.265-298, Gaussian kernels) or, for other kernels, 5 normalised gradient steps from x
    (l.288-311, ``data_step='gradient'``); z_u = sqrt(abar_u) z + sqrt(1 - abar_u) noise (l.199-204)."""
    sigma_t = ((1 - abar[t]) / abar[t]).sqrt()
    sy = 2 * op.sigma_y
    rho = sy * sigma_t / (sy ** 2 + sigma_t ** 2).sqrt()
    sigmas = ((1 - abar) / abar).sqrt()
    u = int(torch.clamp((sigmas - rho).abs().argmin(), 1, 1000))
    yp = y_pm(op, y)
    if data_step == "exact":
        rhs = op.A_adjoint(yp) / (lam * sy ** 2) + x / rho ** 2 + x_t / (sigma_t ** 2 * abar[t].sqrt())
        z = normal_solve(op, (1 / (lam * sy ** 2), 1 / rho ** 2 + 1 / sigma_t ** 2), rhs)
    else:
        z = x.clone()
        for _ in range(5):
            g1 = op.A_adjoint(op.A(z) - yp) / (lam * sy ** 2)
            g2 = (z - x) / rho ** 2
            g3 = (z - x_t / abar[t].sqrt()) / sigma_t ** 2
            z = z - (g1 / lam + g2 + g3) / torch.linalg.norm(g1 + g2 + g3)
    return abar[u].sqrt() * z + (1 - abar[u]).sqrt() * noise, u, rho


@pytest.mark.parametrize("t", [999, 444, 111])
def test_ud2m_module_rho_tau_and_u_match_official(t):
    """One unfolded module on Gaussian deblurring: rho, the prox's combined variance tau^2 = 1 / (1 / rho^2 +
    1 / sigma_t^2) and mean (through the data step z) and the re-noising time u, against hqs_modules.py
    l.177-222 with physics.py's closed form (lam = 0.7)."""
    op = blur(0.01)
    _, y = measured(op)
    g = torch.Generator().manual_seed(13)
    x_t, x = torch.randn(1, 1, 8, 8, generator=g, dtype=D64), torch.rand(1, 1, 8, 8, generator=g, dtype=D64) * 2 - 1
    prior = StubPixelPrior()
    ud2m.unfolded_modules(x_t, t, y, op, prior, 1, torch.Generator().manual_seed(14), 0.7, x)
    (z_u, u), = prior.calls
    expected, u_official, rho = official_ud2m_module(op, x, x_t, y, t, 0.7, draws(14, 1, x.shape)[0], prior.abar)
    assert u == u_official and 1 <= u < t
    torch.testing.assert_close(z_u, expected, atol=1e-10, rtol=0)


@pytest.mark.xfail(strict=True, reason="official Deblurring.mean_estimate (UD2M physics.py l.288-311) solves the "
                   "data step in closed form only for operator_name == 'gaussian' and takes 5 normalised gradient "
                   "steps from x for the others (uniform, motion: scripts/tdeblur.sh l.52); methods/ud2m.py uses "
                   "the exact prox on every blur")
def test_ud2m_module_on_uniform_blur_is_the_official_gradient_update():
    """One unfolded module on uniform deblurring, whose official data step is the gradient update."""
    op = physics.build_operator({"name": "uniform_blur", "kernel_size": 3}, (1, 8, 8), 0.01)
    _, y = measured(op)
    g = torch.Generator().manual_seed(13)
    x_t, x = torch.randn(1, 1, 8, 8, generator=g, dtype=D64), torch.rand(1, 1, 8, 8, generator=g, dtype=D64) * 2 - 1
    prior = StubPixelPrior()
    ud2m.unfolded_modules(x_t, 444, y, op, prior, 1, torch.Generator().manual_seed(14), 1.0, x)
    expected, _, _ = official_ud2m_module(op, x, x_t, y, 444, 1.0, draws(14, 1, x.shape)[0], prior.abar,
                                          data_step="gradient")
    torch.testing.assert_close(prior.calls[0][0], expected, atol=1e-6, rtol=0)
