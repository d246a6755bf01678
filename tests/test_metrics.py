"""Metrics against closed forms and known values."""
import numpy as np
import pytest
import torch

from ipbench import metrics
from ipbench.metrics.w2 import conditional_w2_from_moments


def test_psnr_known_value():
    x = torch.full((2, 1, 8, 8), 0.5)
    assert np.allclose(metrics.psnr(x + 0.1, x), 20.0)
    assert np.allclose(metrics.psnr(x + 0.01, x), 40.0)


def test_ssim_identity_and_order():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 32, 32, generator=g)
    assert np.allclose(metrics.ssim(x, x), 1.0)
    small, big = (metrics.ssim((x + s * torch.randn(x.shape, generator=g)).clamp(0, 1), x) for s in (0.05, 0.3))
    assert (small > big).all()


def test_fid_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    n = 200_000
    mu1, mu2 = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    s1, s2 = np.array([1.0, 2.0]), np.array([0.5, 1.0])
    a = mu1 + s1 * rng.standard_normal((n, 2))
    b = mu2 + s2 * rng.standard_normal((n, 2))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)   # diagonal covariances
    assert metrics.fid(a, b) == pytest.approx(closed, rel=0.01)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_zero_for_same_distribution_positive_otherwise():
    from cleanfid.fid import kernel_distance
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 8))
    assert abs(metrics.kid(a, b)) < 0.02
    assert metrics.kid(a, b + 1.0) > 0.5
    assert metrics.kid(a, a) == pytest.approx(0.0, abs=1e-12)
    # independent sets: the U-statistic and clean-fid's estimator agree (both unbiased)
    np.random.seed(0)
    assert metrics.kid(a, b + 0.5) == pytest.approx(kernel_distance(a, b + 0.5, num_subsets=100), rel=0.05)
    # paired sets (b_i = a_i + small noise): clean-fid's estimator is biased negative, ours is not
    paired = a + 0.05 * rng.standard_normal(a.shape)
    assert metrics.kid(a, paired) > -1e-4
    assert metrics.kid(a[:900], b) == metrics.kid(a[:900], b)       # unequal sizes: seeded clean-fid


def test_conditional_w2_closed_form_population():
    # y ~ N(0, 1); x | y ~ N(2 y, 0.5^2); x_hat | y ~ N(y + 1, 1.5^2): W2^2 averaged over y
    # = E_y (2y - y - 1)^2 + (0.5 - 1.5)^2 = (1 + 1) + 1 = 3
    C_yy = np.array([[1.0]])
    C_xy, C_xhy = np.array([[2.0]]), np.array([[1.0]])
    C_xx, C_xhxh = np.array([[4.25]]), np.array([[1.0 + 2.25]])
    value = conditional_w2_from_moments(np.array([0.0]), np.array([1.0]), C_xx, C_xhxh, C_yy, C_xy, C_xhy)
    assert value == pytest.approx(3.0, abs=1e-9)


def test_conditional_w2_from_samples():
    rng = np.random.default_rng(2)
    n = 200_000
    y = rng.standard_normal((n, 2))
    A = np.array([[1.0, 0.5], [0.0, 2.0]])
    x = y @ A.T + 0.3 * rng.standard_normal((n, 2))
    x_hat = y @ A.T + 0.3 * rng.standard_normal((n, 2))
    assert metrics.conditional_w2(x, x_hat, y) < 0.01
    assert metrics.conditional_w2(x, x, y) == pytest.approx(0.0, abs=1e-8)
    shifted = x_hat + np.array([1.0, 0.0])            # a mean error of 1 costs 1
    assert metrics.conditional_w2(x, shifted, y) == pytest.approx(1.0, abs=0.02)
    ignores_y = rng.permutation(x_hat)               # right marginal, wrong conditional
    assert metrics.conditional_w2(x, ignores_y, y) > 3.0
    assert metrics.conditional_w2(x, x_hat, y, moments="uncentered") < 0.01
    with pytest.raises(ValueError, match="moments"):
        metrics.conditional_w2(x, x_hat, y, moments="raw")


def test_lpips_plugged_backbone_known_value():
    # two-channel identity backbone: features (a, b) per pixel, unit-normalised over channels
    backbone = lambda x: [torch.cat([x, 1 - x], 1)]
    lp = metrics.LPIPS(backbone=backbone)
    x = torch.full((1, 1, 4, 4), 0.5)
    y = torch.zeros((1, 1, 4, 4))
    # x -> (0.5, 0.5)/|.| = (1, 1)/sqrt 2; y -> (0, 1): squared distance = (1/sqrt2)^2 + (1/sqrt2 - 1)^2
    expected = 0.5 + (1 / np.sqrt(2) - 1) ** 2
    assert lp(x, y)[0] == pytest.approx(expected, rel=1e-4)
    assert lp(x, x)[0] == pytest.approx(0.0, abs=1e-7)


def test_digit_feature_space_and_lpips_on_digits():
    from ipbench.datasets import digits
    from ipbench.metrics.features import feature_space
    import ipbench.suite.config as cfg
    ck = cfg.checkpoint("digit_net")
    fs = feature_space({"name": "digit_net", "path": str(cfg.ROOT / ck["path"]), "sha256": ck["sha256"],
                        "feature_rms": ck["feature_rms"]})
    x, _ = digits("test", 32, 200)
    f = fs.features(x)
    assert f.shape == (200, 128) and 0.5 < np.sqrt((f**2).mean()) < 2.0
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert (fs.lpips(noisy, x) > fs.lpips(x, x) + 1e-3).all()
    noisier = (x + 0.4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert metrics.fid(fs.features(noisier), f) > metrics.fid(fs.features(noisy), f) > 0.1
