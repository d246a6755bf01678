"""Reduced precision (priors/precision.py): a call under bf16 takes and returns float32, stays close to the float32
call, and the latent family's differentiated calls (denoiser, encoder, decoder) are not autocast at all; the
profile key is checked."""
import copy

import pytest
import torch

import ipbench.suite.config as sc
from ipbench.priors.precision import set_precision
from test_ud2m import tiny_prior


def test_bf16_calls_return_float32_close_to_the_float32_calls(tiny_consistency_prior):
    prior, g = tiny_consistency_prior, torch.Generator().manual_seed(0)
    x, z = torch.rand(3, 1, 8, 8, generator=g), torch.randn(3, 4, 4, 4, generator=g)
    c = prior.embed(["a photo of a handwritten digit 3"] * 3)
    with torch.no_grad():
        ref = [prior.encode(x), prior.decode(z), prior.eps(z, 500, c)]
        set_precision(prior, "bf16")
        try:
            low = [prior.encode(x), prior.decode(z), prior.eps(z, 500, c)]
        finally:
            set_precision(prior, "float32")
    for a, b in zip(ref, low):
        assert b.dtype == torch.float32 and not torch.equal(a, b)        # autocast ran ...
        assert (b - a).norm() <= 0.03 * a.norm()                          # ... at bfloat16's precision


def test_differentiated_latent_calls_stay_in_float32(tiny_consistency_prior):
    prior = tiny_consistency_prior
    z = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    c = prior.embed(["a photo of a handwritten digit 3"] * 2)
    ref = prior.eps(z, 500, c)
    set_precision(prior, "bf16")
    try:
        low = prior.eps(z, 500, c)
        with torch.no_grad():
            forward_only = prior.eps(z, 500, c)
    finally:
        set_precision(prior, "float32")
    assert torch.equal(ref, low) and not torch.equal(ref, forward_only)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
    set_precision(prior, "bf16")
    try:
        decoded, encoded = prior.decode(z), prior.encode(x)
    finally:
        set_precision(prior, "float32")
    assert torch.equal(decoded, prior.decode(z)) and torch.equal(encoded, prior.encode(x))
    low.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_pixel_prior_under_bf16_and_an_unknown_precision():
    prior = tiny_prior()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = prior.eps(x, 500)
        low = set_precision(prior, "bf16").eps(x, 500)
    assert low.dtype == torch.float32 and 0 < (low - ref).norm() <= 0.03 * ref.norm()
    with pytest.raises(ValueError, match="unknown precision 'fp8'; valid: float32, bf16"):
        set_precision(prior, "fp8")


def test_the_profile_key_reaches_the_solve_spec_and_is_checked():
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    assert sc.solve_spec(cfg, "px_deblur_gaussian", "ddrm")["precision"] == cfg["precision"]
    bad = copy.deepcopy(cfg)
    bad["precision"] = "fp8"
    with pytest.raises(ValueError, match="precision"):
        sc.check(bad)
