"""FVMD, the Frechet Video Motion Distance (Liu et al. 2024, arXiv 2407.16124), as the ``fvmd`` package defines it.

Every clip is cut into windows of ``S = 16`` frames (stride 1) resized to 256 x 256; a 20 x 20 grid of points
(8 pixels from the borders) is tracked through each window. From the tracks Y (S, 400, 2):

    V = [0, Y_2:S - Y_1:S-1]          (velocity)
    A = [0, 0, Y_3:S - Y_2:S-1]       (the package's "acceleration": ``calc_acceleration`` is called on the
                                       tracks, so it is the velocity one frame on; ``acceleration='paper'``
                                       gives the paper's V_3:S - V_2:S-1)

Each field is cut into cubes of 5 x 5 points x 4 frames; a cube's histogram has 8 bins of the angle
arctan2(v_x, v_y) and adds ceil(log2(min(|v|, 255) + 1)) / 8 per vector. The window's feature is the velocity
and the acceleration histograms concatenated (2 x 64 cubes x 8 bins), and FVMD is the Frechet distance of the
Gaussian fits of the two sets of window features (covariances offset by 1e-5 I, as the package).

Tracker: ``tracker='pips2'`` is the package's PIPs++ (``metrics/pips.py``, its weights fetched; RGB windows,
16 iterations, one call per window; the paper profile). ``tracker='lk'`` is OpenCV's pyramidal Lucas-Kanade,
which needs no weights: the embedded profile's column says so. Points that LK loses (flat background) keep
their position, i.e. zero velocity.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

TRACKERS = {"lk": "OpenCV pyramidal Lucas-Kanade (no weights; the fvmd package uses PIPs++)",
            "pips2": "PIPs++ with the fvmd package's weights, as the package"}
SEQ_LEN, SIZE, GRID, CELL, CUBE_FRAMES, ANGLE_BINS, MAGNITUDE_BINS = 16, 256, 20, 5, 4, 8, 256


def grid_points(size: int = SIZE, n: int = GRID) -> np.ndarray:
    """(n * n, 2) points (x, y), row by row, from 8 to size - 8 (the package's ``run_tracking`` grid)."""
    ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.stack([8 + xs.ravel() / (n - 1) * (size - 16), 8 + ys.ravel() / (n - 1) * (size - 16)], 1)


def track_lk(frames: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """(S, N, 2) tracks of ``points`` (the grid by default) through uint8 frames (S, H, W), frame to frame."""
    import cv2
    p = (grid_points(frames.shape[-1]) if points is None else points).astype(np.float32).reshape(-1, 1, 2)
    tracks = [p[:, 0].copy()]
    for prev, nxt in zip(frames[:-1], frames[1:]):
        q, status, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, p, None, winSize=(21, 21), maxLevel=3,
                                                criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
        ok = status.ravel() == 1
        p = np.where(ok[:, None, None], q, p)
        tracks.append(p[:, 0].copy())
    return np.stack(tracks).astype(np.float64)


def velocity_acceleration(tracks: np.ndarray, acceleration: str = "package") -> tuple[np.ndarray, np.ndarray]:
    """(V, A), each shaped like ``tracks`` (..., S, N, 2); see the module docstring."""
    zero = np.zeros_like(tracks[..., :1, :, :])
    v = np.concatenate([zero, np.diff(tracks, axis=-3)], axis=-3)
    if acceleration == "package":
        a = np.concatenate([zero, zero, tracks[..., 2:, :, :] - tracks[..., 1:-1, :, :]], axis=-3)
    elif acceleration == "paper":
        a = np.concatenate([zero, zero, v[..., 2:, :, :] - v[..., 1:-1, :, :]], axis=-3)
    else:
        raise ValueError(f"unknown acceleration {acceleration!r}; valid: 'package', 'paper'")
    return v, a


def motion_histograms(vectors: np.ndarray) -> np.ndarray:
    """(B, S, N, 2) vectors on an n x n point grid -> (B, S // 4 * (n // 5)^2 * 8) cube histograms."""
    B, S, N, _ = vectors.shape
    n = int(round(np.sqrt(N)))
    ms, mh = S // CUBE_FRAMES, n // CELL
    v = vectors.reshape(B, S, n, n, 2)[:, :ms * CUBE_FRAMES, :mh * CELL, :mh * CELL]
    v = v.reshape(B, ms, CUBE_FRAMES, mh, CELL, mh, CELL, 2).transpose(0, 1, 3, 5, 2, 4, 6, 7)
    v = v.reshape(B, ms * mh * mh, -1, 2)
    angle = np.clip((np.arctan2(v[..., 0], v[..., 1]) + np.pi) // (2 * np.pi / ANGLE_BINS), 0, ANGLE_BINS - 1)
    top = np.log2(MAGNITUDE_BINS)
    weight = np.ceil(np.clip(np.log2(np.clip(np.linalg.norm(v, axis=-1), 0, MAGNITUDE_BINS - 1) + 1), 0, top)) / top
    onehot = angle[..., None] == np.arange(ANGLE_BINS)
    return (onehot * weight[..., None]).sum(-2).reshape(B, -1)


def _windows(clip: torch.Tensor, seq_len: int = SEQ_LEN, rgb: bool = False) -> np.ndarray:
    """(W, seq_len, 256, 256) uint8 grey windows (stride 1) of a (T, C, H, W) clip in [0, 1], or with ``rgb``
    (W, seq_len, 3, 256, 256): the package's ``VideoDataset`` cuts every video so (seq_len 16, stride 1), and its
    tracker then sees each window whole."""
    x = clip.float().expand(-1, 3, -1, -1) if rgb else clip.float().mean(1, keepdim=True)
    big = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    frames = (big.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    frames = frames if rgb else frames[:, 0]
    if len(frames) < seq_len:
        raise ValueError(f"FVMD needs clips of at least {seq_len} frames, got {len(frames)}")
    return np.stack([frames[i:i + seq_len] for i in range(len(frames) - seq_len + 1)])


@torch.no_grad()
def track_pips(net, windows: np.ndarray, batch: int = 4) -> np.ndarray:
    """(W, S, N, 2) tracks of the grid through uint8 RGB windows (W, S, 3, 256, 256) by PIPs++ (16 iterations;
    windows in batches: its norms are per window, so a track does not depend on the batch)."""
    dev = next(net.parameters()).device
    points = torch.from_numpy(grid_points(windows.shape[-1])).float().to(dev)
    out = []
    for i in range(0, len(windows), batch):
        w = torch.from_numpy(windows[i:i + batch]).float().to(dev)
        out.append(net(w, points.expand(len(w), -1, -1)).double().cpu().numpy())
    return np.concatenate(out)


def clip_features(clips: torch.Tensor, tracker: str = "lk", acceleration: str = "package", net=None) -> np.ndarray:
    """(clips, windows, 1024) motion features of (B, T, C, H, W) clips in [0, 1]; ``net``: the PIPs++ network of
    ``tracker='pips2'``."""
    if tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {tracker!r}; valid: {', '.join(TRACKERS)}")
    if tracker == "pips2" and net is None:
        raise ValueError("tracker 'pips2' needs its network (metrics.pips.load_pips of the fetched weights)")
    windows = [_windows(clip, rgb=tracker == "pips2") for clip in clips]
    if tracker == "pips2":
        tracks = np.concatenate([track_pips(net, w) for w in windows])
    else:
        tracks = np.stack([track_lk(w) for clip in windows for w in clip])
    v, a = velocity_acceleration(tracks, acceleration)
    return np.concatenate([motion_histograms(v), motion_histograms(a)], axis=1).reshape(len(clips), len(windows[0]), -1)


def features(clips: torch.Tensor, tracker: str = "lk", acceleration: str = "package", net=None) -> np.ndarray:
    """(clips x windows, 1024) motion features of (B, T, C, H, W) clips in [0, 1]."""
    f = clip_features(clips, tracker, acceleration, net)
    return f.reshape(-1, f.shape[-1])


def frechet(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-5) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 ((S_a + eps I)(S_b + eps I))^1/2)."""
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(feats_a, rowvar=False)), np.atleast_2d(np.cov(feats_b, rowvar=False))
    offset = eps * np.eye(len(s_a))
    covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


def fvmd(clips: torch.Tensor, reference: torch.Tensor | np.ndarray, tracker: str = "lk",
         acceleration: str = "package", net=None) -> float:
    """FVMD of ``clips`` against ``reference``: clips, or their features (``features``, computed once per set)."""
    ref = reference if isinstance(reference, np.ndarray) else features(reference, tracker, acceleration, net)
    return frechet(features(clips, tracker, acceleration, net), ref)
