"""P2L and TReg (the latent peers of LATINO-PRO), guided evaluations and the network-call log."""
import inspect

import numpy as np
import torch

from ipbench import physics
from ipbench.baselines import p2l, treg
from ipbench.methods import latino
from ipbench.priors.calls import CallLog, bare_seconds
from conftest import dense


def _problem(n=2):
    op = physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.01)
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    return op, x, op.measure(x, torch.Generator().manual_seed(6))


def test_guided_pair_is_one_batched_call_and_one_nfe(tiny_consistency_prior):
    prior = tiny_consistency_prior
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    c, uc = prior.embed(["a photo of a 3"] * 2), prior.embed([""] * 2)
    with torch.no_grad():
        e_c, e_uc = prior.eps(z, 500, c), prior.eps(z, 500, uc)
        prior.nfe = 0
        guided = prior.eps_cfg(z, 500, c, uc, 4.0)
    assert prior.nfe == 2
    assert torch.allclose(guided, e_uc + 4.0 * (e_c - e_uc), atol=1e-5)


def test_p2l_nfe_is_two_per_step_and_the_prompt_step_lowers_the_data_loss(tiny_consistency_prior):
    prior = tiny_consistency_prior
    op, _, y = _problem()
    assert inspect.signature(p2l.solve).parameters["steps"].default == 1000       # published NFE 2000
    prior.nfe = 0
    p2l.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)], steps=10)
    assert prior.nfe == 2 * 10 * 2
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    tuner = p2l.PromptTuner(y, op, prior, lr=1e-2)
    c0 = prior.embed(["a photo of a handwritten digit"] * 2)

    def loss(c):
        with torch.no_grad():
            x0 = prior.decode(p2l.tweedie(z, prior.eps(z, 600, c), prior.abar[600]))
            return (y - op.A(x0)).pow(2).sum().item()
    c = c0
    for _ in range(20):
        c = tuner(z, 600, prior.abar[600], c)
    assert not torch.equal(c, c0) and loss(c) < loss(c0)


def test_treg_data_consistency_is_the_regularised_least_squares_solution():
    op = physics.build_operator({"name": "gaussian_blur", "sigma": 1.0}, (1, 8, 8), 0.01)
    g = torch.Generator().manual_seed(2)
    x0, y = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64), torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64)
    A = dense(op.A, (1, 8, 8))
    lam = 1e-2
    ref = np.linalg.solve(A.T @ A + lam * np.eye(64), A.T @ y.numpy().ravel() + lam * x0.numpy().ravel())
    full = treg.data_consistency(x0, y, op, lam, cg_steps=200)
    assert np.allclose(full.numpy().ravel(), ref, atol=1e-6)
    early = treg.data_consistency(x0, y, op, lam, cg_steps=5)               # the official 5 CG steps stop early
    assert not np.allclose(early.numpy().ravel(), ref, atol=1e-6)


def test_adaptive_negation_lowers_the_similarity_to_the_estimate():
    g = torch.Generator().manual_seed(3)
    uc = torch.randn(2, 6, 8, generator=g)
    phi = torch.nn.functional.normalize(torch.randn(2, 8, generator=g), dim=-1)
    mean_sim = lambda u: (u @ phi.unsqueeze(-1)).mean().item()
    assert mean_sim(treg.adaptive_negation(uc, phi, lr=1e-2, iters=10)) < mean_sim(uc)
    assert torch.equal(treg.adaptive_negation(uc, phi, lr=0.0, iters=10), uc)
    # closed form of the official loop: ten steps of a fresh Adam on the same loss
    u = uc.clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=1e-3)
    for _ in range(10):
        opt.zero_grad()
        (u @ phi.unsqueeze(-1)).mean().backward()
        opt.step()
    assert torch.allclose(treg.adaptive_negation(uc, phi, lr=1e-3, iters=10), u.detach(), atol=1e-6)


def test_treg_nfe_and_data_consistency_steps(tiny_consistency_prior):
    prior = tiny_consistency_prior
    op, _, y = _problem()
    assert inspect.signature(treg.solve).parameters["steps"].default == 200      # published NFE 200
    prior.nfe = prior.ae_calls = 0
    prior.calls.clear()
    treg.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)])
    dc_steps = len([k for k in range(200) if k % 3 == 0 and k < 170])
    assert dc_steps == 57
    assert prior.nfe == 200 * 2 and prior.ae_calls == (2 * dc_steps + 1) * 2    # decode + encode per DC step
    assert prior.calls.summary()["image-text encoder"] == dc_steps               # adaptive negation's network


def test_call_log_counts_and_replays_the_network_calls(tiny_consistency_prior):
    prior = tiny_consistency_prior
    op, _, y = _problem()
    prior.calls.clear()
    latino.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)], steps=4)
    # batched calls count once; the text encoder runs once for the (one) distinct prompt
    assert prior.calls.summary() == {"text encoder": 1, "encoder": 4, "decoder": 4, "denoiser": 4}
    assert ("text encoder", ((1,),), ()) in prior.calls.counts
    bare = bare_seconds(prior.calls)
    assert set(bare) == {"text encoder", "encoder", "decoder", "denoiser"} and all(v > 0 for v in bare.values())


def test_bare_replay_differentiates_the_inputs_the_solver_differentiated():
    log, seen = CallLog(), []

    def net(z, c):
        seen.append((z.requires_grad, c.requires_grad, torch.is_grad_enabled()))
        return z * c

    z, c = torch.randn(2, 3), torch.randn(2, 3, requires_grad=True)
    with torch.enable_grad():
        log.record("denoiser", net, z, c)          # LATINO-PRO: a gradient for the embedding only
    with torch.no_grad():
        log.record("denoiser", net, z, c)          # a plain forward call
    assert sorted(grad for _, _, grad in log.counts) == [(), (1,)]
    bare_seconds(log, reps=1)
    assert set(seen) == {(False, True, True), (False, False, False)}


def test_embed_encodes_each_distinct_prompt_once_and_keeps_the_order(tiny_consistency_prior):
    prior = tiny_consistency_prior
    prompts = ["a photo of a 3", "a photo of a 7", "a photo of a 3"]
    prior.calls.clear()
    c = prior.embed(prompts)
    assert torch.equal(c, prior.text.tokens(prompts))
    assert prior.calls.summary() == {"text encoder": 1} and ("text encoder", ((2,),), ()) in prior.calls.counts


def test_p2l_prompt_step_moves_the_embedding_and_computes_no_weight_gradient(tiny_consistency_prior):
    prior = tiny_consistency_prior
    op, _, y = _problem()
    c = prior.embed(["a photo of a handwritten digit"] * 2)
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    c1 = p2l.PromptTuner(y, op, prior, lr=1e-2)(z, 500, prior.abar[500], c)
    assert not torch.equal(c1, c)
    assert all(p.grad is None for p in [*prior.unet.parameters(), *prior.vae.parameters()])
