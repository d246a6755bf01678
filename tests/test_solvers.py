"""Baselines against independent oracles: exact recovery, and ADMM-TV's objective against L-BFGS."""
import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from ipbench import physics
from ipbench.baselines import admm_tv, pinv
from ipbench.priors.tv import div, grad, tv, tv_prox
from ipbench.suite.registry import SOLVERS, prior_kind, solver_family, solver_module


def test_grad_div_adjoint():
    g = torch.Generator().manual_seed(0)
    for shape, dims in [((2, 1, 7, 9), (-2, -1)), ((1, 4, 1, 5, 6), (-4, -2, -1))]:
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        p = torch.randn((len(dims), *shape), generator=g, dtype=torch.float64)
        assert torch.allclose((grad(x, dims) * p).sum(), -(x * div(p, dims)).sum())
        # the in-place forms (tv_prox's loop) write the same numbers into stale buffers
        assert torch.equal(grad(x, dims, out=torch.full_like(p, 7.0)), grad(x, dims))
        assert torch.equal(div(p, dims, out=torch.full_like(x, 7.0)), div(p, dims))


def test_tv_prox_leaves_its_warm_start_untouched():
    g = torch.Generator().manual_seed(3)
    v = torch.rand(2, 5, 1, 6, 6, generator=g)
    p = torch.randn(3, *v.shape, generator=g)
    kept = p.clone()
    z, p_new = tv_prox(v, 0.05, (-4, -2, -1), 5, p)
    assert torch.equal(p, kept) and not torch.equal(p_new, kept)


def _smoothed_tv_objective(v, w, shape, eps=1e-8):
    def f(z_flat):
        z = torch.tensor(z_flat, dtype=torch.float64, requires_grad=True)
        zz = z.view(shape)
        obj = 0.5 * (zz - v).pow(2).sum() + w * (grad(zz).pow(2).sum(0) + eps).sqrt().sum()
        obj.backward()
        return obj.item(), z.grad.numpy()
    return f


def test_tv_prox_reaches_the_minimum():
    g = torch.Generator().manual_seed(1)
    v = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64)
    w = 0.1
    z, _ = tv_prox(v, w, n_iter=2000)
    ref = minimize(_smoothed_tv_objective(v, w, v.shape), v.numpy().ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-12})
    ours = 0.5 * (z - v).pow(2).sum().item() + w * tv(z).item()
    assert ours <= ref.fun + 1e-4


def test_admm_tv_minimises_its_objective():
    g = torch.Generator().manual_seed(2)
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    x[..., 2:6, 3:7] = 1.0
    op = physics.build_operator({"name": "gaussian_blur", "sigma": 1.0}, (1, 8, 8), 0.05)
    y = op.measure(x, g)
    lam = 0.02
    est = admm_tv.solve(y, op, lam=lam, rho=1.0, n_iter=500, tv_iter=50)
    objective = lambda z: (op.data_fidelity(z, y) + lam * tv(z)).item()

    def f(z_flat):
        z = torch.tensor(z_flat, dtype=torch.float64, requires_grad=True)
        zz = z.view(x.shape)
        obj = op.data_fidelity(zz, y).sum() + lam * (grad(zz).pow(2).sum(0) + 1e-10).sqrt().sum()
        obj.backward()
        return obj.item(), z.grad.numpy()
    ref = minimize(f, y.numpy().ravel(), jac=True, method="L-BFGS-B", bounds=[(0, 1)] * 64,
                   options={"maxiter": 20000, "gtol": 1e-12})
    assert objective(est) <= ref.fun * (1 + 5e-3)          # ADMM-TV clips its output to [0, 1] at the end
    assert objective(est) < objective(pinv.solve(y, op, rcond=0.03))


def test_pinv_recovers_noiseless_well_posed_problems():
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    op = physics.build_operator({"name": "inpainting", "keep": 1.0}, (1, 16, 16), 0.0)
    assert torch.allclose(pinv.solve(op.A(x), op), x)
    op = physics.build_operator({"name": "uniform_blur", "kernel_size": 3}, (1, 16, 16), 0.0)
    assert torch.allclose(pinv.solve(op.A(x), op, rcond=1e-8), x, atol=1e-6)
    with pytest.raises(ValueError, match="rcond"):
        pinv.solve(op.A(x), op, rcond=2)


FAST = {"dps": {"steps": 10}, "ldps": {"steps": 10}, "psld": {"steps": 10}, "p2l": {"steps": 10}, "treg": {"steps": 20}, "latino_pro": {"sapg_iterations": 1},
        "i2sb": {"nfe": 5}, "cddb": {"nfe": 5}}


@pytest.mark.parametrize("name", sorted(n for n in SOLVERS if solver_family(n) != "video"))   # video: test_video
def test_every_solver_shares_the_signature_and_returns_images(name, tiny_consistency_prior):
    from ipbench.priors.gaussian import GaussianPrior
    module = solver_module(name)
    from ipbench.priors.bridge import BridgePrior
    from ipbench.priors.pixel_ddpm import build_unet
    torch.manual_seed(0)
    prior = {"pixel": lambda: GaussianPrior(torch.zeros(64), 0.1 * torch.eye(64), (1, 8, 8)),
             "consistency": lambda: tiny_consistency_prior, "latent": lambda: tiny_consistency_prior,
             "bridge": lambda: BridgePrior(build_unet(sample_size=8, block_out_channels=(8, 8, 8), norm_num_groups=4,
                                                      attention_head_dim=4)),
             None: lambda: None}[prior_kind(name)]()
    op = physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.01)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    y = op.measure(x, torch.Generator().manual_seed(9))
    fast = FAST.get(name, {})
    out = module.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(3)], **fast)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    again = module.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(3)], **fast)
    assert torch.equal(out, again)                                    # seeded: reproducible
    assert module.__doc__ and hasattr(module, "PAPER_NAME")


def test_unknown_solver_lists_valid_names():
    with pytest.raises(ValueError, match="valid solvers: admm_tv, cddb, ddrm, diffpir, dps, i2sb, latino, latino_pro, ldps, lvtino, p2l, pinv, psld, treg, ud2m, vidue, vision_xl"):
        solver_module("dps2")


def test_latent_dps_nfe_is_one_per_step_and_1000_by_default(tiny_consistency_prior):
    import inspect
    from ipbench.baselines import ldps, psld
    prior = tiny_consistency_prior
    op = physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.01)
    y = op.measure(torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(5)), torch.Generator().manual_seed(6))
    assert inspect.signature(ldps.solve).parameters["steps"].default == 1000
    prior.nfe = 0
    ldps.solve(y, op, prior, generator=torch.Generator().manual_seed(0), steps=50)
    assert prior.nfe == 50
    prior.nfe = prior.ae_calls = 0
    psld.solve(y, op, prior, generator=torch.Generator().manual_seed(0), steps=20)
    assert prior.nfe == 20 and prior.ae_calls == 20 * 2 + 1        # decode and glue-encode per step, final decode
