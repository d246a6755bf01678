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
