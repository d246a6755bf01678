"""FID and KID between two sets of images, through clean-fid, on a pluggable feature space.

``fid(feats_a, feats_b)`` is clean-fid's Frechet distance of the Gaussian fits;
``kid(feats_a, feats_b)`` the unbiased polynomial-kernel MMD (KID) with clean-fid's kernel. The features come from
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


def kid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """KID: MMD^2 with clean-fid's kernel k(a, b) = (a.b / d + 1)^3, as Gretton et al.'s U-statistic.

    The sets of the tables are *paired* (restoration i of truth i); clean-fid's estimator keeps the
    cross terms k(a_i, b_i) of matched pairs, which biases it negative when restorations are close to
    their truths. The U-statistic leaves out every i = j term, so it stays unbiased for paired sets
    (and is 0 for identical sets). Sets of different sizes use clean-fid's estimator.
    """
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if len(a) != len(b):
        state = np.random.get_state()
        np.random.seed(0)
        try:
            return float(cleanfid.kernel_distance(a, b))
        finally:
            np.random.set_state(state)
    m, d = len(a), a.shape[1]
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    k = lambda x, y: (x @ y.T / d + 1) ** 3
    off = ~np.eye(m, dtype=bool)
    Kab = k(a, b)
    return float((k(a, a)[off].sum() + k(b, b)[off].sum() - Kab[off].sum() - Kab.T[off].sum()) / (m * (m - 1)))
