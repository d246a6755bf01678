"""Moving digits: the embedded video data set (mirrors Adobe240 clips for LVTINO's problems).

Clip i of a split shows one digit of that split (the class-interleaved order of ``embedded.interleaved``,
cycled) at the latent family's 64 x 64 scale, translated along a seeded straight-line trajectory that
bounces off the canvas borders: speed 1 to 2 pixels per frame (sub-pixel positions, bilinear rendering),
direction uniform. ``FRAMES = 25`` frames, as LVTINO's Problems A and B (Problem C's temporal pooling by 8
pads the tail as the official operator does).

One digit per clip, at the scale of the image digits: the frames then stay in the distribution of the
latent family's autoencoder and image consistency model, which LVTINO uses per frame (its ICM). A 64-scale
digit leaves about 12 pixels of margin on each side, so a clip moves it by up to 24 pixels per axis; two
such digits would overlap on every frame.

Everything is deterministic per clip index (numpy float64 rendering); the test clips are checked against a
pinned sha256, as the digits themselves are.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import torch

from .embedded import CAPTIONS, digits

FRAMES = 25
SPEED = (1.0, 2.0)                 # pixels per frame
TRAJECTORY_SEED = 20261203
N_TEST = 100
#: sha256 of the uint8 frames of the N_TEST test clips (``clips_sha256(test_set()[0])``)
TEST_CLIPS_SHA256 = "2dbc70b42c246fec17590e94da37c7699eeda62b73b5f75db237e7a122341179"
GENERIC_VIDEO_PROMPT = "a video of a handwritten digit"


def video_caption(label: int) -> str:
    return f"a video of a handwritten digit {CAPTIONS[int(label)]}"


@lru_cache(maxsize=2)
def _sources(split: str) -> tuple[np.ndarray, np.ndarray]:
    x, labels = digits(split, 64, n=1000 if split == "test" else 4000)      # class-interleaved order
    return x[:, 0].double().numpy(), labels.numpy()


def trajectory(image: np.ndarray, rng: np.random.Generator, frames: int = FRAMES) -> np.ndarray:
    """(frames, 2) shifts (dy, dx) in pixels: a straight line at constant speed that bounces off the borders
    (the digit's ink bounding box stays on the canvas, one pixel spare for the bilinear stencil)."""
    rows, cols = np.flatnonzero(image.max(1) > 0), np.flatnonzero(image.max(0) > 0)
    n = image.shape[0]
    lo = np.array([-rows[0], -cols[0]], dtype=np.float64)
    hi = np.array([n - 2 - rows[-1], n - 2 - cols[-1]], dtype=np.float64)
    p = lo + rng.random(2) * (hi - lo)
    angle, speed = rng.random() * 2 * np.pi, SPEED[0] + rng.random() * (SPEED[1] - SPEED[0])
    v = speed * np.array([np.sin(angle), np.cos(angle)])
    out = np.empty((frames, 2))
    for f in range(frames):
        out[f] = p
        p = p + v
        for a in range(2):                    # reflect at the borders
            if p[a] < lo[a]:
                p[a], v[a] = 2 * lo[a] - p[a], -v[a]
            elif p[a] > hi[a]:
                p[a], v[a] = 2 * hi[a] - p[a], -v[a]
    return out


def _shift_int(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(image)
    n, m = image.shape
    out[max(dy, 0):n + min(dy, 0), max(dx, 0):m + min(dx, 0)] = \
        image[max(-dy, 0):n + min(-dy, 0), max(-dx, 0):m + min(-dx, 0)]
    return out


def translate(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``image`` moved by (dy, dx) pixels: bilinear interpolation, zero outside."""
    iy, ix = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - iy, dx - ix
    return ((1 - fy) * (1 - fx) * _shift_int(image, iy, ix) + (1 - fy) * fx * _shift_int(image, iy, ix + 1)
            + fy * (1 - fx) * _shift_int(image, iy + 1, ix) + fy * fx * _shift_int(image, iy + 1, ix + 1))


def clip(split: str, i: int, frames: int = FRAMES) -> tuple[np.ndarray, int, np.ndarray]:
    """(frames, 64, 64) float64 frames in [0, 1], the label and the (frames, 2) trajectory of clip i."""
    images, labels = _sources(split)
    k = i % len(images)
    rng = np.random.default_rng([TRAJECTORY_SEED, ("train", "test").index(split), i])
    path = trajectory(images[k], rng, frames)
    return np.stack([translate(images[k], dy, dx) for dy, dx in path]), int(labels[k]), path


def moving_digits(split: str, n: int, frames: int = FRAMES, start: int = 0):
    """(clips (n, frames, 1, 64, 64) float32 in [0, 1], labels (n,), trajectories (n, frames, 2)) of clips
    start .. start + n - 1. The test clips come from the pinned test set (``test_set``)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: 'train', 'test'")
    if split == "test" and not (0 <= start and start + n <= N_TEST):
        raise ValueError(f"the moving-digit test set has {N_TEST} clips; asked for {start}..{start + n - 1}")
    if split == "test" and frames == FRAMES:
        return tuple(v[start:start + n].clone() for v in test_set())       # the cache stays as pinned
    return _render(split, range(start, start + n), frames)


def _render(split: str, indices, frames: int):
    items = [clip(split, i, frames) for i in indices]
    x = torch.from_numpy(np.stack([c for c, _, _ in items])).float().unsqueeze(2)
    return x, torch.tensor([lab for _, lab, _ in items]), torch.from_numpy(np.stack([p for _, _, p in items]))


def clips_sha256(x: torch.Tensor) -> str:
    return hashlib.sha256((x * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()


@lru_cache(maxsize=1)
def test_set():
    """The N_TEST test clips (clips, labels, trajectories), rendered once per process and checked against
    ``TEST_CLIPS_SHA256``."""
    x, labels, paths = _render("test", range(N_TEST), FRAMES)
    digest = clips_sha256(x)
    if digest != TEST_CLIPS_SHA256:
        raise RuntimeError(f"the moving-digit test clips changed: sha256 {digest}, pinned {TEST_CLIPS_SHA256}")
    return x, labels, paths
