"""LATINO and LATINO-PRO on a tiny random latent consistency prior: the loop's wiring, measured NFE
against the published NFE, the prox step, and the SAPG constraints."""
import pytest
import torch

from ipbench import physics
from ipbench.methods import latino, latino_pro


@pytest.fixture
def prior(tiny_consistency_prior):
    return tiny_consistency_prior


def _problem(op_spec, sigma_y=0.01, B=2):
    x = torch.rand(B, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    op = physics.build_operator(op_spec, (1, 8, 8), sigma_y)
    return x, op, op.measure(x, torch.Generator().manual_seed(2))


def test_latino_nfe_and_autoencoder_calls(prior):
    x, op, y = _problem({"name": "gaussian_blur", "sigma": 1.0})
    prior.nfe = prior.ae_calls = 0
    out = latino.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)])
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert prior.nfe == 8 * 2                      # published NFE 8, per image
    assert prior.ae_calls == 2 * 8 * 2             # one encode and one decode per step
    prior.nfe = 0
    latino.solve(y, op, prior, steps=4, generator=torch.Generator().manual_seed(0))
    assert prior.nfe == 4 * 2


def test_latino_prox_dominates_with_a_huge_step(prior):
    x, op, y = _problem({"name": "inpainting", "keep": 1.0}, sigma_y=0.001)
    out = latino.solve(y, op, prior, delta=1e9, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, y.clamp(0, 1), atol=1e-4)      # the likelihood step returns the data


def test_latino_options_and_bad_values(prior):
    x, op, y = _problem({"name": "downsampling", "factor": 2, "filter": "bicubic"})
    g = lambda: torch.Generator().manual_seed(0)
    a = latino.solve(y, op, prior, generator=g())
    assert torch.equal(a, latino.solve(y, op, prior, generator=g()))
    b = latino.solve(y, op, prior, generator=g(), init="adjoint", final="reencode", delta_rule="residual",
                     delta=0.3, delta_late=0.2, t_switch=300)
    assert b.shape == a.shape and not torch.equal(a, b)
    with pytest.raises(ValueError, match="steps must be one of"):
        latino.solve(y, op, prior, steps=6)
    with pytest.raises(ValueError, match="valid: 'pinv', 'adjoint'"):
        latino.solve(y, op, prior, init="zeros")


def test_latino_pro_nfe_and_prompt_constraints(prior):
    x, op, y = _problem({"name": "gaussian_blur", "sigma": 1.0})
    prior.nfe = 0
    out = latino_pro.solve(y, op, prior, generator=torch.Generator().manual_seed(0), sapg_iterations=15)
    assert out.shape == x.shape and prior.nfe == 68 * 2          # published NFE 68 = 15 x 4 + 8
    c0 = prior.embed(["a photo of a handwritten digit"] * 2)
    _, c = latino_pro.calibrate(y, op, prior, generator=torch.Generator().manual_seed(0), sapg_iterations=3,
                                radius=0.5, gamma0=10.0)
    moved = (c - c0).norm(dim=-1)
    assert torch.equal(c[:, :4], c0[:, :4])                       # "[CLS] a photo of" stays frozen
    assert moved[:, 4:].max() > 0.1 and moved.max() <= 0.5 + 1e-5  # tokens move, within the L2 balls


def test_sapg_gradient_matches_finite_differences(prior):
    """h(c): the gradient of the Gaussian transition log-likelihood through the denoiser."""
    import copy
    from ipbench.priors.diffusion import tweedie
    prior = copy.copy(prior)
    prior.unet = copy.deepcopy(prior.unet).double()
    prior.abar = prior.abar.double()
    hook = latino_pro.ChainGradient(prior, prior.embed(["a b c d e"]).double())
    g = torch.Generator().manual_seed(3)
    z1, z2 = (torch.randn(1, 4, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    hook(z1, 749)
    hook(z2, 499)
    ab = prior.abar

    def log_p(c):
        z0 = tweedie(z1, prior.eps(z1, 749, c), ab[749])
        return -(z2 - ab[499].sqrt() * z0).pow(2).sum() / (2 * (1 - ab[499]))

    c = hook.c.clone()
    with torch.enable_grad():
        cv = c.clone().requires_grad_(True)
        exact, = torch.autograd.grad(log_p(cv), cv)
    i, j, h = 0, 5, 1e-4
    e = torch.zeros_like(c)
    e[0, i, j] = h
    fd = (log_p(c + e) - log_p(c - e)) / (2 * h)
    assert fd.item() == pytest.approx(exact[0, i, j].item(), rel=1e-4)
    expected = exact / exact.norm(dim=-1, keepdim=True)
    assert torch.allclose(hook.grad, expected, atol=1e-5)


def test_sr16_diagnosis_traces_latinos_own_chain(tiny_consistency_prior):
    """The diagnosis behind the LATINO-PRO table's note (2) runs LATINO's own chain (suite/sr16_diagnosis.py)."""
    import numpy as np
    from conftest import dense
    from ipbench.metrics import psnr
    from ipbench.suite.sr16_diagnosis import diagnose, residual
    prior = tiny_consistency_prior
    op = physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.01)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    y = op.measure(x, torch.Generator().manual_seed(6))
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]
    out = diagnose(x, y, op, prior, prior, gens, delta=1.0)
    x_hat = latino.solve(y, op, prior, generator=gens(), steps=8, delta=1.0)
    assert out["8 steps, consistency step"][0] == pytest.approx(float(psnr(x_hat, x).mean()), abs=1e-4)
    assert [t for t, _ in out["trace"]] == latino.STEPS[8]
    assert out["trace"][-1][1][1] == pytest.approx(float(psnr(x_hat, x).mean()), abs=1e-4)   # last prox = output
    A = dense(op.A, (1, 8, 8))
    expected = np.linalg.norm(x_hat.flatten(1).double().numpy() @ A.T - y.flatten(1).double().numpy(), axis=1)
    assert np.allclose(residual(op, x_hat, y).numpy(), expected, atol=1e-5)
    assert out["8 steps, consistency step"][1] == pytest.approx(expected.mean(), abs=1e-5)
    assert {"8 steps from t = 499, consistency step", "32 steps, latent DM Tweedie", "mean of 8 samples"} <= set(out)


def test_sapg_steps_along_the_running_sum_as_the_official_code(prior):
    """accumulate=True (the official code's never-reset ``accumulated_grad``) and the paper's
    this-iteration gradient agree after one SAPG iteration and part after the second."""
    x, op, y = _problem({"name": "gaussian_blur", "sigma": 1.0})
    run = lambda M, acc: latino_pro.calibrate(y, op, prior, generator=torch.Generator().manual_seed(0),
                                              sapg_iterations=M, accumulate=acc, radius=1e3)[1]
    assert torch.equal(run(1, True), run(1, False))
    assert not torch.allclose(run(2, True), run(2, False))


def test_calibration_report_reads_prompts_against_the_ten_captions():
    from ipbench.report.calibration import prompt_rows, render
    g = torch.Generator().manual_seed(0)
    captions = torch.randn(10, 6, 5, generator=g)
    labels = torch.tensor([3, 7, 7])
    rows = prompt_rows(captions[labels], captions, labels, frozen=2)
    assert rows["prompt_correct"].tolist() == [1, 1, 1] and rows["prompt_distance"].max() == 0
    far = captions[torch.tensor([0, 0, 0])] + 0.01 * torch.randn(3, 6, 5, generator=g)
    rows = prompt_rows(far, captions, labels, frozen=2)
    assert rows["prompt_correct"].tolist() == [0, 0, 0] and rows["prompt_distance"].min() > 0.5
    text = render("T", [{"title": "task", "frozen": 2, "rows": [
        {"label": "LATINO", "n": 3, "psnr": [20.0, 21.0, 22.0], "digit": [1, 0, 1], **rows}]}])
    assert "| LATINO | 3 | 21.00 ± 0.58 | 67% | 0% |" in text
