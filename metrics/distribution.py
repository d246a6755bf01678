"""FID and KID between two sets of images, through clean-fid, on a pluggable feature space.

``fid(feats_a, feats_b)`` is clean-fid's Frechet distance of the Gaussian fits;
``kid(feats_a, feats_b)`` its unbiased polynomial-kernel MMD (KID). The features come from
``metrics.features``: Inception-v3 (clean-fid) in ``paper``, the digit network in ``embedded``.
"""
from __future__ import annotations

import numpy as np
from cleanfid import fid as cleanfid


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need a (N >= 2, D) feature array, got shape {feats.shape}")
    return feats.mean(0), np.cov(feats, rowvar=False)


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    mu_a, sig_a = gaussian_stats(feats_a)
    mu_b, sig_b = gaussian_stats(feats_b)
    return float(cleanfid.frechet_distance(mu_a, sig_a, mu_b, sig_b))


def kid(feats_a: np.ndarray, feats_b: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
        seed: int = 0) -> float:
    """KID; clean-fid draws subsets from numpy's global generator, so it is seeded here and restored."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(cleanfid.kernel_distance(np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64),
                                              num_subsets=num_subsets, max_subset_size=max_subset_size))
    finally:
        np.random.set_state(state)
