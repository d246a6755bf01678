"""Operators against dense matrices, dense least squares, deepinv and PIL."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from ipbench import physics
from ipbench.physics.base import LinearOperator, Operator
from conftest import dense

S = 16  # small images: dense matrices are 256 x 256

LINEAR = {
    "gaussian_blur": ({"name": "gaussian_blur", "sigma": 1.0}, (1, S, S)),
    "gaussian_blur_var3_5": ({"name": "gaussian_blur", "variance": 3.0, "kernel_size": 5}, (2, S, S)),
    "uniform_blur": ({"name": "uniform_blur", "kernel_size": 5}, (1, S, S)),
    "sr_block": ({"name": "downsampling", "factor": 4, "filter": "block"}, (1, S, S)),
    "sr_bicubic": ({"name": "downsampling", "factor": 2, "filter": "bicubic"}, (1, S, S)),
    "sr_mnist": ({"name": "downsampling", "factor": 4, "filter": "gaussian", "blur_variance": 3.0,
                  "blur_size": 3, "padding": "circular"}, (1, S, S)),
    "inpainting": ({"name": "inpainting", "keep": 0.3, "mask_seed": 3}, (1, S, S)),
    "video": ({"name": "video_downsampling", "t": 2, "s": 2}, (4, 1, 8, 8)),
    "video_bicubic": ({"name": "video_downsampling", "t": 2, "s": 2, "spatial_filter": "bicubic"}, (4, 1, 8, 8)),
    "video_pool_tail": ({"name": "video_downsampling", "t": 2, "s": 2, "spatial_filter": "bicubic"}, (5, 1, 8, 8)),
    "video_blur": ({"name": "video_downsampling", "t": 3, "s": 2, "temporal": "blur"}, (5, 1, 8, 8)),
}


def make(name, sigma_y=0.01):
    spec, shape = LINEAR[name]
    return physics.build_operator(spec, shape, sigma_y), shape


@pytest.mark.parametrize("name", LINEAR)
def test_adjoint_is_dense_transpose(name):
    op, shape = make(name)
    A = dense(op.A, shape)
    y_shape = op.A(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:]
    At = dense(op.A_adjoint, y_shape)
    np.testing.assert_allclose(At, A.T, atol=1e-12)


@pytest.mark.parametrize("name", LINEAR)
def test_prox_matches_dense_least_squares(name, rng):
    op, shape = make(name)
    A = dense(op.A, shape)
    u = torch.rand(1, *shape, generator=rng, dtype=torch.float64)
    y = op.measure(u, rng)
    gamma = 7.5
    ref = np.linalg.solve(gamma * A.T @ A + np.eye(A.shape[1]), gamma * A.T @ y.reshape(-1).numpy() + u.reshape(-1).numpy())
    np.testing.assert_allclose(op.prox(u, y, gamma).reshape(-1).numpy(), ref, atol=1e-9)
    # the conjugate-gradient fallback every linear operator inherits agrees with the closed form
    np.testing.assert_allclose(LinearOperator.prox(op, u, y, gamma).reshape(-1).numpy(), ref, atol=1e-5)


@pytest.mark.parametrize("name", LINEAR)
def test_svd_reconstructs_dense_matrix(name):
    op, shape = make(name)
    A = dense(op.A, shape)
    V = dense(op.V, shape)                       # columns: right singular vectors
    s = torch.broadcast_to(op.singulars, shape).reshape(-1).numpy()
    y_shape = op.A(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:]
    Ut_lifted = dense(op.U_adjoint, y_shape)     # (n, m): U^T lifted to the spectral shape of x
    np.testing.assert_allclose(V.T @ V, np.eye(V.shape[0]), atol=1e-10)
    np.testing.assert_allclose(Ut_lifted.T @ np.diag(s) @ V.T, A, atol=1e-10)


@pytest.mark.parametrize("name", ["sr_block", "sr_bicubic", "inpainting", "video", "uniform_blur"])
def test_pseudo_inverse_matches_numpy(name, rng):
    op, shape = make(name)
    A = dense(op.A, shape)
    x = torch.rand(1, *shape, generator=rng, dtype=torch.float64)
    y = op.measure(x, rng)
    ref = np.linalg.pinv(A, rcond=1e-10) @ y.reshape(-1).numpy()
    np.testing.assert_allclose(op.A_dagger(y, rcond=1e-10).reshape(-1).numpy(), ref, atol=1e-8)


def test_agrees_with_deepinv():
    dinv = pytest.importorskip("deepinv")
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    ours = physics.build_operator({"name": "gaussian_blur", "sigma": 1.5}, (1, 32, 32), 0.0)
    theirs = dinv.physics.BlurFFT(img_size=(1, 32, 32), filter=dinv.physics.functional.gaussian_blur(sigma=(1.5, 1.5)))
    assert torch.allclose(ours.A(x), theirs.A(x), atol=1e-5)
    y = ours.A(x)
    assert torch.allclose(ours.prox(x, y, 3.0), theirs.prox_l2(x, y, 3.0), atol=1e-4)
    ours = physics.build_operator({"name": "downsampling", "factor": 4, "filter": "bicubic"}, (1, 32, 32), 0.0)
    theirs = dinv.physics.Downsampling(img_size=(1, 32, 32), filter="bicubic", factor=4, padding="reflect")
    assert torch.allclose(ours.A(x), theirs.A(x), atol=1e-5)
    assert torch.allclose(ours.A_adjoint(ours.A(x)), theirs.A_adjoint(theirs.A(x)), atol=1e-5)
    ours = physics.build_operator({"name": "inpainting", "keep": 0.3}, (1, 32, 32), 0.0)
    theirs = dinv.physics.Inpainting(img_size=(1, 32, 32), mask=ours.mask.float())
    assert torch.allclose(ours.A(x), theirs.A(x))
    assert torch.allclose(ours.prox(x, ours.A(x), 2.0).float(), theirs.prox_l2(x, theirs.A(x), 2.0), atol=1e-6)


@pytest.mark.parametrize("problem", ["A", "B", "C"])
def test_video_problems_as_the_official_operators(problem):
    """LVTINO's Problems A / B / C on 25 frames, against the official operators written out: the tail padded by
    repeating the last frame then average-pooled (``TemporalSRThenSROp``), or a circular uniform blur in time
    (``TemporalBlurThenSROp``, by FFT); then deepinv's bicubic ``Downsampling`` (reflect) per frame."""
    dinv = pytest.importorskip("deepinv")
    t, s, temporal = {"A": (4, 4, "pool"), "B": (7, 8, "blur"), "C": (8, 8, "pool")}[problem]
    x = torch.rand(2, 25, 1, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    op = physics.build_operator({"name": "video_downsampling", "t": t, "s": s, "spatial_filter": "bicubic",
                                 "temporal": temporal}, x.shape[1:], 0.001)
    if temporal == "pool":
        pad = -(-25 // t) * t - 25
        v = torch.cat([x, x[:, -1:].expand(-1, pad, -1, -1, -1)], 1)
        v = v.unflatten(1, (-1, t)).mean(2)
    else:
        kernel = torch.zeros(25, dtype=torch.float64)
        kernel[[(i - t // 2) % 25 for i in range(t)]] = 1.0 / t
        v = torch.fft.ifft(torch.fft.fft(x, dim=1) * torch.fft.fft(kernel).view(1, -1, 1, 1, 1), dim=1).real
    down = dinv.physics.Downsampling(img_size=(1, 64, 64), filter="bicubic", factor=s, padding="reflect")
    ref = torch.stack([down.A(v[:, k].float()) for k in range(v.shape[1])], 1)
    assert op.A(x).shape == ref.shape == (2, -(-25 // t) if temporal == "pool" else 25, 1, 64 // s, 64 // s)
    assert torch.allclose(op.A(x).float(), ref, atol=1e-5)


def test_gaussian_kernel_as_deepinv():
    from ipbench.physics.blur import gaussian_kernel_1d
    k = gaussian_kernel_1d(5.0)
    assert k.numel() == 35 and abs(k.sum().item() - 1) < 1e-12       # 35 x 35 for sigma 5, as the reference
    assert gaussian_kernel_1d(3.0).numel() == 23 and gaussian_kernel_1d(10.0).numel() == 69


def _pil_jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    arr = (x.clamp(0, 1) * 255).round().byte()
    mode = "L" if arr.shape[0] == 1 else "RGB"
    im = Image.fromarray(arr[0].numpy() if mode == "L" else arr.permute(1, 2, 0).numpy(), mode)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, subsampling=2 if mode == "RGB" else 0)
    out = torch.from_numpy(np.asarray(Image.open(buf)).copy()).float() / 255
    return out.unsqueeze(0) if mode == "L" else out.permute(2, 0, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_matches_libjpeg(channels):
    from ipbench.datasets import digits
    import torch.nn.functional as F
    x, _ = digits("test", 32, 4)
    if channels == 3:
        x = torch.cat([x, F.interpolate(x, scale_factor=1).flip(-1), x.flip(-2)], 1)
    op = physics.build_operator({"name": "jpeg", "quality": 10}, x.shape[1:], 0.0)
    ours = op.A(x)
    ref = torch.stack([_pil_jpeg(xi, 10) for xi in x])
    mse = (ours - ref).pow(2).mean().item()
    assert 10 * np.log10(1 / mse) > 30          # libjpeg's integer IDCT and upsampling differ slightly
    err_vs_truth = (ours - x).pow(2).mean().item()
    assert mse < 0.25 * err_vs_truth            # much closer to libjpeg than to the uncompressed image


def test_jpeg_is_differentiable_and_prox_decreases_objective(rng):
    op = physics.build_operator({"name": "jpeg", "quality": 10}, (1, 16, 16), 0.01)
    x = torch.rand(2, 1, 16, 16, generator=rng, requires_grad=True)
    op.A(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    y = op.measure(x.detach(), rng)
    u = torch.rand(2, 1, 16, 16, generator=rng)
    obj = lambda z: 2.0 * op.data_fidelity(z, y) + 0.5 * (z - u).pow(2).flatten(1).sum(1)
    assert (obj(op.prox(u, y, 2.0)) < obj(u)).all()


def test_noise_of_an_item_does_not_depend_on_its_batch():
    op = physics.build_operator({"name": "gaussian_blur", "sigma": 1.0}, (1, S, S), 0.1)
    x = torch.rand(3, 1, S, S, generator=torch.Generator().manual_seed(0))
    gens = lambda idx: [torch.Generator().manual_seed(100 + i) for i in idx]
    batch = op.measure(x, gens([0, 1, 2]))
    alone = op.measure(x[2:], gens([2]))
    assert torch.equal(batch[2:], alone)
    noise = batch - op.A(x)
    assert abs(noise.std().item() - 0.1) < 0.01


def test_bad_operator_names_and_parameters():
    with pytest.raises(ValueError, match="valid operators: .*gaussian_blur"):
        physics.build_operator({"name": "motion_blurr"}, (1, S, S), 0.0)
    with pytest.raises(ValueError, match="factor 3 must divide"):
        physics.build_operator({"name": "downsampling", "factor": 3}, (1, S, S), 0.0)
    with pytest.raises(ValueError, match="quality"):
        physics.build_operator({"name": "jpeg", "quality": 0}, (1, S, S), 0.0)
    with pytest.raises(ValueError, match="sigma_y"):
        Operator(sigma_y=-1)


def test_gradient_prox_is_differentiable_through_its_last_step():
    """A = identity behind the generic (gradient-descent) prox: prox(u) = (u + gamma y) / (1 + gamma), so
    d prox / du = 1 / (1 + gamma) and d prox / d gamma = (y - u) / (1 + gamma)^2 exactly."""

    class Identity(Operator):
        def A(self, x):
            return x

    g = torch.Generator().manual_seed(0)
    u0, y = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    u, gamma = u0.clone().requires_grad_(True), torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    x = Identity(0.0).prox(u, y, gamma, n_iter=60)
    assert torch.allclose(x, (u0 + 0.7 * y) / 1.7, atol=1e-10)
    w = torch.randn(3, 5, generator=g, dtype=torch.float64)
    du, dgamma = torch.autograd.grad((w * x).sum(), [u, gamma])
    assert torch.allclose(du, w / 1.7, atol=1e-10)
    assert torch.allclose(dgamma, (w * (y - u0)).sum() / 1.7**2, atol=1e-10)
    with torch.no_grad():                                     # solvers: no graph
        assert not Identity(0.0).prox(u, y, gamma).requires_grad


def test_ud2m_stack_whitens_each_block_against_dense():
    """UD2M's stacked physics for RAM, [w_1 A; w_2 sqrt(abar_t) I] with w_i = m / sigma_i and m the smaller
    noise std, against the dense matrix of A, with one abar_t per image (the second makes sigma_t < sigma_y)."""
    from deepinv.utils import TensorList
    from ipbench.physics.deepinv_physics import ud2m_stack
    op, shape = make("sr_block", sigma_y=0.01)
    M = torch.from_numpy(dense(op.A, shape))
    g = torch.Generator().manual_seed(0)
    abar = torch.tensor([1e-4, 0.9999], dtype=torch.float64)
    x_t, x = (torch.randn(2, *shape, generator=g, dtype=torch.float64) for _ in range(2))
    stack, measurements = ud2m_stack(op, x_t, abar)
    y = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    v = TensorList([torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64),
                    torch.randn(2, *shape, generator=g, dtype=torch.float64)])
    Ax, Atv, ys = stack.A(x), stack.A_adjoint(v), measurements(y)
    for i in range(2):
        s_y, s_t = 0.01, float((1 - abar[i]).sqrt() / 2)
        m = min(s_y, s_t)
        D = torch.cat([m / s_y * M, m / s_t * float(abar[i].sqrt()) * torch.eye(M.shape[1], dtype=M.dtype)])
        assert torch.allclose(torch.cat([Ax[0][i].flatten(), Ax[1][i].flatten()]), D @ x[i].flatten())
        assert torch.allclose(Atv[i].flatten(), D.T @ torch.cat([v[0][i].flatten(), v[1][i].flatten()]))
        assert float(stack.noise_model.sigma[i]) == pytest.approx(m)
        assert torch.allclose(ys[0][i], m / s_y * y[i])
        assert torch.allclose(ys[1][i], m / s_t * (x_t[i] + float(abar[i].sqrt())) / 2)
    with pytest.raises(ValueError, match="RAM needs a linear operator"):
        ud2m_stack(physics.build_operator({"name": "jpeg", "quality": 10}, (1, S, S), 0.01), x_t, abar)


def test_axis_mask_zeroes_small_one_dimensional_singular_values():
    """DDRM's official blur threshold acts on each axis' 1-D singular values (uniform 5-blur on 32 px: two
    per axis below 0.03), so 2 x 32 + 32 x 2 - 4 of the 1,024 components are left to the prior."""
    op = physics.build_operator({"name": "uniform_blur", "kernel_size": 5}, (1, 32, 32), 0.01)
    s1 = np.linalg.svd(op.matrices[-1].numpy(), compute_uv=False)
    assert (s1 < 0.03).sum() == 2
    mask = op.axis_mask(0.03).expand(1, 32, 32)
    assert int((mask == 0).sum()) == 2 * 32 + 32 * 2 - 4
    assert torch.equal(op.axis_mask(0.0).expand(1, 32, 32), torch.ones(1, 32, 32, dtype=torch.float64))


def _random_orthogonal(k, g):
    q, r = torch.linalg.qr(torch.randn(k, k, dtype=torch.float64, generator=g))
    return q * torch.sign(torch.diagonal(r))


@pytest.mark.parametrize("matrix", ["circular_gaussian", "block_average", "tall", "bicubic"])
def test_canonical_svd_does_not_depend_on_the_lapack_basis(matrix, monkeypatch):
    """Another LAPACK build may return any orthonormal basis of a repeated singular subspace (and any sign of a
    single vector). Feed canonical_svd such a basis (random rotations of the groups, U turned with V) and get
    the same U, s, V back, still an exact SVD of the dense matrix."""
    from ipbench.physics.separable import (block_average, canonical_svd, circulant, filter_then_decimate,
                                           _groups)
    k = torch.exp(-torch.arange(-2, 3, dtype=torch.float64) ** 2 / 6.0)
    M = {"circular_gaussian": circulant(k / k.sum(), 32), "block_average": block_average(32, 4),
         "tall": block_average(16, 4).T, "bicubic": filter_then_decimate(k / k.sum(), 16, 2)}[matrix]
    U0, s0, V0 = canonical_svd(M)
    assert any(len(g) > 1 for g in _groups(s0, 1e-9)), "the case must have a repeated singular value"
    real_svd, g = torch.linalg.svd, torch.Generator().manual_seed(7)

    def other_build(A, full_matrices=True):
        U, s, Vh = real_svd(A, full_matrices=full_matrices)
        V, m, n = Vh.T.clone(), *A.shape
        s_full = torch.cat([s, s.new_zeros(n - s.numel())])
        for grp in _groups(s_full, 1e-9):
            idx = list(grp)
            Q = _random_orthogonal(len(idx), g)
            V[:, idx] = V[:, idx] @ Q
            paired = [i for i in idx if i < m and s_full[i] > 1e-9]
            U[:, paired] = U[:, paired] @ Q[: len(paired), : len(paired)] if len(paired) == len(idx) else U[:, paired]
        rest = [i for i in range(m) if i >= n or s_full[i] <= 1e-9]
        if rest:
            U[:, rest] = U[:, rest] @ _random_orthogonal(len(rest), g)
        return U, s, V.T

    monkeypatch.setattr(torch.linalg, "svd", other_build)
    U1, s1, V1 = canonical_svd(M)
    assert not torch.allclose(other_build(M)[2].T, V0, atol=1e-6)         # the stand-in build does differ
    np.testing.assert_allclose(V1.numpy(), V0.numpy(), atol=1e-10)
    np.testing.assert_allclose(U1.numpy(), U0.numpy(), atol=1e-10)
    np.testing.assert_allclose(s1.numpy(), s0.numpy(), atol=1e-12)
    m, n = M.shape
    S = torch.zeros(m, n, dtype=torch.float64)
    r = min(m, n)
    S[range(r), range(r)] = s1[:r]
    np.testing.assert_allclose((U1 @ S @ V1.T).numpy(), M.numpy(), atol=1e-12)
    np.testing.assert_allclose((V1.T @ V1).numpy(), np.eye(n), atol=1e-12)
    np.testing.assert_allclose((U1.T @ U1).numpy(), np.eye(m), atol=1e-12)
