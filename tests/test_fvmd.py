"""FVMD's parts against closed forms: exact tracks give known histograms, a translated texture is tracked at
its speed, identical sets give the offset's closed form, and the distance grows with a motion difference."""
import numpy as np
import pytest
import torch

from ipbench.metrics import fvmd as fv


def _translating_texture(n_frames=16, step=(2, -1), seed=0, size=256):
    """A smooth random texture moved by ``step`` = (dx, dy) whole pixels per frame (size x size, periodic)."""
    g = torch.Generator().manual_seed(seed)
    tex = torch.nn.functional.avg_pool2d(torch.rand(1, 1, size, size, generator=g), 9, 1, 4, count_include_pad=False)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    frames = [torch.roll(tex, (int(round(k * step[1])), int(round(k * step[0]))), (-2, -1)) for k in range(n_frames)]
    return torch.cat(frames)                                  # (T, 1, 64, 64)


def test_histograms_of_exact_tracks_match_the_closed_form():
    """Tracks moving by (dx, dy) = (2, -1) per frame: velocity angle arctan2(2, -1) = 0.648 pi, bin
    floor((0.648 + 1) / 0.25) = 6; weight ceil(log2(sqrt(5) + 1)) / 8 = 2 / 8; the first frame of a window has
    zero velocity (weight 0)."""
    grid = fv.grid_points()
    tracks = grid[None] + np.arange(16)[:, None, None] * np.array([2.0, -1.0])
    v, a_package = fv.velocity_acceleration(tracks[None])
    _, a_paper = fv.velocity_acceleration(tracks[None], "paper")
    assert np.allclose(a_paper[0, 2:], 0) and np.allclose(a_package[0, 2:], v[0, 2:])
    h = fv.motion_histograms(v).reshape(4, 4, 4, 8)          # time cube, row cube, column cube, angle bin
    expected = np.zeros((4, 4, 4, 8))
    expected[..., 6] = 100 * 2 / 8
    expected[0, ..., 6] = 75 * 2 / 8                         # frame 0 of the window: zero velocity
    assert np.allclose(h, expected)
    assert fv.motion_histograms(v).shape == (1, 512)


def test_lucas_kanade_tracks_a_translation_at_its_speed():
    """A texture moving by (2, -1) pixels per frame at FVMD's 256 x 256: LK follows it (but where the periodic
    texture's seam crosses the window), and the inner cubes (their points stay on the canvas for the whole
    window) hold the closed-form histogram of the exact tracks."""
    pytest.importorskip("cv2")
    clip = _translating_texture()
    window = fv._windows(clip)
    assert window.shape == (1, 16, 256, 256)
    tracks = fv.track_lk(window[0])
    inner = np.arange(400).reshape(20, 20)[5:15, 5:15].ravel()
    steps = np.diff(tracks[:, inner], axis=0)
    assert (np.abs(steps - [2.0, -1.0]).max(-1) < 0.1).mean() > 0.95
    h = fv.motion_histograms(fv.velocity_acceleration(tracks[None])[0]).reshape(4, 4, 4, 8)
    assert np.allclose(h[1:, 1:3, 1:3, 6], 100 * 2 / 8) and np.allclose(h[0, 1:3, 1:3, 6], 75 * 2 / 8)


@pytest.mark.slow            # tracks points through 9 clips (about 10 s)
def test_fvmd_of_identical_sets_and_of_different_motions():
    """Identical sets: Tr(2 S) - 2 Tr(S + eps I) = -2 eps D exactly (the package's offset); a set moving the
    other way is far away, and further than a set moving the same way at another texture."""
    pytest.importorskip("cv2")
    right = torch.stack([_translating_texture(20, (1, 0), seed=s, size=64) for s in range(3)])
    left = torch.stack([_translating_texture(20, (-1, 0), seed=s, size=64) for s in range(3)])
    right_other = torch.stack([_translating_texture(20, (1, 0), seed=s, size=64) for s in range(3, 6)])
    f_right = fv.features(right)
    assert f_right.shape == (3 * 5, 1024)                    # 20 frames: 5 windows of 16 per clip
    assert fv.frechet(f_right, f_right) == pytest.approx(-2e-5 * 1024, abs=1e-6)
    same_way, other_way = fv.fvmd(right_other, right), fv.fvmd(left, right)
    assert other_way > 10 * max(same_way, 1.0)
    with pytest.raises(ValueError, match="at least 16 frames"):
        fv.features(right[:, :8])


def test_the_degrade_stage_tracks_the_true_clips_once_for_every_score(tmp_path):
    """A video task's degraded file holds its true clips' FVMD features (clip by clip, so that a solver on fewer
    clips takes the first rows); the score's FVMD against them equals the FVMD against the clips."""
    pytest.importorskip("cv2")
    import ipbench.suite.config as sc
    from ipbench.suite import io, stages
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    out = str(tmp_path / "video_C.safetensors")
    stages.degrade({**sc.degrade_spec(cfg, "video_C"), "n_images": 2}, out)
    data = io.read_tensors(out)
    ref = data["fvmd_reference_lk"]
    assert ref.shape == (2, 25 - 16 + 1, 1024)
    assert np.array_equal(ref.numpy(), fv.clip_features(data["x"]))
    moved = torch.roll(data["x"], 1, dims=-1)
    assert fv.fvmd(moved, ref.flatten(0, 1).numpy()) == fv.fvmd(moved, data["x"])


def test_pips_module_tree_is_the_released_checkpoints():
    from pathlib import Path
    from ipbench.metrics.pips import Pips
    with torch.device("meta"):
        net = Pips()
    ours = sorted(f"{k} {tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}" for k, v in net.state_dict().items())
    released = Path(__file__).parent / "expected" / "pips2_state_dict.txt"
    assert ours == [line for line in released.read_text().splitlines() if not line.startswith("#")]
    assert sum(v.numel() for v in net.state_dict().values()) == 17_565_410


def test_pips_correlation_windows_are_x_major():
    """A correlation volume x + 10 y sampled around (5, 6): entry a * 7 + b of the window is offset (a - 3, b - 3)
    in (x, y), as the released sampler orders it; outside the map it reads zero."""
    from ipbench.metrics.pips import Correlation
    H, W = 16, 20
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    corr = Correlation((xs + 10 * ys).view(1, 1, 1, H, W)).corr(torch.ones(1, 1, 1, 1, dtype=torch.float64))
    window = corr.sample(torch.tensor([[[[5.0, 6.0]]]], dtype=torch.float64))[0, 0, 0, :49].view(7, 7)
    a, b = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    assert torch.allclose(window, (5 + a - 3) + 10 * (6 + b - 3).double())
    edge = corr.sample(torch.tensor([[[[0.0, 0.0]]]], dtype=torch.float64))[0, 0, 0, :49].view(7, 7)
    assert edge[:3].abs().max() < 1e-9 and edge[:, :3].abs().max() < 1e-9


def test_pips_keeps_frame_0_on_the_grid_and_does_not_depend_on_the_batch(tmp_path):
    from standin_hub import TINY_PIPS
    from ipbench.metrics.pips import Pips, load_pips
    torch.manual_seed(0)
    net = Pips(**TINY_PIPS)
    with torch.no_grad():
        net.delta_block.dense.weight.mul_(0.02)
    torch.save({"model_state_dict": net.state_dict()}, tmp_path / "pips2_weights.pth")
    net = load_pips(tmp_path / "pips2_weights.pth", TINY_PIPS)
    windows = fv._windows(torch.stack([_translating_texture(18, (2, 1), seed=s, size=64) for s in range(1)])[0],
                          rgb=True)
    assert windows.shape == (3, 16, 3, 256, 256)
    together, alone = fv.track_pips(net, windows, batch=3), fv.track_pips(net, windows, batch=1)
    assert together.shape == (3, 16, 400, 2) and np.allclose(together, alone, atol=1e-3)
    assert np.allclose(together[:, 0], fv.grid_points())
    with pytest.raises(ValueError, match="not a PIPs"):
        load_pips(tmp_path / "pips2_weights.pth", {**TINY_PIPS, "latent": 32})
    with pytest.raises(ValueError, match="needs its network"):
        fv.clip_features(torch.zeros(1, 16, 1, 8, 8), "pips2")
